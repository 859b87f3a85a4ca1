"""STG (`stg`): spatio-temporal grounding, `T seconds: [x1, y1, x2, y2]` boxes scored by mean IoU."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from reward_fns.reference import Reference
from reward_fns.registry import Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import NUM, clip01, mean, text_of, to_int, unparsed

Box = list[float]
ZERO_BOX: Box = [0.0, 0.0, 0.0, 0.0]
_INT64_MAX = 2**63 - 1

# `(?<!\d)` only skips starts inside a digit run: same matches, linear time on very long numbers
_ENTRY = re.compile(rf"(?<!\d)({NUM})\s+seconds:\s*\[([^\]]+)\]")
_FALLBACK_BOX = re.compile(r"\[\[([\d\s,]++)\]\]")


@dataclass(frozen=True)
class BoxPrediction:
    """Boxes keyed by `str(float(T))`, or (fallback) boxes in text order, given to the GT keys in order."""

    boxes: Mapping[str, Box] = field(default_factory=dict)
    fallback: tuple[Box, ...] = ()


def _box_from_body(body: str) -> Box | None:
    """4 floats from a `[...]` body split on commas, or None."""
    try:
        numbers = [float(piece.strip().lstrip("[").rstrip("]")) for piece in body.split(",")]
    except ValueError:
        return None
    return numbers if len(numbers) == 4 else None


def _fallback_box(body: str) -> Box | None:
    """4 integers from a `[[a, b, c, d]]` body; None when a piece is not an integer int() accepts."""
    values = [to_int(piece.strip()) for piece in body.split(",")]
    if len(values) != 4 or any(v is None for v in values):
        return None
    return values  # type: ignore[return-value]  (ints, kept exact)


def parse_boxes(answer: object) -> Parsed[BoxPrediction]:
    """Predicted boxes (spec section 3 + 4b, STG).

    Fallback boxes (only when no entry matched) keep their text order: they are assigned to the
    ground-truth keys in order at scoring time; a box that is not 4 integers is skipped.
    """
    text = text_of(answer)
    entries = _ENTRY.findall(text, 0, text.rfind("]") + 1)  # nothing after the last ']' can end an entry
    if entries:
        boxes: dict[str, Box] = {}
        last_good: Box | None = None
        for seconds, body in entries:
            box = _box_from_body(body)
            if box is None:
                box = last_good
            else:
                last_good = box
            if box is not None:
                boxes[str(float(seconds))] = box
        if boxes:
            return Parsed(BoxPrediction(boxes=boxes), ok=True)
        return unparsed("every 'T seconds: [...]' entry failed to give 4 numbers", empty=BoxPrediction())
    fallback = tuple(box for body in _FALLBACK_BOX.findall(text) if (box := _fallback_box(body)) is not None)
    if fallback:
        return Parsed(BoxPrediction(fallback=fallback), ok=True)
    return unparsed("no 'T seconds: [x1, y1, x2, y2]' entry found", empty=BoxPrediction())


def gt_boxes(ref: Reference) -> dict[str, Box]:
    """`struc_info[0].bbox_dict` (keys as written, e.g. '1.0')."""
    if not ref.struc_info or not isinstance(ref.struc_info[0], Mapping):
        return {}
    bbox = ref.struc_info[0].get("bbox_dict") or {}
    return {str(k): [float(v) for v in box] for k, box in bbox.items()}


def _finite(box: Sequence[float]) -> bool:
    return all(isinstance(v, int) or math.isfinite(v) for v in box)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """inter / max(union, 1e-6) with clipped overlaps.

    Deviations from the public scorer (spec 4b): a NaN or infinite coordinate scores 0 (it turns the
    whole column into NaN there); integers beyond 64 bits are computed exactly (it wraps them around);
    a ratio too large for a float (degenerate boxes only) scores 0.
    """
    if not (_finite(a) and _finite(b)):
        return 0.0
    if any(isinstance(v, int) and abs(v) > _INT64_MAX for v in (*a, *b)):
        a, b = [Fraction(v) for v in a], [Fraction(v) for v in b]
    try:
        iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        iou = float(inter / max(union, 1e-6))
    except OverflowError:
        return 0.0
    return iou if math.isfinite(iou) else 0.0


def _prediction_lookup(value: BoxPrediction, gt_keys: Sequence[str]) -> Mapping[str, Box]:
    if value.fallback:
        return dict(zip(gt_keys, value.fallback, strict=False))
    return value.boxes


def sample_miou(value: BoxPrediction, gt: Mapping[str, Box]) -> float:
    """Mean IoU over GT keys; missing or all-zero predictions reuse the previous key's box."""
    predicted = _prediction_lookup(value, list(gt))
    previous = ZERO_BOX
    ious = []
    for key, gt_box in gt.items():
        box = predicted.get(f"{float(key):.1f}")
        if box is None or all(v == 0 for v in box):
            box = previous
        previous = box
        ious.append(box_iou(box, gt_box))
    return mean(ious)


def evaluate(parsed: Parsed[BoxPrediction], ref: Reference, strict: bool = False) -> SampleResult:
    """Records with an empty box dict are left out."""
    gt = gt_boxes(ref)
    if not gt:
        return SampleResult(counted=False, reason="ground truth has an empty bbox_dict")
    return SampleResult(counted=True, scores={"miou": sample_miou(parsed.value, gt)},
                        reason=parsed.reason)


def reward(parsed: Parsed[BoxPrediction], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """Raw reward: the sample mIoU."""
    gt = gt_boxes(ref)
    return clip01(sample_miou(parsed.value, gt)) if gt else 0.0


def gt_problem(ref: Reference) -> str | None:
    return None if gt_boxes(ref) else "ground truth has an empty bbox_dict"


TASK = register_task(Task(
    name="STG", stem="stg", parse=parse_boxes, evaluate=evaluate, reward=reward, gt_problem=gt_problem,
    columns=(Column("stg_miou", "STG mIoU", "mean_score", "pooled", paper=(0.177, 0.202), score="miou"),),
))
