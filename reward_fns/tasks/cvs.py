"""CVS (`cvs_assessment`): three 0-2 criteria read from comma-separated `Name: value` parts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from reward_fns.reference import Reference
from reward_fns.registry import Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import clip01, score_value, text_of, unparsed

CRITERIA: dict[str, str] = {  # struc_info `cvs_scores` key -> its name in the answer
    "two_structures": "Two structures",
    "cystic_plate": "Cystic plate",
    "hepatocystic_triangle": "Hepatocystic triangle",
}
COMPONENTS: dict[str, str] = {name.lower(): key for key, name in CRITERIA.items()}  # as the parser reads them
# `<name>:` + optional whitespace + digits, anywhere in the part; "two structure(s)" takes either form
_VALUE = {name: re.compile(name.replace("structures", "structures?") + r":\s*(\d+)") for name in COMPONENTS}


def answer_text(scores: Mapping[str, int]) -> str:
    """The canonical answer for {criterion key: 0-2 score}: `Two structures: 2, Cystic plate: 1, ...`."""
    return ", ".join(f"{name}: {scores[key]}" for key, name in CRITERIA.items())


def parse_components(answer: object) -> Parsed[dict[str, int]]:
    """{component: int} from comma-separated parts (spec 3 + 4b).

    Each lower-cased part is read for the first of the three names it contains (in COMPONENTS order);
    a later part overrides an earlier one; an unusable number makes the component not predicted.
    """
    found: dict[str, int | None] = {}
    for part in text_of(answer).split(","):
        lowered = part.strip().lower()
        name = next((n for n in COMPONENTS if n in lowered), None)
        if name is None:
            continue
        match = _VALUE[name].search(lowered)
        if match:
            found[name] = score_value(match.group(1))
    values = {name: value for name, value in found.items() if value is not None}
    if not values:
        return unparsed("no 'Two structures: N, Cystic plate: N, Hepatocystic triangle: N' score found", {})
    return Parsed(values, ok=True)


def gt_components(ref: Reference) -> dict[str, int]:
    """struc_info `cvs_scores` (three components), else the reference text parsed like an answer."""
    for item in ref.struc_info:
        scores = item.get("cvs_scores") if isinstance(item, Mapping) else None
        if isinstance(scores, Mapping):
            return {name: int(scores[key]) for name, key in COMPONENTS.items() if key in scores}
    return dict(parse_components(ref.answer).value)


def evaluate(parsed: Parsed[dict[str, int]], ref: Reference, strict: bool = False) -> SampleResult:
    """Per-component correctness where predicted (all GT components with `strict`)."""
    gt, pred = gt_components(ref), parsed.value or {}
    names = [n for n in gt if strict or n in pred]
    checks = {n: pred.get(n) == gt[n] for n in names}
    return SampleResult(counted=bool(checks), checks=checks, reason=parsed.reason)


def reward(parsed: Parsed[dict[str, int]], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """Fraction of the 3 components exactly right; a missing component counts as wrong."""
    gt, pred = gt_components(ref), parsed.value or {}
    return clip01(sum(pred.get(n) == v for n, v in gt.items()) / len(COMPONENTS))


def gt_problem(ref: Reference) -> str | None:
    return None if gt_components(ref) else "ground truth has no CVS component score"


TASK = register_task(Task(
    name="CVS", stem="cvs_assessment", parse=parse_components, evaluate=evaluate, reward=reward,
    gt_problem=gt_problem,
    columns=(Column("cvs_acc", "CVS acc", "component_accuracy_or_zero", "source_mean", paper=(0.894, 0.914)),),
))
