"""EgoSurgery: the released layout (JPEG frames `images/<n>/<n>_<k>_<frame>.jpg` and `annotations/`,
read in place: see egosurgery_images.py) when --root holds `images/` and `annotations/`; otherwise the
documented intermediate CSVs under --root (pixel boxes, seconds), for frames extracted from videos:

- `videos.csv`: video_id, fps, duration, width, height[, procedure]
- `phases.csv`: video_id, start, end, phase
- `boxes.csv` (optional): video_id, time, label, track, x1, y1, x2, y2

Videos `<video_id>.mp4` under --videos; frames are extracted at the record fps.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from data_preprocess.builder.adapters.base import SourceRead, adapter, require
from data_preprocess.builder.adapters.egosurgery_images import is_release, read_release
from data_preprocess.builder.adapters.tables import column, number, read_rows
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Segment, Video


@adapter("egosurgery", "EgoSurgery")
def read(root: Path, videos: Path | None) -> SourceRead:
    if is_release(root):
        return read_release(root)
    meta_path = require(root / "videos.csv", "EgoSurgery videos.csv, or the released images/ + annotations/ "
                                             "(see docs/builder.md)")
    phase_path, box_path = root / "phases.csv", root / "boxes.csv"
    segs: dict[str, list[Segment]] = defaultdict(list)
    boxes: dict[str, list[Box]] = defaultdict(list)
    if phase_path.is_file():
        for i, row in enumerate(read_rows(phase_path)):
            w = str(phase_path)
            segs[str(column(row, ("video_id",), w, i))].append(Segment(
                str(column(row, ("phase", "label"), w, i)).strip(), number(row.get("start"), w, i, "start"),
                number(row.get("end"), w, i, "end"), "phase"))
    if box_path.is_file():
        for i, row in enumerate(read_rows(box_path)):
            w = str(box_path)
            xyxy = tuple(number(row.get(k), w, i, k) for k in ("x1", "y1", "x2", "y2"))
            boxes[str(column(row, ("video_id",), w, i))].append(Box(
                number(row.get("time"), w, i, "time"), str(column(row, ("label",), w, i)),
                str(column(row, ("track", "track_id"), w, i)), xyxy))
    out = []
    where = str(meta_path)
    for i, row in enumerate(read_rows(meta_path)):
        vid = str(column(row, ("video_id",), where, i))
        fps, duration = number(row.get("fps"), where, i, "fps"), number(row.get("duration"), where, i, "duration")
        if fps <= 0 or duration <= 0:
            raise AnnotationError(where, i, "fps/duration", "must be > 0")
        out.append(Video("EgoSurgery", vid, fps, duration, FrameSource("video", vid),
                         int(number(row.get("width") or 1920, where, i, "width")),
                         int(number(row.get("height") or 1080, where, i, "height")),
                         str(row.get("procedure") or "open surgery"), segs.pop(vid, []), boxes.pop(vid, [])))
    unknown = sorted(set(segs) | set(boxes))
    if unknown:
        raise AnnotationError(where, "-", "video_id", f"annotations for videos missing from videos.csv: {unknown[:5]}")
    files = [meta_path] + [p for p in (phase_path, box_path) if p.is_file()]
    return SourceRead(out, files)
