"""Benchmark columns from per-sample results, aggregated exactly as the public leaderboard does."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reward_fns.registry import SampleResult, all_tasks


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


PerSourceRule = Callable[[Sequence[ScoredSample], str], float | None]
OverallRule = Callable[[PerSourceRule, Mapping[str, list[ScoredSample]], str], float | None]

PER_SOURCE: dict[str, PerSourceRule] = {  # `Column.rule`: one source's value from its samples
    # the public leaderboard prints 0.0 for a CVS / SA source where no answer gave a component
    "component_accuracy_or_zero": lambda samples, key: _component_accuracy(samples) or 0.0,
    "all_checks": lambda samples, key: _pooled_checks(samples),
    "mean_score": _mean_score,
    "mean_score_or_zero": lambda samples, key: _mean_score(samples, key) or 0.0,
    "mean_caption": lambda samples, key: _mean_caption(samples),
}


def _pooled(rule: PerSourceRule, groups: Mapping[str, list[ScoredSample]], key: str) -> float | None:
    return rule([s for v in groups.values() for s in v], key)


def _source_mean(rule: PerSourceRule, groups: Mapping[str, list[ScoredSample]], key: str) -> float | None:
    return _mean_over_sources({src: rule(v, key) for src, v in groups.items()})


def _record_weighted(rule: PerSourceRule, groups: Mapping[str, list[ScoredSample]], key: str) -> float | None:
    """Per-source values weighted by each source's record count (a missing value counts as 0)."""
    total = sum(len(v) for v in groups.values())
    if not total:
        return None
    return sum((rule(v, key) or 0.0) * len(v) for v in groups.values()) / total


OVERALL: dict[str, OverallRule] = {  # `Column.overall`: the column's value over all sources
    "pooled": _pooled,
    "source_mean": _source_mean,
    "record_weighted": _record_weighted,
}


def aggregate(samples: Sequence[ScoredSample], judged: bool
              ) -> tuple[dict[str, float | None], dict[str, dict[str, float]]]:
    """(overall columns, per-source columns) for the scored samples, columns in the paper's order: the
    judged (caption) columns or the others."""
    overall: dict[str, float | None] = {}
    per_source: dict[str, dict[str, float]] = defaultdict(dict)
    for task in all_tasks().values():
        groups = _by_source(samples, task.name)
        for column in (c for c in task.columns if c.judged == judged):
            rule = PER_SOURCE[column.rule]
            overall[column.key] = OVERALL[column.overall](rule, groups, column.score) if groups else None
            for source, group in groups.items():
                value = rule(group, column.score)
                if value is not None:
                    per_source[source][column.key] = value
    return overall, {k: per_source[k] for k in sorted(per_source)}
