"""TAG (`tal`): temporal action grounding, parsed and matched exactly like the leaderboard."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reward_fns.reference import Reference
from reward_fns.registry import Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import NUM, clip01, mean, text_of, to_int, unparsed

Span = tuple[float, float]

# `(?<!\d)` only skips starts inside a digit run: same matches, linear time on very long numbers
_DASH_SPAN = re.compile(rf"(?<!\d)({NUM})\s*-\s*({NUM})")
_UNIT = r"(?:s| seconds?)?"  # glued `12s`, or exactly one space + second(s) (spec 4b)
_TO_SPAN = re.compile(rf"(?<!\d)({NUM}){_UNIT}\s*to\s*({NUM}){_UNIT}", re.IGNORECASE)
_HMS = r"(\d+):(\d+):(\d+)"
_HMS_SPAN = re.compile(rf"(?<!\d){_HMS}\s+to\s+{_HMS}", re.IGNORECASE)
THRESHOLDS: tuple[float, ...] = (0.3, 0.5)


def _hms_span(groups: Sequence[str]) -> Span | None:
    """(start, end) seconds of `H:M:S to H:M:S`; None when a part is too long for int() or for a float."""
    parts = [to_int(g) for g in groups]
    if any(p is None for p in parts):
        return None
    h1, m1, s1, h2, m2, s2 = parts
    try:
        return float(h1 * 3600 + m1 * 60 + s1), float(h2 * 3600 + m2 * 60 + s2)  # type: ignore[operator]
    except OverflowError:
        return None


def parse_spans(answer: object) -> Parsed[list[Span]]:
    """Predicted (start, end) spans in seconds, in text order (spec section 3, TAG)."""
    text = text_of(answer)
    spans = [(float(a), float(b)) for a, b in _DASH_SPAN.findall(text)]
    if spans:
        return Parsed(spans, ok=True)
    spans = [(round(float(a), 2), round(float(b), 2)) for a, b in _TO_SPAN.findall(text)]
    for groups in _HMS_SPAN.findall(text):
        span = _hms_span(groups)
        if span is not None:
            spans.append(span)
    if spans:
        return Parsed(spans, ok=True)
    return unparsed("no time span found (expected 's-e' or 'from s to e')", empty=[])


def gt_spans(ref: Reference) -> list[Span]:
    """All spans of all struc_info items, in struc_info order (never sorted)."""
    spans: list[Span] = []
    for item in ref.struc_info:
        if isinstance(item, dict):
            for span in item.get("spans") or []:
                spans.append((float(span["start"]), float(span["end"])))
    return spans


def span_iou(a: Span, b: Span) -> float:
    """Temporal IoU as the leaderboard computes it (0 unless the hull is positive)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    hull = max(a[1], b[1]) - min(a[0], b[0])
    return inter / hull if hull > 0 else 0.0


def matched_miou(pred: Sequence[Span], gt: Sequence[Span], threshold: float) -> float:
    """Greedy matching in GT order; mean IoU of matched pairs, 0 when nothing matches."""
    used: set[int] = set()
    matched: list[float] = []
    for g in gt:
        best, best_j = 0.0, -1
        for j, p in enumerate(pred):
            if j in used:
                continue
            iou = span_iou(p, g)
            if iou > best:
                best, best_j = iou, j
        if best_j >= 0 and best >= threshold:
            used.add(best_j)
            matched.append(best)
    return mean(matched)


def _scaled(spans: Sequence[Span], fps: float) -> list[Span]:
    return [(s * fps, e * fps) for s, e in spans]


def evaluate(parsed: Parsed[list[Span]], ref: Reference, strict: bool = False) -> SampleResult:
    """Sample mIoU at each threshold; every TAG record is counted."""
    pred, gt = _scaled(parsed.value or [], ref.fps), _scaled(gt_spans(ref), ref.fps)
    scores = {f"miou@{t}": matched_miou(pred, gt, t) for t in THRESHOLDS}
    return SampleResult(counted=True, scores=scores, reason=parsed.reason)


def reward(parsed: Parsed[list[Span]], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """Raw reward: mean of the sample scores at t = 0.3 and t = 0.5 (our choice, spec section 6)."""
    result = evaluate(parsed, ref)
    return clip01(mean(list(result.scores.values())))


def gt_problem(ref: Reference) -> str | None:
    return None if gt_spans(ref) else "ground truth has no spans"


TASK = register_task(Task(
    name="TAG", stem="tal", parse=parse_spans, evaluate=evaluate, reward=reward, gt_problem=gt_problem,
    columns=(
        Column("tag_miou_03", "TAG mIoU@0.3", "mean_score", "pooled", paper=(0.142, 0.216), score="miou@0.3"),
        Column("tag_miou_05", "TAG mIoU@0.5", "mean_score", "pooled", paper=(0.091, 0.156), score="miou@0.5"),
    ),
))
