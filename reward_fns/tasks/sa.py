"""SA (`skill_assessment`): JIGSAWS GRS aspects written as `Aspect: k/5`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from reward_fns.reference import Reference
from reward_fns.registry import Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import clip01, score_value, text_of, unparsed

ASPECTS: tuple[str, ...] = (  # JIGSAWS' GRS aspects, in the answer's order
    "Respect for tissue", "Suture/needle handling", "Time and motion",
    "Flow of operation", "Overall performance", "Quality of final product",
)
_HAS_SCORE = re.compile(r"\d/5")
# the colon-free text before the first colon followed by optional whitespace and `digits/5`; a match can
# only start at the part's start or right after a colon, so only those starts are tried (linear time)
_ASPECT = re.compile(r"(?:^|(?<=:))([^:]+?):\s*(\d+)/5")


def answer_text(scores: Mapping[str, int]) -> str:
    """The canonical answer for {aspect: 1-5 score}: `Respect for tissue: 3/5, ...` in ASPECTS order."""
    return ", ".join(f"{aspect}: {scores[aspect]}/5" for aspect in ASPECTS)


def parse_aspects(answer: object) -> Parsed[dict[str, int]]:
    """{aspect: score} from comma-separated parts; answers without any `d/5` are not read at all."""
    text = text_of(answer)
    if not _HAS_SCORE.search(text):
        return unparsed("no 'k/5' score in the answer", {})
    scores: dict[str, int | None] = {}
    for part in text.split(","):
        match = _ASPECT.search(part.strip())
        if match:
            scores[match.group(1).strip()] = score_value(match.group(2))
    found = {aspect: score for aspect, score in scores.items() if score is not None}
    if not found:
        return unparsed("no 'Aspect: k/5' pair found", {})
    return Parsed(found, ok=True)


def gt_aspects(ref: Reference) -> dict[str, int] | None:
    """GT aspect scores, or None when the record has no skill level (it is then left out).

    Scores come from struc_info `skill_scores`, else from the reference text's `Aspect: k/5` pairs.
    """
    for item in ref.struc_info:
        if isinstance(item, Mapping) and item.get("skill_level"):
            scores = item.get("skill_scores")
            if isinstance(scores, Mapping):
                return {str(k): int(v) for k, v in scores.items()}
            break
    from_text = parse_aspects(ref.answer)
    return dict(from_text.value) if from_text.ok else None


def evaluate(parsed: Parsed[dict[str, int]], ref: Reference, strict: bool = False) -> SampleResult:
    """Skipped unless the answer has a `d/5` (or `strict`); aspects compared where predicted."""
    gt = gt_aspects(ref)
    if gt is None:
        return SampleResult(counted=False, reason="ground truth has no skill level")
    if not parsed.ok and not strict:
        return SampleResult(counted=False, reason=parsed.reason)
    pred = parsed.value or {}
    checks = {a: pred.get(a) == v for a, v in gt.items() if strict or a in pred}
    return SampleResult(counted=bool(checks), checks=checks, reason=parsed.reason)


def reward(parsed: Parsed[dict[str, int]], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """Fraction of the GT aspects (6 in JIGSAWS) exactly right; a missing aspect counts as wrong."""
    gt, pred = gt_aspects(ref) or {}, parsed.value or {}
    return clip01(sum(pred.get(a) == v for a, v in gt.items()) / len(gt)) if gt else 0.0


def gt_problem(ref: Reference) -> str | None:
    return None if gt_aspects(ref) else "ground truth has no skill level / aspect scores"


TASK = register_task(Task(
    name="SA", stem="skill_assessment", parse=parse_aspects, evaluate=evaluate, reward=reward,
    gt_problem=gt_problem,
    columns=(Column("sa_acc", "SA acc", "component_accuracy_or_zero", "source_mean", paper=(0.218, 0.244)),),
))
