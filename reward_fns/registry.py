"""The task registry: each MedVidBench task declared once, shared by rewards and the benchmark scorer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reward_fns.reference import Reference


@dataclass(frozen=True)
class Parsed:
    """A parser's output: the value read from the answer, or an empty value with the reason."""

    value: Any
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class CaptionPair:
    """A (prediction, reference) caption pair to be judged; `group` ties it to a threshold etc."""

    prediction: str
    reference: str
    group: str = ""


@dataclass(frozen=True)
class SampleResult:
    """Leaderboard per-sample outcome.

    `counted` is False when the leaderboard leaves the record out (e.g. SA without an x/5 score);
    `scores` hold numeric sample metrics; `checks` hold per-component correctness (CVS, SA, NAP).
    """

    counted: bool
    scores: Mapping[str, float] = field(default_factory=dict)
    checks: Mapping[str, bool] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class Task:
    """One MedVidBench task.

    - `parse(text)` never raises;
    - `evaluate(parsed, ref, strict)` gives the leaderboard's per-sample result (rule part);
    - `caption_pairs(parsed, ref)` lists what an LLM judge / similarity must score (captions only);
    - `reward(parsed, ref, caption_scores)` is the raw reward in [0, 1], where `caption_scores`
      holds one caption reward in [0, 1] per caption pair, in the same order.
    """

    name: str
    qa_types: tuple[str, ...]
    parse: Callable[[str], Parsed]
    evaluate: Callable[[Parsed, Reference, bool], SampleResult]
    reward: Callable[[Parsed, Reference, Sequence[float]], float]
    caption_pairs: Callable[[Parsed, Reference], list[CaptionPair]] = lambda parsed, ref: []
    options: Mapping[str, Any] = field(default_factory=dict)


_TASKS: dict[str, Task] = {}
_BY_QA_TYPE: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task; a name or qa_type declared twice is a programming error."""
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} registered twice")
    for qa_type in task.qa_types:
        if qa_type in _BY_QA_TYPE:
            raise ValueError(f"qa_type {qa_type!r} already belongs to {_BY_QA_TYPE[qa_type].name}")
    _TASKS[task.name] = task
    for qa_type in task.qa_types:
        _BY_QA_TYPE[qa_type] = task
    return task


def _ensure_loaded() -> None:
    import reward_fns.tasks  # noqa: F401  (registers every task on import)


def get_task(name: str) -> Task:
    _ensure_loaded()
    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {sorted(_TASKS)}") from None


def task_for_qa_type(qa_type: str) -> Task:
    """The task a MedVidBench `qa_type` belongs to (e.g. 'dense_captioning_gpt' -> DVC)."""
    _ensure_loaded()
    try:
        return _BY_QA_TYPE[qa_type]
    except KeyError:
        raise KeyError(f"unknown qa_type {qa_type!r}; known: {sorted(_BY_QA_TYPE)}") from None


def all_tasks() -> Mapping[str, Task]:
    _ensure_loaded()
    return dict(_TASKS)


def all_qa_types() -> tuple[str, ...]:
    _ensure_loaded()
    return tuple(_BY_QA_TYPE)


SOURCES: tuple[str, ...] = (
    "AVOS", "CholecT50", "CholecTrack20", "Cholec80-CVS", "CoPESD", "EgoSurgery", "JIGSAWS", "NurViD",
)
