"""Benchmark columns from per-sample results, aggregated exactly as the public leaderboard does."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reward_fns.registry import SampleResult


@dataclass(frozen=True)
class ScoredSample:
    """One evaluated record."""

    index: int
    task: str
    source: str
    result: SampleResult
    parse_ok: bool
    caption_score: float | None = None  # judge (1-5) or similarity (0-1) mean for caption tasks


def _by_source(samples: Sequence[ScoredSample], task: str) -> dict[str, list[ScoredSample]]:
    groups: dict[str, list[ScoredSample]] = defaultdict(list)
    for s in samples:
        if s.task == task:
            groups[s.source].append(s)
    return dict(groups)


def _component_accuracy(samples: Sequence[ScoredSample]) -> float | None:
    """Mean over components compared at least once of correct / compared."""
    compared: dict[str, int] = defaultdict(int)
    correct: dict[str, int] = defaultdict(int)
    for s in samples:
        if not s.result.counted:
            continue
        for name, ok in s.result.checks.items():
            compared[name] += 1
            correct[name] += int(ok)
    if not compared:
        return None
    return sum(correct[n] / compared[n] for n in compared) / len(compared)


def _mean_over_sources(per_source: Mapping[str, float | None]) -> float | None:
    values = [v for v in per_source.values() if v is not None]
    return sum(values) / len(values) if values else None


def _pooled_checks(samples: Sequence[ScoredSample]) -> float | None:
    counted = [s for s in samples if s.result.counted]
    if not counted:
        return None
    return sum(all(s.result.checks.values()) for s in counted) / len(counted)


def _mean_score(samples: Sequence[ScoredSample], key: str) -> float | None:
    values = [s.result.scores[key] for s in samples if s.result.counted and key in s.result.scores]
    return sum(values) / len(values) if values else None


def _mean_caption(samples: Sequence[ScoredSample]) -> float | None:
    values = [s.caption_score for s in samples if s.caption_score is not None]
    return sum(values) / len(values) if values else None


def _dvc_f1_source(samples: Sequence[ScoredSample]) -> float:
    return _mean_score(samples, "f1") or 0.0


def _dvc_f1_weighted(per_source: Mapping[str, list[ScoredSample]]) -> float | None:
    total = sum(len(v) for v in per_source.values())
    if not total:
        return None
    return sum(_dvc_f1_source(v) * len(v) for v in per_source.values()) / total


@dataclass(frozen=True)
class Column:
    """A benchmark column: its task, a per-source value and the overall aggregation."""

    key: str
    task: str
    per_source: Callable[[Sequence[ScoredSample]], float | None]
    overall: Callable[[Mapping[str, list[ScoredSample]]], float | None]


def _pooled(fn: Callable[[Sequence[ScoredSample]], float | None]):
    return lambda groups: fn([s for v in groups.values() for s in v])


def _source_mean(fn: Callable[[Sequence[ScoredSample]], float | None]):
    return lambda groups: _mean_over_sources({src: fn(v) for src, v in groups.items()})


def _score(key: str) -> Callable[[Sequence[ScoredSample]], float | None]:
    return lambda samples: _mean_score(samples, key)


# Paper column order (spec section 4).
COLUMNS: tuple[Column, ...] = (
    Column("cvs_acc", "CVS", _component_accuracy, _source_mean(_component_accuracy)),
    Column("nap_acc", "NAP", _pooled_checks, _pooled(_pooled_checks)),
    Column("sa_acc", "SA", _component_accuracy, _source_mean(_component_accuracy)),
    Column("stg_miou", "STG", _score("miou"), _pooled(_score("miou"))),
    Column("tag_miou_03", "TAG", _score("miou@0.3"), _pooled(_score("miou@0.3"))),
    Column("tag_miou_05", "TAG", _score("miou@0.5"), _pooled(_score("miou@0.5"))),
    Column("dvc_llm", "DVC", _mean_caption, _pooled(_mean_caption)),
    Column("dvc_f1", "DVC", _dvc_f1_source, _dvc_f1_weighted),
    Column("vs_llm", "VS", _mean_caption, _pooled(_mean_caption)),
    Column("rc_llm", "RC", _mean_caption, _pooled(_mean_caption)),
)
CAPTION_COLUMNS = ("dvc_llm", "vs_llm", "rc_llm")


def aggregate(samples: Sequence[ScoredSample]) -> tuple[dict[str, float | None], dict[str, dict[str, float]]]:
    """(overall columns, per-source columns) for the scored samples."""
    overall: dict[str, float | None] = {}
    per_source: dict[str, dict[str, float]] = defaultdict(dict)
    for column in COLUMNS:
        groups = _by_source(samples, column.task)
        overall[column.key] = column.overall(groups) if groups else None
        for source, group in groups.items():
            value = column.per_source(group)
            if value is not None:
                per_source[source][column.key] = value
    return overall, {k: per_source[k] for k in sorted(per_source)}
