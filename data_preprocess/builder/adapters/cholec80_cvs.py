"""Cholec80-CVS: `surgeons_annotations.xlsx` (or a .csv export) over the Cholec80 videos (25 fps).

Columns (spellings normalized): video, initial minute, initial second, final minute, final second,
two structures, cystic plate, hepatocystic triangle, [total], [critical view]. Videos `videoNN.mp4`
under --videos (default --root/videos).
"""

from __future__ import annotations

import re
from pathlib import Path

from data_preprocess.builder.adapters.base import SourceRead, adapter
from data_preprocess.builder.adapters.tables import column, first_existing, number, read_rows, unread_sheets
from data_preprocess.builder.canonical import AnnotationError, FrameSource, Scores, Video

FPS = 25.0
FILES = ("surgeons_annotations.xlsx", "surgeons_annotations.csv")
COLUMNS = {
    "video": ("video", "video_id", "video_name"),
    "start_min": ("initial_minute", "initial_min", "start_minute"),
    "start_sec": ("initial_second", "initial_sec", "start_second"),
    "end_min": ("final_minute", "final_min", "end_minute"),
    "end_sec": ("final_second", "final_sec", "end_second"),
    "two_structures": ("two_structures", "two_tubular_structures", "c1"),
    "cystic_plate": ("cystic_plate", "c2"),
    "hepatocystic_triangle": ("hepatocystic_triangle", "hepatocystic_triangle_clearance", "c3"),
}
ACHIEVED = ("critical_view", "critical_view_of_safety", "cvs", "cvs_achieved")


def video_id(value: object) -> str:
    digits = re.findall(r"\d+", str(value))
    if not digits:
        raise ValueError(f"no video number in {value!r}")
    return f"video{int(digits[0]):02d}"


@adapter("cholec80_cvs", "Cholec80-CVS")
def read(root: Path, videos: Path | None) -> SourceRead:
    path = first_existing(root / name for name in FILES)
    if path is None:
        raise AnnotationError(str(root), "-", "<files>", f"none of {FILES}")
    where = str(path)
    by_video: dict[str, list[Scores]] = {}
    for i, row in enumerate(read_rows(path)):
        get = {k: column(row, names, where, i) for k, names in COLUMNS.items()}
        try:
            vid = video_id(get["video"])
        except ValueError as exc:
            raise AnnotationError(where, i, "video", str(exc)) from None
        start = number(get["start_min"], where, i, "initial minute") * 60 + number(get["start_sec"], where, i, "s")
        end = number(get["end_min"], where, i, "final minute") * 60 + number(get["end_sec"], where, i, "s")
        values = {k: number(get[k], where, i, k) for k in ("two_structures", "cystic_plate", "hepatocystic_triangle")}
        if any(v not in (0, 1, 2) for v in values.values()):  # 1.7 is not a score (no rounding)
            raise AnnotationError(where, i, "criteria", f"scores must be 0, 1 or 2, got {values}")
        values = {k: int(v) for k, v in values.items()}
        extra = {}
        achieved = next((row[k] for k in ACHIEVED if row.get(k) not in (None, "")), None)
        if achieved is not None:
            flag = number(achieved, where, i, "critical view")
            if flag not in (0, 1):
                raise AnnotationError(where, i, "critical view", f"must be 0 or 1, got {achieved!r}")
            extra["critical_view_achieved"] = flag == 1
        by_video.setdefault(vid, []).append(Scores(start, end, "cvs", values, extra=extra))
    out = [Video("Cholec80-CVS", vid, FPS, max(1.0, *(s.end for s in scores)), FrameSource("video", f"videos/{vid}"),
                 procedure="laparoscopic cholecystectomy", scores=scores)
           for vid, scores in sorted(by_video.items())]
    result = SourceRead(out, [path])
    for sheet in unread_sheets(path):
        result.warnings[f"Cholec80-CVS {path.name} sheet {sheet!r} not read (only the first sheet is)"] += 1
    return result
