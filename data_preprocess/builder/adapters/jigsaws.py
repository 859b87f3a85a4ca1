"""JIGSAWS: per task folder (Suturing, Knot_Tying, Needle_Passing) `meta_file_<Task>.txt`
(trial, skill level N/I/E, GRS total, six 1-5 scores), `transcriptions/<trial>.txt` ("start end Gxx",
30 Hz frames) and `video/<trial>_capture1.avi` (30 fps). Trials without six scores are skipped (counted).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from data_preprocess.builder.adapters.base import SourceRead, adapter
from data_preprocess.builder.canonical import AnnotationError, FrameSource, Scores, Segment, Video, read_text_file
from data_preprocess.builder.validate import id_problem
from reward_fns.tasks.sa import ASPECTS

FPS = 30.0
PROCEDURES = {"Suturing": "robotic suturing", "Knot_Tying": "robotic knot tying",
              "Needle_Passing": "robotic needle passing"}


def _gestures(path: Path) -> list[Segment]:
    out = []
    if not path.is_file():
        return out
    for i, line in enumerate(read_text_file(path).splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise AnnotationError(str(path), i, "line", f"expected 'start end Gxx', got {line!r}")
        out.append(Segment(parts[2], int(parts[0]) / FPS, (int(parts[1]) + 1) / FPS, "gesture"))
    return out


def _duration(candidates: list[Path], gestures: list[Segment], skipped: Counter[str]) -> float:
    """The video's length (PyAV) if the file is there and readable, else the end of the last gesture."""
    import av

    from data_preprocess.builder.frames import probe_duration

    found = next((p for p in candidates if p.is_file()), None)
    if found:
        try:
            return probe_duration(found)
        except (av.FFmpegError, OSError, IndexError):
            skipped["video unreadable: length taken from the transcription"] += 1
    return max((g.end for g in gestures), default=0.0)


def read_task(folder: Path, videos: Path | None, skipped: Counter[str]) -> tuple[list[Video], Path]:
    task = folder.name
    meta = folder / f"meta_file_{task}.txt"
    out = []
    for i, line in enumerate(read_text_file(meta).splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 9:
            skipped["trial without six aspect scores"] += 1
            continue
        trial, level = parts[0], parts[1].upper()
        if problem := id_problem(trial):  # before the trial's files are opened
            raise AnnotationError(str(meta), i, "trial", problem)
        try:
            scores = [int(v) for v in parts[3:9]]
        except ValueError:
            raise AnnotationError(str(meta), i, "scores", f"six integers expected, got {parts[3:9]}") from None
        if level not in ("N", "I", "E") or any(not 1 <= s <= 5 for s in scores):
            raise AnnotationError(str(meta), i, "skill level/scores", f"N/I/E and 1-5 scores expected: {line!r}")
        gestures = _gestures(folder / "transcriptions" / f"{trial}.txt")
        rel = f"{task}/video/{trial}_capture1.avi"
        bases = [b for b in (videos, folder.parent) if b is not None]
        duration = _duration([p for b in bases for p in (b / rel, b / Path(rel).name)], gestures, skipped)
        if duration <= 0:
            skipped["trial without video or transcription"] += 1
            continue
        out.append(Video("JIGSAWS", trial, FPS, duration, FrameSource("video", rel), 640, 480,
                         PROCEDURES.get(task, task.replace("_", " ").lower()), gestures,
                         scores=[Scores(0.0, duration, "skill", dict(zip(ASPECTS, scores, strict=True)), level)]))
    return out, meta


@adapter("jigsaws", "JIGSAWS")
def read(root: Path, videos: Path | None) -> SourceRead:
    folders = sorted(p.parent for p in root.glob("*/meta_file_*.txt"))
    if not folders:
        raise AnnotationError(str(root), "-", "<files>", "no <Task>/meta_file_<Task>.txt")
    result = SourceRead([], [])
    for folder in folders:
        found, meta = read_task(folder, videos, result.skipped)
        result.videos += found
        result.files.append(meta)
        result.files += sorted((folder / "transcriptions").glob("*.txt"))
    return result
