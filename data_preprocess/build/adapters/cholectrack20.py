"""CholecTrack20 (CAMMA): `<Training|Validation|Testing>/VIDxx/VIDxx.json` and `.../Frames/000001.png`
(1 fps files named by the 1-based 25-fps frame number).

Tool boxes (normalized xywh) become tracks keyed by `TRACK_KEY` (the intraoperative track: one id per
tool for the whole operation, so an STG record follows one physical instrument).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_preprocess.build.adapters.base import SourceRead, adapter
from data_preprocess.build.adapters.cholect50 import names
from data_preprocess.build.canonical import AnnotationError, Box, FrameSource, Video, read_json

SPLITS = ("Training", "Validation", "Testing")
TRACK_KEY = "intraoperative_track"
NATIVE_FPS = 25.0


def _tool_name(value: Any, tools: Mapping[int, str]) -> str:
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        return value
    return tools.get(int(value), f"tool{value}")


def read_video(path: Path, root: Path) -> Video:
    where = str(path)
    data = read_json(path)
    try:
        meta, annotations = data["video"], data["annotations"]
    except (KeyError, TypeError) as exc:
        raise AnnotationError(where, "-", "video/annotations", f"unreadable track file ({exc!r})") from None
    if not isinstance(meta, Mapping) or not isinstance(annotations, Mapping):
        raise AnnotationError(where, "-", "video/annotations", "must be objects ({...}, {frame: objects})")
    tools = names(data.get("categories") or {}, "tools")
    width, height = int(meta.get("width") or 854), int(meta.get("height") or 480)
    boxes = []
    for frame_key, objects in annotations.items():
        if not str(frame_key).isdecimal():
            raise AnnotationError(where, frame_key, "annotations", "keys must be frame numbers")
        time = (int(frame_key) - 1) / NATIVE_FPS
        for i, obj in enumerate(objects or []):
            try:
                x, y, w, h = (float(v) for v in obj["tool_bbox"])
                tool = _tool_name(obj["instrument"], tools)
                track = str(obj.get(TRACK_KEY, f"{tool}-{i}"))
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationError(where, frame_key, "tool_bbox/instrument", f"malformed object ({exc!r})") from None
            if w > 0 and h > 0:
                boxes.append(Box(time, tool, track, (x * width, y * height, (x + w) * width, (y + h) * height)))
    vid = path.parent.name
    n = int(meta.get("num_frames") or 0) or (max((int(k) for k in annotations), default=0))
    frames = FrameSource("folder", f"{path.parent.relative_to(root).as_posix()}/Frames", "{n:06d}.png",
                         NATIVE_FPS, 1, 1.0)
    return Video("CholecTrack20", vid.lower(), NATIVE_FPS, n / NATIVE_FPS, frames, width, height,
                 "laparoscopic cholecystectomy", [], boxes)


@adapter("cholectrack20", "CholecTrack20")
def read(root: Path, videos: Path | None) -> SourceRead:
    files = sorted(p for split in SPLITS for p in (root / split).glob("*/*.json") if p.stem == p.parent.name)
    if not files:
        raise AnnotationError(str(root), "-", "<files>", f"no <{'|'.join(SPLITS)}>/VIDxx/VIDxx.json file")
    return SourceRead([read_video(p, root) for p in files], files)
