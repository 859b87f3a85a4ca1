"""CholecT50 (CAMMA): `videos/VIDxx/000000.png` (1 fps, index = second), `labels/VIDxx.json`.

Label vector per instance: [triplet, instrument, score, x, y, w, h, verb, target, score, x, y, w, h, phase]
(boxes normalized xywh, -1 = none). Phases become `phase` segments whose details list the instruments,
verbs, targets and triplets seen during them; instrument boxes become one track per instrument class.
The public Release 2.0 sets every box to -1: such a video gets no boxes and a manifest warning (no RC/STG
from it). `null_verb` / `null_target` parts never reach the caption facts (counted as a warning).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_preprocess.builder.adapters.base import SourceRead, adapter, image_size, require
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Segment, Video, read_json
from data_preprocess.builder.validate import MAX_FPS, number_problem

DETAIL_CAP = 6


def names(categories: Mapping[str, Any], key: str, where: str = "-") -> dict[int, str]:
    """A category table as {int id: name}: `{id: name}`, `[name, ...]` or `[{"id": .., "name": ..}, ...]`
    (CholecTrack20's `categories.tools`)."""
    table = categories.get(key) or {}
    if isinstance(table, Mapping):
        items: list[tuple[Any, Any]] = list(table.items())
    elif isinstance(table, list):
        items = [(e.get("id"), e.get("name")) if isinstance(e, Mapping) else (i, e) for i, e in enumerate(table)]
    else:
        raise AnnotationError(where, "-", f"categories.{key}", f"not a table: {type(table).__name__}")
    try:
        return {int(k): str(v).strip() for k, v in items if v is not None}
    except (TypeError, ValueError):
        raise AnnotationError(where, "-", f"categories.{key}", f"ids must be integers: {items[:3]}") from None


def is_null(name: str) -> bool:
    """`null_verb`, `grasper,null_verb,null_target`: a triplet part that names no action or target."""
    return any(part.strip().startswith("null") for part in name.split(","))


def _details(rows: list[list[float]], cats: Mapping[str, dict[int, str]],
             warnings: Counter[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, col in (("instruments", 1), ("verbs", 7), ("targets", 8), ("triplets", 0)):
        table = cats["instrument" if key == "instruments" else key[:-1]]
        seen = Counter(table[int(r[col])] for r in rows if int(r[col]) in table)
        nulls = [n for n in seen if is_null(n)]
        if key == "triplets" and nulls:
            warnings["CholecT50 triplets with null_verb/null_target left out of caption facts"] += \
                sum(seen[n] for n in nulls)
        names_ = [n for n, _ in seen.most_common() if not is_null(n)][:DETAIL_CAP]
        if names_:
            out[key] = names_
    return out


def read_video(path: Path, root: Path, warnings: Counter[str] | None = None) -> Video:
    where = str(path)
    warnings = Counter() if warnings is None else warnings
    data = read_json(path)
    try:
        annotations = data["annotations"]
        categories = data["categories"]
    except (KeyError, TypeError) as exc:
        raise AnnotationError(where, "-", "annotations/categories", f"unreadable label file ({exc!r})") from None
    if not isinstance(annotations, Mapping) or not isinstance(categories, Mapping):
        raise AnnotationError(where, "-", "annotations/categories",
                              "must be objects ({frame: vectors}, {table: names})")
    fps = 1.0 if data.get("fps") is None else data["fps"]
    if problem := number_problem(fps, 0, MAX_FPS, above=True):
        raise AnnotationError(where, "-", "fps", problem)
    cats = {k: names(categories, k, where) for k in ("triplet", "instrument", "verb", "target", "phase")}
    vid = path.stem
    folder = root / "videos" / vid
    width, height = image_size(folder, (854, 480))
    fps = float(fps)
    frames = sorted((int(k), v) for k, v in annotations.items())
    runs: list[tuple[str, int, int, list[list[float]]]] = []  # phase, first, last frame, vectors
    boxes: list[Box] = []
    for frame, vectors in frames:
        if not isinstance(vectors, list) or any(not isinstance(v, list) or len(v) < 15 for v in vectors):
            raise AnnotationError(where, frame, "annotations", "each instance must be a 15-number vector")
        phase_ids = [int(v[14]) for v in vectors if int(v[14]) in cats["phase"]]
        unknown = {int(v[14]) for v in vectors} - set(cats["phase"]) - {-1}
        if unknown:
            warnings["CholecT50 phase ids not in categories.phase (frame left without a phase)"] += 1
        if phase_ids:
            phase = cats["phase"][phase_ids[0]]
            if runs and runs[-1][0] == phase and runs[-1][2] == frame - 1:
                runs[-1] = (phase, runs[-1][1], frame, runs[-1][3] + vectors)
            else:
                runs.append((phase, frame, frame, list(vectors)))
        seen: set[str] = set()
        for v in vectors:
            tool = cats["instrument"].get(int(v[1]))
            if tool is None and int(v[1]) != -1:
                warnings["CholecT50 instrument ids not in categories.instrument (box left out)"] += 1
            if tool is None or tool in seen or min(v[3:7]) < 0 or v[5] <= 0 or v[6] <= 0:
                continue
            seen.add(tool)
            x, y, w, h = (float(a) for a in v[3:7])
            boxes.append(Box(frame / fps, tool, tool, (x * width, y * height, (x + w) * width, (y + h) * height)))
    segments = [Segment(phase, a / fps, (b + 1) / fps, "phase", _details(rows, cats, warnings))
                for phase, a, b, rows in runs]
    if not boxes:
        warnings["CholecT50 videos without instrument boxes (all -1, as in the public Release 2.0): "
                 "no RC/STG records from them"] += 1
    n = int(data.get("num_frames") or (frames[-1][0] + 1 if frames else 0))
    return Video("CholecT50", vid, fps, n / fps, FrameSource("folder", f"videos/{vid}", "{n:06d}.png", fps, 0, fps),
                 width, height, "laparoscopic cholecystectomy", segments, boxes)


@adapter("cholect50", "CholecT50")
def read(root: Path, videos: Path | None) -> SourceRead:
    labels = sorted(require(root / "labels", "CholecT50 labels/VIDxx.json").glob("*.json"))
    if not labels:
        raise AnnotationError(str(root / "labels"), "-", "<files>", "no VIDxx.json label file")
    out = SourceRead([], labels)
    out.videos = [read_video(p, root, out.warnings) for p in labels]
    return out
