"""EgoSurgery as released: JPEG frames and per-take annotations, no video files.

    images/<n>/<n>_<k>_<frame>.jpg            frames of take `<n>_<k>` (procedure n, recording k)
    annotations/phase/<n>_<k>.csv             columns Frame, Phase (Frame = the image's stem or its number)
    annotations/bbox/**/*.json                COCO files (images, annotations with pixel xywh, categories),
                                              e.g. by_split/tools/train.json and by_split/hands/train.json

Frame numbers count at `NATIVE_FPS` (30, an assumption: the release does not state it); the images of a
take are spaced by their most common step (e.g. every 60th frame = 0.5 fps), and that is the highest record
fps the take allows. Phases: consecutive frames of one label make a segment (a gap of more than two steps
breaks it). Boxes: one track per category (the release has no track ids), the first box of a category in
a frame kept. Everything left out is counted in the manifest's warnings. video_id = the take (`01_1`).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_preprocess.builder.adapters.base import SourceRead, image_size
from data_preprocess.builder.adapters.tables import column, read_rows
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Segment, Video, read_json

NATIVE_FPS = 30.0
# The EgoSurgery-Phase paper's phase order, used only when a phase CSV gives numbers (warned).
PHASES = ("disinfection", "design", "anesthesia", "incision", "dissection", "hemostasis", "irrigation", "closure",
          "dressing")
TAKE = re.compile(r"^(\d+_\d+)_(\d+)$")  # <n>_<k>_<frame>


def is_release(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "annotations").is_dir()


def _split(stem: str) -> tuple[str, str] | None:
    """'01_1_000120' -> ('01_1', '000120')."""
    m = TAKE.match(stem)
    return (m.group(1), m.group(2)) if m else None


def _frames(root: Path) -> dict[str, dict[int, str]]:
    """{take: {frame number: frame digits as written}} from images/<n>/."""
    out: dict[str, dict[int, str]] = defaultdict(dict)
    for path in (root / "images").glob("*/*.jpg"):
        parts = _split(path.stem)
        if parts and parts[0].split("_")[0] == path.parent.name:
            out[parts[0]][int(parts[1])] = parts[1]
    return out


def _layout(take: str, frames: Mapping[int, str]) -> tuple[FrameSource, float, float]:
    """The take's frame source, its frame step (native frames) and its duration in seconds."""
    numbers = sorted(frames)
    steps = Counter(b - a for a, b in itertools.pairwise(numbers) if b > a)
    step = steps.most_common(1)[0][0] if steps else 1
    widths = Counter(len(d) for d in frames.values())
    padded = any(d != str(int(d)) for d in frames.values())
    number = f"{{n:0{widths.most_common(1)[0][0]}d}}" if padded else "{n}"
    offset = numbers[0] % step
    source = FrameSource("folder", f"images/{take.split('_')[0]}", f"{take}_{number}.jpg", NATIVE_FPS, offset,
                         NATIVE_FPS / step)
    return source, step, (numbers[-1] - offset + step) / NATIVE_FPS


def _phase_label(value: Any, warnings: Counter[str]) -> str | None:
    text = str(value).strip()
    if text.isdigit():
        if int(text) < len(PHASES):
            warnings["EgoSurgery phase numbers named through the paper's phase order (assumption)"] += 1
            return PHASES[int(text)]
        warnings["EgoSurgery phase numbers outside the 9 phases (frame left without a phase)"] += 1
        return None
    return text or None


def read_phases(path: Path, step: int, offset: int, warnings: Counter[str]) -> list[Segment]:
    """Runs of one phase label over consecutive frames, as segments."""
    where, labelled = str(path), []
    for i, row in enumerate(read_rows(path)):
        frame = str(column(row, ("frame", "frame_id", "image"), where, i)).strip()
        digits = re.findall(r"\d+", Path(frame).stem)
        if not digits:
            raise AnnotationError(where, i, "Frame", f"no frame number in {frame!r}")
        label = _phase_label(column(row, ("phase", "label"), where, i), warnings)
        if label is not None:
            labelled.append((int(digits[-1]), label))
    segments: list[Segment] = []
    last = None
    for frame, label in sorted(labelled):
        start, end = (frame - offset) / NATIVE_FPS, (frame - offset + step) / NATIVE_FPS
        if segments and segments[-1].label == label and last is not None and frame - last <= 2 * step:
            segments[-1] = Segment(label, segments[-1].start, end, "phase")
        else:
            segments.append(Segment(label, start, end, "phase"))
        last = frame
    return segments


def read_boxes(files: list[Path], warnings: Counter[str]) -> dict[str, dict[tuple[int, str], tuple[float, ...]]]:
    """{take: {(frame, category): pixel xyxy}} from the COCO files (the first box of a category in a frame)."""
    out: dict[str, dict[tuple[int, str], tuple[float, ...]]] = defaultdict(dict)
    for path in files:
        data = read_json(path)
        try:
            images = {im["id"]: str(im["file_name"]) for im in data.get("images", [])}
            categories = {c["id"]: str(c["name"]).strip() for c in data.get("categories", [])}
            annotations = list(data.get("annotations", []))
        except (AttributeError, KeyError, TypeError) as exc:
            raise AnnotationError(str(path), "-", "images/categories", f"not a COCO file ({exc!r})") from None
        for i, ann in enumerate(annotations):
            try:
                name, category = images.get(ann["image_id"]), categories.get(ann["category_id"])
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationError(str(path), i, "image_id/category_id/bbox", repr(exc)) from None
            parts = _split(Path(name).stem) if name else None
            if parts is None or category is None:
                warnings["EgoSurgery boxes with an unknown image or category id (left out)"] += 1
                continue
            key = (int(parts[1]), category)
            if key in out[parts[0]] and out[parts[0]][key] != (x, y, x + w, y + h):
                warnings["EgoSurgery boxes of a category seen twice in one frame (first kept)"] += 1
                continue
            out[parts[0]][key] = (x, y, x + w, y + h)
    return out


def read_release(root: Path) -> SourceRead:
    phase_files = {p.stem: p for p in sorted((root / "annotations" / "phase").glob("*.csv"))}
    box_files = sorted((root / "annotations" / "bbox").rglob("*.json"))
    out = SourceRead([], [*phase_files.values(), *box_files])
    frames = _frames(root)
    boxes = read_boxes(box_files, out.warnings)
    for take in sorted(set(phase_files) | set(boxes)):
        if take not in frames:
            out.warnings[f"EgoSurgery takes with annotations but no images/<n>/{'<take>'}_*.jpg (left out)"] += 1
            continue
        source, step, duration = _layout(take, frames[take])
        segments = read_phases(phase_files[take], step, source.offset, out.warnings) if take in phase_files else []
        width, height = image_size(root / source.path, (1920, 1080))
        take_boxes = [Box((frame - source.offset) / NATIVE_FPS, category, category, xyxy)
                      for (frame, category), xyxy in sorted(boxes.get(take, {}).items())]
        out.videos.append(Video("EgoSurgery", take, NATIVE_FPS, duration, source, width, height, "open surgery",
                                segments, take_boxes))
    unannotated = set(frames) - set(phase_files) - set(boxes)
    if unannotated:
        out.skipped["EgoSurgery takes with frames but no annotations"] += len(unannotated)
    if not out.videos:
        raise AnnotationError(str(root / "annotations"), "-", "<files>",
                              "no take with both frames (images/<n>/) and annotations (phase/*.csv or bbox/**/*.json)")
    return out
