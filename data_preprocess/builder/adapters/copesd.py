"""CoPESD (endoscopic submucosal dissection). Without `copesd_annotations.json` under --root the adapter
reads the distributed form: the LLaVA-style per-image JSON and the `high_light_images/` folders (see
copesd_release.py). With it, the documented intermediate file (motions and boxes per video):

    {"<video_id>": {"frames": "high_light_images/023521", "pattern": "{n:04d}.jpg", "fps": 1.0,
                    "first_frame": 1, "width": 1920, "height": 1080,
                    "motions": [{"label": "...", "start": s, "end": e}],
                    "boxes": [{"time": s, "label": "Forceps", "track": "forceps", "bbox": [x1, y1, x2, y2]}]}}

`frames` is a frame folder relative to --root (read in place; absolute paths and `..` are refused); file n
shows time (n - first_frame) / fps. `pattern` has one frame-number field (`{n}`, `{n:04d}`), nothing else.
Boxes are normalized xyxy (0-1, like the released LLaVA-style JSON), scaled to the size of the
folder's first frame (`width` x `height` only when the folder holds no image yet).
Old motion names are mapped to the current ones through the alias table of nap_classes.json.
Boxes may also come from the released LLaVA-style files, saved under --root as `copesd_llava*.json`
(see copesd_llava.py); they are added to the intermediate file's boxes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from data_preprocess.builder.adapters.base import SourceRead, adapter, image_size, require
from data_preprocess.builder.adapters.copesd_llava import LLAVA_GLOB, llava_boxes
from data_preprocess.builder.adapters.copesd_release import read_release, release_files
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Segment, Video, read_json
from data_preprocess.builder.validate import (
    MAX_FPS,
    MAX_FRAME_NUMBER,
    integer_problem,
    number_problem,
    relpath_problem,
    to_number,
)
from reward_fns.tasks.nap import canonical, class_table

FILE = "copesd_annotations.json"


def _text(value: object) -> str:
    """A label as given: text, not a number, list or null turned into text."""
    if not isinstance(value, str):
        raise TypeError(f"label must be text, got {value!r}")
    return value


def read_video(vid: str, entry: dict, root: Path, where: str, extra: list[Box],
               warnings: Counter[str] | None = None) -> Video:
    try:
        fps = float(entry.get("fps", 1.0))
        declared = int(entry.get("width", 1920)), int(entry.get("height", 1080))
        w, h = image_size(root / str(entry["frames"]), declared)
        segs = [Segment(canonical("CoPESD", _text(m["label"])), to_number(m["start"]), to_number(m["end"]), "motion")
                for m in entry.get("motions", [])]
        boxes = [Box(to_number(b["time"]), _text(b["label"]), str(b.get("track", b["label"])),
                     tuple(to_number(v) for v in b["bbox"])) for b in entry.get("boxes", [])]
        boxes = [Box(b.time, b.label, b.track, (b.xyxy[0] * w, b.xyxy[1] * h, b.xyxy[2] * w, b.xyxy[3] * h))
                 for b in boxes + extra]
        frames = FrameSource("folder", str(entry["frames"]), str(entry.get("pattern", "{n:04d}.jpg")), fps,
                             int(entry.get("first_frame", 1)), fps)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(where, vid, "frames/motions/boxes", f"malformed ({exc!r})") from None
    unknown = [s for s in segs if s.label not in class_table()["CoPESD"]]
    if unknown and warnings is not None:
        warnings["CoPESD motion names outside the leaderboard's classes and aliases (kept; NAP drops them)"] += \
            len(unknown)
    duration = float(entry.get("duration") or max([s.end for s in segs] + [b.time + 1 / fps for b in boxes] + [0]))
    return Video("CoPESD", vid, fps, duration, frames, w, h, "endoscopic submucosal dissection", segs, boxes)


def check_entry(vid: str, entry: object, where: str) -> None:
    """What must hold before the folder is opened or a time computed: the frame folder stays inside
    --root, fps > 0, first_frame >= 0 (the rest is checked on the canonical video)."""
    if not isinstance(entry, dict):
        raise AnnotationError(where, vid, "<video>", "must be an object")
    checks = {"frames": relpath_problem(entry.get("frames")),
              "fps": number_problem(entry.get("fps", 1.0), 0, MAX_FPS, above=True),
              "first_frame": integer_problem(entry.get("first_frame", 1), 0, MAX_FRAME_NUMBER)}
    for field_name, problem in checks.items():
        if problem:
            raise AnnotationError(where, vid, field_name, problem)


@adapter("copesd", "CoPESD")
def read(root: Path, videos: Path | None) -> SourceRead:
    if not (root / FILE).exists() and release_files(root):
        return read_release(root, release_files(root))
    path = require(root / FILE, "CoPESD intermediate annotation JSON, or the distributed LLaVA-style JSON "
                                "copesd_llava*.json / smllm*.json (see docs/builder.md)")
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(str(path), "-", "<file>", "must map video ids to annotation objects")
    for vid, entry in data.items():
        check_entry(vid, entry, str(path))
    folders = {str(e.get("frames", "")).strip("/"): (vid, float(e.get("fps", 1.0)), int(e.get("first_frame", 1)))
               for vid, e in data.items() if isinstance(e, dict)}
    llava_files = sorted(root.glob(LLAVA_GLOB))
    extra: dict[str, list[Box]] = {}
    for llava in llava_files:
        for vid, boxes in llava_boxes(llava, folders).items():
            extra.setdefault(vid, []).extend(boxes)
    out = SourceRead([], [path, *llava_files])
    out.videos = [read_video(vid, entry, root, str(path), extra.get(vid, []), out.warnings)
                  for vid, entry in sorted(data.items())]
    return out
