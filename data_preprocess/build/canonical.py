"""The canonical annotation model every source adapter produces and every task generator reads.

On disk (`--source canonical`): a folder of `*.json` files, each holding one video object or a list of
them (the fields of `Video.to_dict`, documented in docs/builder.md). Times are seconds from the video
start, boxes pixel xyxy of a `width` x `height` frame.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SEGMENT_KINDS = ("phase", "action", "gesture", "motion", "step")
FRAME_KINDS = ("folder", "video")
CVS_CRITERIA = ("two_structures", "cystic_plate", "hepatocystic_triangle")
SKILL_ASPECTS = ("Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
                 "Overall performance", "Quality of final product")
SCORE_KEYS = {"cvs": CVS_CRITERIA, "skill": SKILL_ASPECTS}


class AnnotationError(ValueError):
    """A source file breaks its format; the message names the file, the entry and the field."""

    def __init__(self, where: str, entry: object, field_name: str, reason: str):
        super().__init__(f"{where}: entry {entry}: field '{field_name}': {reason}")


@dataclass(frozen=True)
class Segment:
    """A labelled time span of one vocabulary (`kind`), with optional annotation details for captions."""

    label: str
    start: float
    end: float
    kind: str = "phase"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Box:
    """One object's box at one time: class name, track id, pixel xyxy."""

    time: float
    label: str
    track: str
    xyxy: tuple[float, float, float, float]


@dataclass(frozen=True)
class Scores:
    """Scores of a time span: CVS criteria (`kind` 'cvs') or skill aspects (`kind` 'skill', `level` N/I/E)."""

    start: float
    end: float
    kind: str
    values: Mapping[str, int]
    level: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameSource:
    """Where a video's frames come from.

    `folder`: images already on disk, `path` a folder relative to the source root, file name
    `pattern.format(n=offset + round(t * index_fps))`, present at `rate` frames per second.
    `video`: a video file (absolute or relative to `--videos`), frames extracted at the record fps.
    """

    kind: str  # "folder" | "video"
    path: str
    pattern: str = "{n:06d}.jpg"
    index_fps: float = 1.0
    offset: int = 0
    rate: float = 1.0


@dataclass
class Video:
    """One source video with all its annotations."""

    source: str
    video_id: str
    fps: float  # the native frame rate that metadata frame numbers count in
    duration: float
    frames: FrameSource
    width: int = 0
    height: int = 0
    procedure: str = ""
    segments: list[Segment] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    scores: list[Scores] = field(default_factory=list)

    def segments_of(self, kind: str) -> list[Segment]:
        """The segments of one vocabulary, in time order."""
        return sorted((s for s in self.segments if s.kind == kind), key=lambda s: (s.start, s.end))

    def tracks(self) -> dict[str, list[Box]]:
        """Boxes grouped by track id, each in time order."""
        out: dict[str, list[Box]] = {}
        for box in sorted(self.boxes, key=lambda b: b.time):
            out.setdefault(box.track, []).append(box)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for box in data["boxes"]:
            box["xyxy"] = list(box["xyxy"])
        return data


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, entry: object) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise AnnotationError(where, entry, key, f"missing or not {getattr(kind, '__name__', kind)}: {value!r}")
    return value


def video_from_dict(data: Any, where: str, entry: object) -> Video:
    """Parse one canonical video object, raising AnnotationError naming the field."""
    if not isinstance(data, Mapping):
        raise AnnotationError(where, entry, "<video>", "must be an object")
    num = (int, float)
    frames = _need(data, "frames", Mapping, where, entry)
    try:
        segs = [Segment(str(s["label"]), float(s["start"]), float(s["end"]), str(s.get("kind", "phase")),
                        dict(s.get("details") or {})) for s in data.get("segments") or []]
        boxes = [Box(float(b["time"]), str(b["label"]), str(b["track"]), tuple(float(v) for v in b["xyxy"]))
                 for b in data.get("boxes") or []]
        scores = [Scores(float(s["start"]), float(s["end"]), str(s["kind"]), {k: int(v) for k, v in
                         s["values"].items()}, str(s.get("level", "")), dict(s.get("extra") or {}))
                  for s in data.get("scores") or []]
        source = FrameSource(**frames)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(where, entry, "segments/boxes/scores/frames", f"malformed ({exc!r})") from None
    video = Video(
        source=_need(data, "source", str, where, entry),
        video_id=str(_need(data, "video_id", (str, int), where, entry)),
        fps=float(_need(data, "fps", num, where, entry)), duration=float(_need(data, "duration", num, where, entry)),
        frames=source, width=int(data.get("width") or 0), height=int(data.get("height") or 0),
        procedure=str(data.get("procedure") or ""), segments=segs, boxes=boxes, scores=scores)
    check_video(video, where, entry)
    return video


def check_video(video: Video, where: str, entry: object) -> None:
    """Values a generator relies on: finite times, known kinds, complete score sets."""
    if not all(math.isfinite(v) and v > 0 for v in (video.fps, video.duration)):
        raise AnnotationError(where, entry, "fps/duration", f"must be > 0, got {video.fps}, {video.duration}")
    if video.frames.kind not in FRAME_KINDS:
        raise AnnotationError(where, entry, "frames.kind", f"{video.frames.kind!r} not one of {FRAME_KINDS}")
    numbers = [t for s in (*video.segments, *video.scores) for t in (s.start, s.end)]
    numbers += [v for b in video.boxes for v in (b.time, *b.xyxy)]
    if not all(math.isfinite(t) for t in numbers):
        raise AnnotationError(where, entry, "segments/boxes/scores", "times and coordinates must be finite numbers")
    bad = next((s.kind for s in video.segments if s.kind not in SEGMENT_KINDS), None)
    if bad is not None:
        raise AnnotationError(where, entry, "segments.kind", f"{bad!r} not one of {SEGMENT_KINDS}")
    if any(len(b.xyxy) != 4 for b in video.boxes):
        raise AnnotationError(where, entry, "boxes.xyxy", "every box needs 4 numbers")
    for sc in video.scores:
        keys = SCORE_KEYS.get(sc.kind)
        if keys is None or set(keys) - set(sc.values):
            raise AnnotationError(where, entry, "scores.values",
                                  f"kind {sc.kind!r} needs values for {keys or sorted(SCORE_KEYS)}")


def read_json(path: Path) -> Any:
    """A source JSON file's value; an unreadable file or bad JSON is an AnnotationError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(str(path), "-", "<file>", f"unreadable JSON ({exc})") from None


def read_canonical(root: Path) -> Iterator[Video]:
    """Every video of a canonical folder (files in name order), or of one canonical JSON file."""
    files = [root] if root.is_file() else sorted(root.glob("*.json"))
    if not files:
        raise AnnotationError(str(root), "-", "<files>", "no canonical *.json file found")
    for path in files:
        data = read_json(path)
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items):
            yield video_from_dict(item, str(path), i)


def write_canonical(videos: Iterable[Video], path: Path) -> None:
    """Write videos as one canonical JSON file (atomically)."""
    from reward_fns.atomic_io import write_json_atomic

    write_json_atomic(path, [v.to_dict() for v in videos])
