"""Logistic reward normalization per (data_source, task) (spec section 6).

    r = 1 / (1 + exp(-k * (x - p50) / max(p75 - p25, eps)))

`NORMALIZERS` also holds "zscore", the same standardization without the squashing (an ablation:
r = (x - p50) / max(p75 - p25, eps), unbounded; k unused).

p25/p50/p75 are quantiles of the raw reward x of the SFT model's rollouts on the training split,
so r = 0.5 at the median for every dataset. Stats file (JSON), written by `RewardStats.save`:

    {"version": 1,
     "k": 2.0,                                  # optional default steepness (null = use 2.0)
     "stats": {"<data_source>": {"<task>": {"p25": 0.1, "p50": 0.3, "p75": 0.6, "n": 640}}}}

Validation (at load, in `reward_fns.calibrate` before writing, and in the normalizer):
sources are registry names (`reward_fns.registry.SOURCES`; every unknown one is listed), tasks are
registry names (CVS, NAP, SA, STG, TAG, DVC, VS, RC), 0 <= p25 <= p50 <= p75 <= 1 (raw rewards
live in [0, 1]), n is an integer >= 1, and k is in (0, MAX_K]. Warnings (logged, naming the pair):
n below `min_n`, and an IQR below `eps` (the normalizer then divides by eps, which makes the reward
nearly a step function at p50).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reward_fns.atomic_io import write_json_atomic
from reward_fns.defaults import reward_defaults
from reward_fns.registry import SOURCES, TASK_NAMES

logger = logging.getLogger(__name__)

STATS_VERSION = 1
_QUANTILES = ("p25", "p50", "p75")
MAX_K = 20.0  # k = 20 already maps p50 +/- IQR/2 to 0.99995 / 0.00005; larger k is a step function
_DEFAULTS = reward_defaults("normalization")  # reward_fns/medgrpo_reward.yaml
DEFAULT_K: float = _DEFAULTS["k"]
DEFAULT_EPS: float = _DEFAULTS["eps"]
DEFAULT_MISSING: str = _DEFAULTS["missing"]
DEFAULT_MIN_N: int = _DEFAULTS["min_n"]  # fewer rollouts per (source, task) give unreliable quartiles (a warning)


class StatsError(ValueError):
    """A stats file or mapping is invalid; the message names the file, source, task and field."""


class MissingStatsError(KeyError):
    """Normalization was asked for (source, task) pairs that have no stats."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "missing reward stats"


@dataclass(frozen=True)
class TaskStats:
    """Quantiles of one (source, task)'s raw rewards."""

    p25: float
    p50: float
    p75: float
    n: int

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25


def quantile_stats(values: Iterable[float]) -> dict[str, float | int]:
    """{"p25", "p50", "p75", "n"} of raw rewards (numpy linear percentiles); needs one value."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("quantile_stats needs at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError("quantile_stats got a non-finite value")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"quantile_stats needs raw rewards in [0, 1], got [{arr.min():g}, {arr.max():g}]")
    p25, p50, p75 = np.percentile(arr, [25, 50, 75], method="linear")
    return {"p25": float(p25), "p50": float(p50), "p75": float(p75), "n": int(arr.size)}


@dataclass
class RewardStats:
    """All (source, task) stats plus an optional default k."""

    stats: dict[str, dict[str, TaskStats]] = field(default_factory=dict)
    k: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "reward stats",
                  task_names: Sequence[str] = TASK_NAMES, sources: Sequence[str] = SOURCES) -> RewardStats:
        """Validate a parsed stats document; errors name `where`, the source, task and field."""
        if not isinstance(data, Mapping):
            raise StatsError(f"{where}: top level must be an object")
        if data.get("version") != STATS_VERSION:
            raise StatsError(f"{where}: field 'version' must be {STATS_VERSION}, got {data.get('version')!r}")
        k = data.get("k")
        if k is not None and not _valid_k(k):
            raise StatsError(f"{where}: field 'k' must be a number in (0, {MAX_K:g}] or null, got {k!r}")
        raw = data.get("stats")
        if not isinstance(raw, Mapping):
            raise StatsError(f"{where}: field 'stats' must be an object {{source: {{task: {{...}}}}}}")
        unknown = [str(source) for source in raw if source not in sources]
        if unknown:
            raise StatsError(f"{where}: field 'stats': unknown data_source(s) {unknown} "
                             f"(known: {', '.join(sources)})")
        out: dict[str, dict[str, TaskStats]] = {}
        for source, tasks in raw.items():
            if not isinstance(tasks, Mapping):
                raise StatsError(f"{where}: source {source!r}: must be an object {{task: {{...}}}}")
            out[str(source)] = {
                str(task): _task_stats(entry, f"{where}: source {source!r} task {task!r}", task, task_names)
                for task, entry in tasks.items()
            }
        return cls(out, None if k is None else float(k))

    @classmethod
    def load(cls, path: str | os.PathLike[str], task_names: Sequence[str] = TASK_NAMES,
             sources: Sequence[str] = SOURCES) -> RewardStats:
        """Read and validate a stats file."""
        where = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise StatsError(f"{where}: not valid JSON: {exc}") from exc
        return cls.from_dict(data, where, task_names, sources)

    def to_dict(self) -> dict[str, Any]:
        stats = {source: {task: {"p25": s.p25, "p50": s.p50, "p75": s.p75, "n": s.n}
                          for task, s in sorted(tasks.items())}
                 for source, tasks in sorted(self.stats.items())}
        return {"version": STATS_VERSION, "k": self.k, "stats": stats}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Validate as `load` would, then write atomically (temp file in the same folder, then os.replace)."""
        data = self.to_dict()
        RewardStats.from_dict(data, os.fspath(path))
        write_json_atomic(path, data)

    def get(self, source: str, task: str) -> TaskStats | None:
        return self.stats.get(source, {}).get(task)

    def set(self, source: str, task: str, values: Iterable[float]) -> TaskStats:
        """Compute and store the stats of one pair from its raw rewards."""
        entry = TaskStats(**quantile_stats(values))  # type: ignore[arg-type]
        self.stats.setdefault(source, {})[task] = entry
        return entry


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _valid_k(k: object) -> bool:
    return _is_number(k) and math.isfinite(k) and 0 < k <= MAX_K  # type: ignore[operator]


def check_settings(k: object, eps: object, min_n: object, missing: object = DEFAULT_MISSING) -> None:
    """Raise ValueError naming the setting: k in (0, MAX_K] (None: the stats file's or 2.0),
    eps in (0, 1], min_n an integer >= 1, missing 'error' or 'identity'."""
    if missing not in ("error", "identity"):
        raise ValueError(f"missing must be 'error' or 'identity', got {missing!r}")
    if k is not None and not _valid_k(k):
        raise ValueError(f"k must be a number in (0, {MAX_K:g}], got {k!r}")
    if not (_is_number(eps) and math.isfinite(eps) and 0 < eps <= 1):  # type: ignore[operator, arg-type]
        raise ValueError(f"eps must be a number in (0, 1], got {eps!r}")
    if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 1:
        raise ValueError(f"min_n must be an integer >= 1, got {min_n!r}")


def stats_warnings(stats: RewardStats, min_n: int = DEFAULT_MIN_N, eps: float = DEFAULT_EPS) -> list[str]:
    """One line per (source, task) with too few rollouts or an IQR that the eps floor replaces."""
    out = []
    for source, tasks in sorted(stats.stats.items()):
        for task, s in sorted(tasks.items()):
            if s.n < min_n:
                out.append(f"({source}, {task}): quantiles from only n={s.n} rollout(s) (< min_n={min_n}); "
                           "sample more responses for this pair")
            if s.iqr < eps:
                out.append(f"({source}, {task}): IQR {s.iqr:g} (p25={s.p25:g}, p75={s.p75:g}) is below "
                           f"eps={eps:g}; the normalizer divides by eps, so the reward is nearly a step "
                           "function at p50")
    return out


def _task_stats(entry: object, where: str, task: str, task_names: Sequence[str]) -> TaskStats:
    if task not in task_names:
        raise StatsError(f"{where}: unknown task (known: {', '.join(task_names)})")
    if not isinstance(entry, Mapping):
        raise StatsError(f"{where}: must be an object with p25, p50, p75, n")
    for name in (*_QUANTILES, "n"):
        if name not in entry:
            raise StatsError(f"{where}: field '{name}' is missing")
    unknown = sorted(set(entry) - {*_QUANTILES, "n"})
    if unknown:
        raise StatsError(f"{where}: unknown field(s) {unknown} (known: p25, p50, p75, n)")
    for name in _QUANTILES:
        if not _is_number(entry[name]) or not math.isfinite(entry[name]):
            raise StatsError(f"{where}: field '{name}' must be a finite number, got {entry[name]!r}")
        if not 0.0 <= entry[name] <= 1.0:
            raise StatsError(f"{where}: field '{name}' must be within [0, 1] (raw rewards are), "
                             f"got {entry[name]!r}")
    n = entry["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise StatsError(f"{where}: field 'n' must be an integer >= 1 (the number of rollouts), got {n!r}")
    stats = TaskStats(float(entry["p25"]), float(entry["p50"]), float(entry["p75"]), n)
    if not stats.p25 <= stats.p50 <= stats.p75:
        raise StatsError(f"{where}: fields must satisfy p25 <= p50 <= p75, got {stats.p25}, {stats.p50}, "
                         f"{stats.p75}")
    return stats


def logistic(z: float) -> float:
    """1 / (1 + exp(-z)) without overflow; exactly within [0, 1]."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))  # exp of a non-positive number never overflows
    e = math.exp(z)
    return e / (1.0 + e)


class LogisticNormalizer:
    """Maps raw rewards to (0, 1) per (source, task); `missing` says what to do without stats."""

    def __init__(self, stats: RewardStats, k: float | None = DEFAULT_K, eps: float = DEFAULT_EPS,
                 missing: str = DEFAULT_MISSING, min_n: int = DEFAULT_MIN_N):
        k = stats.k if k is None else k
        k = DEFAULT_K if k is None else k
        check_settings(k, eps, min_n, missing)
        self.stats, self.k, self.eps, self.missing = stats, float(k), float(eps), missing
        self.warnings = stats_warnings(stats, min_n, self.eps)
        for line in self.warnings:
            logger.warning("reward stats: %s", line)

    def missing_pairs(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (source, task) pairs, in first-seen order, that have no stats."""
        return [pair for pair in dict.fromkeys(pairs) if self.stats.get(*pair) is None]

    def check_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Start-up check: raise listing every pair lacking stats (unless missing='identity')."""
        absent = self.missing_pairs(pairs)
        if absent and self.missing == "error":
            listed = ", ".join(f"({source}, {task})" for source, task in absent)
            raise MissingStatsError(
                f"no reward stats for {len(absent)} (data_source, task) pair(s): {listed}. Compute them "
                "from SFT rollouts (RewardStats.set + save) or set missing='identity' to use raw rewards.")

    def normalize(self, source: str, task: str, x: float) -> float:
        """r in [0, 1]; NaN maps to 0. Without stats: error, or x itself when missing='identity'."""
        stats = self.stats.get(source, task)
        if stats is None:
            if self.missing == "identity":
                return float(x)
            raise MissingStatsError(f"no reward stats for ({source}, {task})")
        x = float(x)
        if math.isnan(x):
            return 0.0
        return self.squash((x - stats.p50) / max(stats.iqr, self.eps))

    def squash(self, z: float) -> float:
        """The standardized reward z = (x - p50) / max(IQR, eps) mapped into (0, 1)."""
        return logistic(self.k * z)


class ZScoreNormalizer(LogisticNormalizer):
    """The logistic normalizer's standardization without the squashing: (x - p50) / max(IQR, eps).

    Unbounded. With GRPO's per-group advantage normalization it gives the same advantages as raw
    rewards (a positive affine map per (source, task), and a group never mixes pairs); kept as an ablation.
    """

    def squash(self, z: float) -> float:
        return z


NORMALIZERS: dict[str, type[LogisticNormalizer]] = {"logistic": LogisticNormalizer, "zscore": ZScoreNormalizer}
"""`medgrpo.reward.normalization.method` -> normalizer class."""
