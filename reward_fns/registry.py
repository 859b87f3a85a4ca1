"""The task registry: each MedVidBench task declared once, shared by rewards and the benchmark scorer.

Everything a task means lives in its `Task` declaration: how to parse an answer, the leaderboard's
per-sample rule, the raw reward, the caption pairs to judge, whether a ground truth can give a reward,
and the benchmark columns it feeds (header, aggregation, paper rows, `_llm`/`_sim` naming).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from reward_fns.reference import Reference

if TYPE_CHECKING:
    from reward_fns.similarity import SimilarityService

T = TypeVar("T")

TASK_NAMES: tuple[str, ...] = ("CVS", "NAP", "SA", "STG", "TAG", "DVC", "VS", "RC")
"""Every task, in the paper's column order (also the `task_id` of the reward log)."""
SOURCES: tuple[str, ...] = (
    "AVOS", "CholecT50", "CholecTrack20", "Cholec80-CVS", "CoPESD", "EgoSurgery", "JIGSAWS", "NurViD",
)
"""Every MedVidBench `data_source` (its index is the `source_id` of the reward log)."""
CAPTION_VARIANTS: tuple[str, ...] = ("gpt", "gemini")
"""The caption variants of a captioned task: its qa_types are `<stem>_gpt` and `<stem>_gemini` (the caption
stage writes one record per variant)."""
PAPER_MODELS: tuple[str, ...] = ("paper SFT", "paper MedGRPO")
"""The published Qwen2.5-VL-7B rows; `Column.paper` holds one value per model, in this order."""


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A parser's output: the value read from the answer, or an empty value with the reason."""

    value: T
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class CaptionPair:
    """A (prediction, reference) caption pair to be judged; `group` ties it to a threshold etc."""

    prediction: str
    reference: str
    group: str = ""


@dataclass(frozen=True)
class ScoredCaption:
    """A caption pair with its caption reward in [0, 1] (what `Task.reward` receives)."""

    pair: CaptionPair
    score: float


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
class Column:
    """One benchmark column.

    `rule` names the per-source aggregation and `overall` the aggregation over sources (both looked up
    in `evaluation.aggregate`); `score` is the `SampleResult.scores` key the rule reads. A `judged`
    column is reported as `<stem>_llm` with a 1-5 judge and as `<stem>_sim` with MiniLM similarity.
    """

    key: str
    header: str
    rule: str
    overall: str
    paper: tuple[float, float]
    score: str = ""
    judged: bool = False

    def key_for(self, suffix: str) -> str:
        """The key of a judged column filled by another caption backend (`_sim`, `_medjudge`, ...)."""
        return self.key.replace("_llm", suffix) if self.judged else self.key

    @property
    def similarity_key(self) -> str:
        """The key used when a judged column is filled by MiniLM similarity (0-1)."""
        return self.key_for("_sim")


GroundTruthCheck = Callable[[Reference], "str | None"]
Resolver = Callable[[Parsed, Reference, "SimilarityService"], Awaitable[Parsed]]


@dataclass(frozen=True)
class Task:
    """One MedVidBench task.

    - `parse(text)` never raises;
    - `resolve(parsed, ref, similarity)`, when set, is an async step that needs the similarity
      service (NAP snapping) and must run before `evaluate` / `reward`;
    - `evaluate(parsed, ref, strict)` gives the leaderboard's per-sample result (rule part);
    - `caption_pairs(parsed, ref)` lists what an LLM judge / similarity must score (captions only);
    - `reward(parsed, ref, captions)` is the raw reward in [0, 1], where `captions` are the pairs of
      `caption_pairs` with their caption rewards (the pairs are not recomputed);
    - `gt_problem(ref)` says why a ground truth cannot give a reward (None: it can); unset, the
      reference answer is scored as if the model wrote it (see `reward_rejection`);
    - `columns` are the benchmark columns the task feeds, in the paper's order;
    - `stem` is the MedVidBench qa_type; a `captioned` task's answers are captions written in each of
      `CAPTION_VARIANTS` (qa_types `<stem>_<variant>`) and judged (DVC, VS, RC).
    """

    name: str
    stem: str
    parse: Callable[[str], Parsed]
    evaluate: Callable[[Parsed, Reference, bool], SampleResult]
    reward: Callable[[Parsed, Reference, Sequence[ScoredCaption]], float]
    caption_pairs: Callable[[Parsed, Reference], list[CaptionPair]] = lambda parsed, ref: []
    resolve: Resolver | None = None
    gt_problem: GroundTruthCheck | None = None
    columns: tuple[Column, ...] = ()
    captioned: bool = False

    @property
    def qa_types(self) -> tuple[str, ...]:
        """The task's MedVidBench qa_types: the stem, or `<stem>_<variant>` per caption variant."""
        return tuple(f"{self.stem}_{v}" for v in CAPTION_VARIANTS) if self.captioned else (self.stem,)

    def reward_rejection(self, ref: Reference) -> str | None:
        """Why this ground truth cannot give an RL reward (None: it can); raises on a malformed one."""
        if self.gt_problem is not None:
            return self.gt_problem(ref)
        parsed = self.parse(ref.answer)
        result = self.evaluate(parsed, ref, False)
        if not result.counted:
            return result.reason or "left out by the leaderboard rules"
        if self.reward(parsed, ref, [ScoredCaption(p, 1.0) for p in self.caption_pairs(parsed, ref)]) > 0:
            return None
        return f"the reference answer earns no {self.name} reward" + (f" ({parsed.reason})" if parsed.reason else "")


_TASKS: dict[str, Task] = {}
_BY_QA_TYPE: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task; an unknown name, or a name or qa_type declared twice, is a programming error."""
    if task.name not in TASK_NAMES:
        raise ValueError(f"task {task.name!r} is not in TASK_NAMES {TASK_NAMES}")
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
    """Every task, in TASK_NAMES order."""
    _ensure_loaded()
    return {name: _TASKS[name] for name in TASK_NAMES}


def caption_task_names() -> tuple[str, ...]:
    """The captioned tasks (DVC, VS, RC), in TASK_NAMES order."""
    return tuple(name for name, task in all_tasks().items() if task.captioned)


def all_qa_types() -> tuple[str, ...]:
    _ensure_loaded()
    return tuple(_BY_QA_TYPE)


def all_columns() -> tuple[Column, ...]:
    """Every benchmark column, in the paper's order (tasks in TASK_NAMES order)."""
    return tuple(column for task in all_tasks().values() for column in task.columns)
