"""DVC (`dense_captioning_*`): temporal F1 over IoU thresholds plus judged captions of matched events."""

from __future__ import annotations

from collections.abc import Sequence

from reward_fns.reference import Reference
from reward_fns.registry import CaptionPair, Column, Parsed, SampleResult, Task, register_task
from reward_fns.tasks.common import clip01, mean
from reward_fns.tasks.dvc_parse import Segment, gt_segments, parse_segments

THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
Frames = tuple[int, int]


def to_frames(segments: Sequence[Segment], fps: float) -> list[Frames]:
    """`int(t * fps)` on both ends (truncation, as the leaderboard does)."""
    return [(int(s.start * fps), int(s.end * fps)) for s in segments]


def frame_iou(a: Frames, b: Frames) -> float:
    """Intervals ordered to (min, max); inter / (min(hull, len1 + len2) + 1e-8)."""
    s1, e1 = min(a), max(a)
    s2, e2 = min(b), max(b)
    inter = max(0, min(e1, e2) - max(s1, s2))
    hull = max(e1, e2) - min(s1, s2)
    return inter / (min(hull, (e1 - s1) + (e2 - s2)) + 1e-8)


def f1_score(pred: Sequence[Frames], gt: Sequence[Frames]) -> float | None:
    """F1 of precision/recall averaged over thresholds; None when either side is empty."""
    if not pred or not gt:
        return None
    ious = [[frame_iou(p, g) for g in gt] for p in pred]
    precisions, recalls = [], []
    for t in THRESHOLDS:
        precisions.append(sum(any(v > t for v in row) for row in ious) / len(pred))
        recalls.append(sum(any(ious[i][j] > t for i in range(len(pred))) for j in range(len(gt))) / len(gt))
    p, r = mean(precisions), mean(recalls)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def matched_pairs(pred: Sequence[Segment], ref: Reference) -> list[CaptionPair]:
    """For each threshold, each predicted event paired with the GT event of highest IoU >= t."""
    gt = gt_segments(ref.struc_info)
    gt_frames = to_frames(gt, ref.fps)
    ious = [[frame_iou(pf, gf) for gf in gt_frames] for pf in to_frames(pred, ref.fps)]
    pairs = []
    for t in THRESHOLDS:
        for seg, row in zip(pred, ious, strict=True):
            best, best_j = -1.0, -1
            for j, iou in enumerate(row):
                if iou >= t and iou > best:
                    best, best_j = iou, j
            if best_j >= 0:
                pairs.append(CaptionPair(seg.caption, gt[best_j].caption, group=f"iou@{t}"))
    return pairs


def caption_pairs(parsed: Parsed, ref: Reference) -> list[CaptionPair]:
    return matched_pairs(parsed.value or [], ref)


def evaluate(parsed: Parsed, ref: Reference, strict: bool = False) -> SampleResult:
    """F1 when both sides have events; with `strict`, an unparsed answer scores F1 = 0."""
    pred = to_frames(parsed.value or [], ref.fps)
    f1 = f1_score(pred, to_frames(gt_segments(ref.struc_info), ref.fps))
    if f1 is None and strict and gt_segments(ref.struc_info):
        f1 = 0.0
    if f1 is None:
        return SampleResult(counted=False, reason=parsed.reason or "ground truth has no events")
    return SampleResult(counted=True, scores={"f1": f1}, reason=parsed.reason)


def reward(parsed: Parsed, ref: Reference, caption_scores: Sequence[float] = ()) -> float:
    """0.5 F1 + 0.5 caption reward averaged like DVC llm (a threshold with no pair scores 0)."""
    pred = to_frames(parsed.value or [], ref.fps)
    f1 = f1_score(pred, to_frames(gt_segments(ref.struc_info), ref.fps)) or 0.0
    pairs = caption_pairs(parsed, ref)
    per_threshold = [
        mean([s for p, s in zip(pairs, caption_scores, strict=False) if p.group == f"iou@{t}"])
        for t in THRESHOLDS
    ]
    return clip01(0.5 * f1 + 0.5 * mean(per_threshold))


def gt_problem(ref: Reference) -> str | None:
    return None if gt_segments(ref.struc_info) else "ground truth has no event with start, end and caption"


TASK = register_task(Task(
    name="DVC", qa_types=("dense_captioning_gpt", "dense_captioning_gemini"),
    parse=parse_segments, evaluate=evaluate, reward=reward, caption_pairs=caption_pairs, gt_problem=gt_problem,
    columns=(
        Column("dvc_llm", "DVC llm", "mean_caption", "pooled", paper=(3.665, 3.797), judged=True),
        Column("dvc_f1", "DVC F1", "mean_score_or_zero", "record_weighted", paper=(0.165, 0.210), score="f1"),
    ),
))
