"""AVOS (open surgery, YouTube): no official release, so two documented intermediate files under --root:

- `avos_segments.csv`: the predecessor project's 5-second segments `video_id, start_seconds, labeler_1,
  labeler_2, labeler_3`; the label is labeler_3 when given (the tie-breaker), else labeler_2, else
  labeler_1; `background` is no action. Consecutive equal labels merge into one `action` segment.
- `avos_boxes.json` (optional): `{video_id: {"width", "height", "boxes": [{"time", "label", "track",
  "left", "top", "width", "height"}]}}` with box fields as fractions of the image.

Videos `<youtube id>.mp4` under --videos; metadata frame numbers count at 15 fps like the test set.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from data_preprocess.builder.adapters.base import SourceRead, adapter, require
from data_preprocess.builder.adapters.tables import number, read_rows
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Segment, Video, read_json

SEGMENT_SECONDS = 5.0
FPS = 15.0
NO_ACTION = "background"


def _label(row: dict, where: str, i: int) -> str:
    for key in ("labeler_3", "labeler_2", "labeler_1"):
        value = str(row.get(key) or "").strip().lower()
        if value:
            return value
    raise AnnotationError(where, i, "labeler_2", "no label in any labeler column")


def read_segments(path: Path) -> dict[str, list[Segment]]:
    where = str(path)
    rows: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for i, row in enumerate(read_rows(path)):
        vid = str(row.get("video_id") or "").strip()
        if not vid:
            raise AnnotationError(where, i, "video_id", "missing")
        rows[vid].append((number(row.get("start_seconds"), where, i, "start_seconds"), _label(row, where, i)))
    out: dict[str, list[Segment]] = {}
    for vid, items in rows.items():
        segs: list[Segment] = []
        for start, label in sorted(items):
            end = start + SEGMENT_SECONDS
            if label == NO_ACTION:
                continue
            if segs and segs[-1].label == label and abs(segs[-1].end - start) < 1e-6:
                segs[-1] = Segment(label, segs[-1].start, end, "action")
            else:
                segs.append(Segment(label, start, end, "action"))
        out[vid] = segs
    return out


def read_boxes(path: Path) -> dict[str, tuple[int, int, list[Box]]]:
    data = read_json(path)
    try:
        out = {}
        for vid, entry in data.items():
            w, h = int(entry["width"]), int(entry["height"])
            boxes = [Box(float(b["time"]), str(b["label"]), str(b["track"]),
                         (b["left"] * w, b["top"] * h, (b["left"] + b["width"]) * w, (b["top"] + b["height"]) * h))
                     for b in entry["boxes"]]
            out[vid] = (w, h, boxes)
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnnotationError(str(path), "-", "width/height/boxes", f"malformed AVOS box file ({exc!r})") from None


@adapter("avos", "AVOS")
def read(root: Path, videos: Path | None) -> SourceRead:
    seg_path = require(root / "avos_segments.csv", "AVOS 5-second segment CSV")
    box_path = root / "avos_boxes.json"
    segments = read_segments(seg_path)
    boxes = read_boxes(box_path) if box_path.is_file() else {}
    out = []
    for vid in sorted(set(segments) | set(boxes)):
        segs = segments.get(vid, [])
        w, h, bxs = boxes.get(vid, (0, 0, []))
        duration = max([s.end for s in segs] + [b.time + 1 for b in bxs] + [0.0])
        out.append(Video("AVOS", vid, FPS, duration, FrameSource("video", vid), w, h, "open surgery", segs, bxs))
    return SourceRead(out, [seg_path] + ([box_path] if box_path.is_file() else []))
