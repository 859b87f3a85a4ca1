"""NAP (`next_action`): one class name; off-list answers snap to the nearest class by MiniLM cosine."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

from reward_fns.reference import Reference
from reward_fns.registry import Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import text_of

if TYPE_CHECKING:
    from reward_fns.similarity import SimilarityService

FIXED_LIST_SOURCES = ("AVOS", "CholecT50", "CoPESD")


@lru_cache(maxsize=1)
def class_table() -> Mapping[str, object]:
    """`reward_fns/data/nap_classes.json` (copied from the MedVidBench spec)."""
    return json.loads(resources.files("reward_fns.data").joinpath("nap_classes.json").read_text())


def canonical(source: str, text: str) -> str:
    """Strip, and for CoPESD map through the alias table (exact key)."""
    text = text.strip()
    if source == "CoPESD":
        return class_table()["CoPESD_aliases"].get(text, text)
    return text


def resolve_nap_classes(source: str, question: str, source_gt_answers: Iterable[str] = ()) -> tuple[str, ...]:
    """The class list of one record (spec section 3, NAP).

    Fixed lists for AVOS/CholecT50/CoPESD; NurViD: the first procedure (file order) named in the
    question, else the sorted union; other sources: the sorted set of that source's non-empty GT answers.
    """
    table = class_table()
    if source in FIXED_LIST_SOURCES:
        return tuple(table[source])
    if source == "NurViD":
        procedures: Mapping[str, list[str]] = table["NurViD_by_procedure"]
        lowered = question.lower()
        for procedure, classes in procedures.items():
            if procedure.lower() in lowered:
                return tuple(classes)
        return tuple(sorted({c for classes in procedures.values() for c in classes}))
    return tuple(sorted({canonical(source, a) for a in source_gt_answers} - {""}))


@dataclass(frozen=True)
class NapAnswer:
    """The stripped answer and, once `snap` ran, the class it stands for."""

    text: str
    snapped: str | None = None


def parse_action(answer: object) -> Parsed[NapAnswer]:
    """The stripped answer; NAP never fails to parse (garbage snaps to the nearest class)."""
    text = text_of(answer).strip()
    return Parsed(NapAnswer(text), ok=True) if text else Parsed(NapAnswer(""), ok=False, reason="empty answer")


async def snap(parsed: Parsed[NapAnswer], ref: Reference, similarity: SimilarityService) -> Parsed[NapAnswer]:
    """Resolve an off-list answer to the nearest class by MiniLM cosine (skipped when it cannot matter)."""
    classes, gt = _classes(ref), canonical(ref.data_source, ref.answer)
    text = canonical(ref.data_source, parsed.value.text)
    if gt not in classes or text in classes:
        return parsed
    index = await similarity.nearest(text, classes)
    return dataclasses.replace(parsed, value=NapAnswer(parsed.value.text, classes[index]))


def predicted_class(answer: NapAnswer, ref: Reference, classes: Sequence[str]) -> str:
    """Exact member of the class list, else the snapped class."""
    text = canonical(ref.data_source, answer.text)
    if text in classes:
        return text
    if answer.snapped is None:
        raise RuntimeError("NAP answer off the class list was not snapped: run Task.resolve first")
    return answer.snapped


def _classes(ref: Reference) -> tuple[str, ...]:
    if ref.nap_classes is not None:
        return ref.nap_classes
    return resolve_nap_classes(ref.data_source, ref.question, [ref.answer])


def evaluate(parsed: Parsed[NapAnswer], ref: Reference, strict: bool = False) -> SampleResult:
    """Correct if the (snapped) class equals the GT class; GT off the class list: left out."""
    classes, gt = _classes(ref), canonical(ref.data_source, ref.answer)
    if gt not in classes:
        return SampleResult(counted=False, reason=f"ground truth {gt!r} is not in the class list")
    correct = predicted_class(parsed.value, ref, classes) == gt
    return SampleResult(counted=True, checks={"action": correct}, reason=parsed.reason)


def reward(parsed: Parsed[NapAnswer], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """1 if the predicted class is the GT class, else 0."""
    classes, gt = _classes(ref), canonical(ref.data_source, ref.answer)
    if gt not in classes:
        return 0.0
    return 1.0 if predicted_class(parsed.value, ref, classes) == gt else 0.0


TASK = register_task(Task(
    name="NAP", stem="next_action", parse=parse_action, evaluate=evaluate, reward=reward, resolve=snap,
    columns=(Column("nap_acc", "NAP acc", "all_checks", "pooled", paper=(0.442, 0.427)),),
))
