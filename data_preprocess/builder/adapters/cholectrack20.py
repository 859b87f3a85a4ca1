"""CholecTrack20 (CAMMA): `<Training|Validation|Testing>/VIDxx/VIDxx.json` (also named `vidxx.json`) with
`.../Frames/000001.png, 000026.png, ...` (1 fps files named by the 1-based 25-fps frame number); the Testing
split ships the MP4 video instead of `Frames/` (frames are then extracted at the record fps).

As released: `categories.tools` is a list of `{id, name}` objects (an `{id: name}` table or a list of names
are read too); `video.num_frames` counts the annotated 1-fps frames, so the video lasts num_frames
seconds; annotation keys are 25-fps frame numbers. Tool boxes (normalized xywh) become tracks keyed by
`TRACK_KEY` (the intraoperative track: one id per tool for the whole operation, so an STG record follows
one physical instrument). A tool id missing from `categories.tools` is left out with a warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_preprocess.builder.adapters.base import SourceRead, adapter
from data_preprocess.builder.adapters.cholect50 import names
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Video, read_json
from data_preprocess.builder.frames import VIDEO_EXTENSIONS

SPLITS = ("Training", "Validation", "Testing")
TRACK_KEY = "intraoperative_track"
NATIVE_FPS = 25.0
FRAMES_DIR = "Frames"


def _tool_name(value: Any, tools: Mapping[int, str]) -> str | None:
    """The tool's name: a name given as such, else the id looked up (None when unknown)."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        return value.strip()
    return tools.get(int(value))


def _frame_source(folder: Path, root: Path, vid: str, warnings: Counter[str]) -> FrameSource:
    """`Frames/` read in place, else the folder's video file (the Testing split), extracted."""
    rel = folder.relative_to(root).as_posix()
    if (folder / FRAMES_DIR).is_dir():
        return FrameSource("folder", f"{rel}/{FRAMES_DIR}", "{n:06d}.png", NATIVE_FPS, 1, 1.0)
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    named = [p for p in videos if p.stem.lower() == vid.lower()]
    chosen = (named or videos or [None])[0]
    if chosen is None:
        warnings["CholecTrack20 videos with neither Frames/ nor a video file in their folder"] += 1
        return FrameSource("video", f"{rel}/{folder.name}.mp4")
    return FrameSource("video", f"{rel}/{chosen.name}")


def read_video(path: Path, root: Path, warnings: Counter[str] | None = None) -> Video:
    where = str(path)
    warnings = Counter() if warnings is None else warnings
    data = read_json(path)
    try:
        meta, annotations = data["video"], data["annotations"]
    except (KeyError, TypeError) as exc:
        raise AnnotationError(where, "-", "video/annotations", f"unreadable track file ({exc!r})") from None
    if not isinstance(meta, Mapping) or not isinstance(annotations, Mapping):
        raise AnnotationError(where, "-", "video/annotations", "must be objects ({...}, {frame: objects})")
    tools = names(data.get("categories") or {}, "tools", where)
    width, height = int(meta.get("width") or 854), int(meta.get("height") or 480)
    boxes, last = [], 0.0
    for frame_key, objects in annotations.items():
        if not str(frame_key).isdecimal():
            raise AnnotationError(where, frame_key, "annotations", "keys must be frame numbers")
        time = (int(frame_key) - 1) / NATIVE_FPS
        last = max(last, time)
        for i, obj in enumerate(objects or []):
            try:
                x, y, w, h = (float(v) for v in obj["tool_bbox"])
                tool = _tool_name(obj["instrument"], tools)
                track = str(obj.get(TRACK_KEY, f"{tool}-{i}"))
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationError(where, frame_key, "tool_bbox/instrument", f"malformed object ({exc!r})") from None
            if tool is None:
                warnings["CholecTrack20 tool ids not in categories.tools (box left out)"] += 1
            elif w > 0 and h > 0:
                boxes.append(Box(time, tool, track, (x * width, y * height, (x + w) * width, (y + h) * height)))
    vid = path.parent.name
    counted = int(meta.get("num_frames") or 0)  # annotated 1-fps frames = seconds
    duration = max(float(counted), last + 1.0)
    frames = _frame_source(path.parent, root, vid, warnings)
    return Video("CholecTrack20", vid.lower(), NATIVE_FPS, duration, frames, width, height,
                 "laparoscopic cholecystectomy", [], boxes)


def label_files(root: Path) -> list[Path]:
    """`<split>/<VID>/<VID>.json`, the file name in any case (`vid01.json` too)."""
    return sorted(p for split in SPLITS for p in (root / split).glob("*/*.json")
                  if p.stem.lower() == p.parent.name.lower())


@adapter("cholectrack20", "CholecTrack20")
def read(root: Path, videos: Path | None) -> SourceRead:
    files = label_files(root)
    if not files:
        raise AnnotationError(str(root), "-", "<files>", f"no <{'|'.join(SPLITS)}>/VIDxx/VIDxx.json file")
    out = SourceRead([], files)
    out.videos = [read_video(p, root, out.warnings) for p in files]
    return out
