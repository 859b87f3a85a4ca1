"""DVC (`dense_captioning_*`): temporal F1 over IoU thresholds plus judged captions of matched events."""

from __future__ import annotations

from collections.abc import Sequence

from reward_fns.reference import Reference
from reward_fns.registry import CaptionPair, Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import clip01, mean
from reward_fns.tasks.dvc_parse import Segment, gt_segments, parse_segments

THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
Frames = tuple[int, int]
_INT64_MAX = 2**63 - 1


def to_frames(segments: Sequence[Segment], fps: float) -> list[tuple[Segment, Frames]]:
    """Each segment with `int(t * fps)` on both ends (truncation, as the leaderboard does).

    A segment whose frame number does not fit a 64-bit integer is dropped (the public scorer crashes on
    it: a listed deviation).
    """
    framed = []
    for seg in segments:
        frames = (int(seg.start * fps), int(seg.end * fps))
        if all(abs(f) <= _INT64_MAX for f in frames):
            framed.append((seg, frames))
    return framed


def frame_iou(a: Frames, b: Frames) -> float:
    """Intervals ordered to (min, max); inter / (min(hull, len1 + len2) + 1e-8)."""
    s1, e1 = min(a), max(a)
    s2, e2 = min(b), max(b)
    inter = max(0, min(e1, e2) - max(s1, s2))
    hull = max(e1, e2) - min(s1, s2)
    return inter / (min(hull, (e1 - s1) + (e2 - s2)) + 1e-8)


def iou_matrix(pred: Sequence[Frames], gt: Sequence[Frames]) -> list[list[float]]:
    return [[frame_iou(p, g) for g in gt] for p in pred]


def f1_from_ious(ious: Sequence[Sequence[float]], n_pred: int, n_gt: int) -> float | None:
    """F1 of precision/recall averaged over thresholds (coverage: IoU > t); None when a side is empty."""
    if not n_pred or not n_gt:
        return None
    precisions, recalls = [], []
    for t in THRESHOLDS:
        precisions.append(sum(any(v > t for v in row) for row in ious) / n_pred)
        recalls.append(sum(any(ious[i][j] > t for i in range(n_pred)) for j in range(n_gt)) / n_gt)
    p, r = mean(precisions), mean(recalls)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def f1_score(pred: Sequence[Frames], gt: Sequence[Frames]) -> float | None:
    """Temporal F1 of predicted against GT frame intervals (None when either side is empty)."""
    return f1_from_ious(iou_matrix(pred, gt), len(pred), len(gt))


def _framed(parsed: Parsed[list[Segment]], ref: Reference) -> tuple[list[tuple[Segment, Frames]],
                                                                    list[tuple[Segment, Frames]]]:
    return to_frames(parsed.value or [], ref.fps), to_frames(gt_segments(ref.struc_info), ref.fps)


def caption_pairs(parsed: Parsed[list[Segment]], ref: Reference) -> list[CaptionPair]:
    """For each threshold, each predicted event paired with the GT event of highest IoU >= t."""
    pred, gt = _framed(parsed, ref)
    ious = iou_matrix([f for _, f in pred], [f for _, f in gt])
    pairs = []
    for t in THRESHOLDS:
        for (seg, _), row in zip(pred, ious, strict=True):
            best, best_j = -1.0, -1
            for j, iou in enumerate(row):
                if iou >= t and iou > best:
                    best, best_j = iou, j
            if best_j >= 0:
                pairs.append(CaptionPair(seg.caption, gt[best_j][0].caption, group=f"iou@{t}"))
    return pairs


def evaluate(parsed: Parsed[list[Segment]], ref: Reference, strict: bool = False) -> SampleResult:
    """F1 when both sides have events; with `strict`, an unparsed answer scores F1 = 0."""
    pred, gt = _framed(parsed, ref)
    f1 = f1_score([f for _, f in pred], [f for _, f in gt])
    if f1 is None and strict and gt:
        f1 = 0.0
    if f1 is None:
        return SampleResult(counted=False, reason=parsed.reason or "ground truth has no events")
    return SampleResult(counted=True, scores={"f1": f1}, reason=parsed.reason)


def reward(parsed: Parsed[list[Segment]], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """0.5 F1 + 0.5 caption reward averaged like DVC llm (a threshold with no pair scores 0).

    The caption pairs are the ones already scored (`captions`), never recomputed here.
    """
    pred, gt = _framed(parsed, ref)
    f1 = f1_score([f for _, f in pred], [f for _, f in gt]) or 0.0
    per_threshold = [mean([c.score for c in captions if c.pair.group == f"iou@{t}"]) for t in THRESHOLDS]
    return clip01(0.5 * f1 + 0.5 * mean(per_threshold))


def gt_problem(ref: Reference) -> str | None:
    return None if gt_segments(ref.struc_info) else "ground truth has no event with start, end and caption"


TASK = register_task(Task(
    name="DVC", stem="dense_captioning", captioned=True,
    parse=parse_segments, evaluate=evaluate, reward=reward, caption_pairs=caption_pairs, gt_problem=gt_problem,
    columns=(
        Column("dvc_llm", "DVC llm", "mean_caption", "pooled", paper=(3.665, 3.797), judged=True),
        Column("dvc_f1", "DVC F1", "mean_score_or_zero", "record_weighted", paper=(0.165, 0.210), score="f1"),
    ),
))
