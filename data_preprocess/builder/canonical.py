"""The canonical annotation model every source adapter produces and every task generator reads.

On disk (`--source canonical`): a folder of `*.json` files, each holding one video object or a list of
them (the fields of `Video.to_dict`, documented in docs/builder.md). Times are seconds from the video
start, boxes pixel xyxy of a `width` x `height` frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_preprocess.builder.validate import (
    MAX_DURATION,
    MAX_FPS,
    MAX_FRAME_NUMBER,
    id_problem,
    integer_problem,
    number_problem,
    pattern_problem,
    read_text,
    relpath_problem,
    text_problem,
    to_number,
)
from reward_fns.tasks import cvs, sa

SEGMENT_KINDS = ("phase", "action", "gesture", "motion", "step")
FRAME_KINDS = ("folder", "video")
SCORE_KEYS = {"cvs": tuple(cvs.CRITERIA), "skill": sa.ASPECTS}  # the CVS and SA tasks' vocabularies
SCORE_RANGES = {"cvs": (0, 2), "skill": (1, 5)}
SKILL_LEVELS = ("N", "I", "E")
MAX_IMAGE_SIDE = 100_000  # pixels
MAX_DETAIL_NAMES = 50


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

    `folder`: images already on disk, `path` a folder relative to the source root, file name `pattern`
    with its one field `{n}` / `{n:06d}` filled with offset + round(t * index_fps) (validate.frame_name),
    present at `rate` frames per second.
    `video`: a video file relative to `--videos` or `--root`, frames extracted at the record fps.
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
        segs = [Segment(s["label"], to_number(s["start"]), to_number(s["end"]), s.get("kind", "phase"),
                        dict(s.get("details") or {})) for s in data.get("segments") or []]
        boxes = [Box(to_number(b["time"]), b["label"], str(b["track"]), tuple(to_number(v) for v in b["xyxy"]))
                 for b in data.get("boxes") or []]
        scores = [Scores(to_number(s["start"]), to_number(s["end"]), s["kind"], dict(s["values"]),
                         s.get("level", ""), dict(s.get("extra") or {}))
                  for s in data.get("scores") or []]
        source = FrameSource(**frames)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnnotationError(where, entry, "segments/boxes/scores/frames", f"malformed ({exc!r})") from None
    width, height = data.get("width") or 0, data.get("height") or 0
    for key, value in (("width", width), ("height", height)):
        problem = integer_problem(value, 0, MAX_IMAGE_SIDE)
        if problem:
            raise AnnotationError(where, entry, key, problem)
    video = Video(
        source=_need(data, "source", str, where, entry),
        video_id=str(_need(data, "video_id", (str, int), where, entry)),
        fps=float(_need(data, "fps", num, where, entry)), duration=float(_need(data, "duration", num, where, entry)),
        frames=source, width=int(width), height=int(height),
        procedure=data.get("procedure") or "", segments=segs, boxes=boxes, scores=scores)
    check_video(video, where, entry)
    return video


def check_video(video: Video, where: str, entry: object) -> None:
    """Every value a generator, a frame path or a question relies on (the rules are in validate.py):
    the first problem is an AnnotationError naming the field."""
    problem = next(_problems(video), None)
    if problem is not None:
        raise AnnotationError(where, entry, *problem)


def _time(value: object, field_name: str) -> Iterator[tuple[str, str]]:
    if not (type(value) in (int, float) and 0 <= value <= MAX_DURATION):  # fast path; NaN fails too
        yield field_name, number_problem(value, 0, MAX_DURATION)


def _problems(v: Video) -> Iterator[tuple[str, str]]:
    """(field, reason) of each problem, in field order. One pass; a label is checked once however often
    it repeats."""
    texts: dict[str, str] = {}

    def text(value: object) -> str:
        if not isinstance(value, str):
            return text_problem(value)
        if value not in texts:
            texts[value] = text_problem(value)
        return texts[value]

    checks = [("video_id", id_problem(v.video_id)), ("fps", number_problem(v.fps, 0, MAX_FPS, above=True)),
              ("duration", number_problem(v.duration, 0, MAX_DURATION, above=True)),
              ("width", integer_problem(v.width, 0, MAX_IMAGE_SIDE)),
              ("height", integer_problem(v.height, 0, MAX_IMAGE_SIDE)),
              ("procedure", text_problem(v.procedure) if v.procedure else "")]
    f = v.frames
    checks += [("frames.kind", "" if f.kind in FRAME_KINDS else f"{f.kind!r} not one of {FRAME_KINDS}"),
               ("frames.path", relpath_problem(f.path)), ("frames.pattern", pattern_problem(f.pattern)),
               ("frames.index_fps", number_problem(f.index_fps, 0, MAX_FPS, above=True)),
               ("frames.rate", number_problem(f.rate, 0, MAX_FPS, above=True)),
               ("frames.offset", integer_problem(f.offset, 0, MAX_FRAME_NUMBER))]
    yield from ((k, p) for k, p in checks if p)
    for i, seg in enumerate(v.segments):
        where = f"segments[{i}]"
        if problem := text(seg.label):
            yield f"{where}.label", problem
        if seg.kind not in SEGMENT_KINDS:
            yield f"{where}.kind", f"{seg.kind!r} not one of {SEGMENT_KINDS}"
        yield from _time(seg.start, f"{where}.start")
        yield from _time(seg.end, f"{where}.end")
        if seg.end < seg.start:
            yield f"{where}.end", f"{seg.end} is before start {seg.start}"
        if seg.details and (problem := _details_problem(seg.details)):
            yield f"{where}.details", problem
    for i, box in enumerate(v.boxes):
        where = f"boxes[{i}]"
        yield from _time(box.time, f"{where}.time")
        if problem := text(box.label):
            yield f"{where}.label", problem
        if problem := text(box.track):
            yield f"{where}.track", problem
        xyxy = box.xyxy
        if len(xyxy) != 4 or not all(type(c) in (int, float) and -MAX_IMAGE_SIDE <= c <= MAX_IMAGE_SIDE for c in xyxy):
            yield f"{where}.xyxy", ("needs 4 numbers" if len(xyxy) != 4 else
                                    next(p for c in xyxy if (p := number_problem(c, -MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))))
    for i, sc in enumerate(v.scores):
        yield from ((k, p) for k, p in _score_problems(sc, f"scores[{i}]") if p)


def _details_problem(details: object) -> str:
    if not isinstance(details, Mapping):
        return "must be an object of lists of names"
    for key, names in details.items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z_]{1,40}", key):
            return f"key {key!r} is not a lower-case name"
        if not isinstance(names, list) or len(names) > MAX_DETAIL_NAMES:
            return f"{key}: must be a list of at most {MAX_DETAIL_NAMES} names"
        bad = next(((n, p) for n in names if (p := text_problem(n))), None)
        if bad:
            return f"{key}: {str(bad[0])[:60]!r} {bad[1]}"
    return ""


def _score_problems(sc: Scores, where: str) -> Iterator[tuple[str, str]]:
    keys = SCORE_KEYS.get(sc.kind)
    if keys is None:
        yield f"{where}.kind", f"{sc.kind!r} not one of {sorted(SCORE_KEYS)}"
        return
    yield f"{where}.start", number_problem(sc.start, 0, MAX_DURATION)
    yield f"{where}.end", number_problem(sc.end, 0, MAX_DURATION)
    if not isinstance(sc.values, Mapping) or set(sc.values) != set(keys):
        got = sorted(map(str, sc.values)) if isinstance(sc.values, Mapping) else sc.values
        yield f"{where}.values", f"kind {sc.kind!r} needs values for exactly {list(keys)}, got {got}"
        return
    low, high = SCORE_RANGES[sc.kind]
    for key in keys:
        yield f"{where}.values.{key}", integer_problem(sc.values[key], low, high)
    levels = SKILL_LEVELS if sc.kind == "skill" else ("",)
    yield f"{where}.level", "" if sc.level in levels else f"{sc.level!r} not one of {levels}"
    unknown = sorted(map(str, set(sc.extra) - {"critical_view_achieved"}))
    achieved = sc.extra.get("critical_view_achieved", False)
    yield f"{where}.extra", (f"unknown key(s) {unknown}" if unknown else
                             "" if isinstance(achieved, bool) else "critical_view_achieved must be true or false")


def read_json(path: Path) -> Any:
    """A source JSON file's value; an unreadable file, bad JSON or absurd nesting is an AnnotationError
    naming the file."""
    text = read_text_file(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(str(path), "-", "<file>", f"unreadable JSON ({exc})") from None
    except RecursionError:
        raise AnnotationError(str(path), "-", "<file>", "JSON nested too deeply to read") from None


def read_text_file(path: Path) -> str:
    """A source text file (UTF-8); missing, unreadable, not a file or not UTF-8: an AnnotationError."""
    try:
        return read_text(path)
    except ValueError as exc:
        raise AnnotationError(str(path), "-", "<file>", str(exc)) from None


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
