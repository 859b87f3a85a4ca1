"""Per-step MedGRPO reward and judge metrics from the reward manager's `reward_extra_info` (pure functions).

The `medgrpo_sync` trainer (recipes/ext/trainer.py) logs, for every training step, what verl's own
metrics leave out:

- ``medgrpo/reward_raw/<data_source>``, ``medgrpo/reward_norm/<data_source>``: mean raw and normalized
  reward of the step's samples of that source; ``medgrpo/samples/<data_source>``: how many there were.
- ``medgrpo/judge/<counter>``: the step's sum of each judge counter the manager writes per sample
  (``judge_requests``, ``judge_http_calls``, ``judge_cache_hits``, ``judge_failures``, ``judge_injections``,
  ``judge_prompt_tokens``, ``judge_completion_tokens``, ``judge_cost_usd``: reward_fns/judge/tally.py).

A sample without a (finite) value for a key is left out of that key's mean or sum.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from reward_fns.judge.tally import JUDGE_COUNTERS

PREFIX = "medgrpo/"
RAW, NORM, SAMPLES, JUDGE = "reward_raw", "reward_norm", "samples", "judge"
_PER_SOURCE = {RAW: "raw", NORM: "normalized"}  # metric group -> reward_extra_info key


def _number(value: Any) -> float | None:
    """`value` as a finite float, or None (missing, text, not numeric, NaN/inf)."""
    if isinstance(value, str | bytes):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def step_reward_metrics(infos: Sequence[Mapping[str, Any]], data_sources: Sequence[str]) -> dict[str, float]:
    """The step's ``medgrpo/*`` metrics from each sample's `reward_extra_info` and data_source."""
    if len(infos) != len(data_sources):
        raise ValueError(f"{len(infos)} reward_extra_info entries for {len(data_sources)} data sources")
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    judge = dict.fromkeys(JUDGE_COUNTERS, 0.0)
    counts: dict[str, int] = defaultdict(int)
    for info, source in zip(infos, data_sources, strict=True):
        counts[str(source)] += 1
        for group, key in _PER_SOURCE.items():
            number = _number(info.get(key))
            if number is not None:
                values[(group, str(source))].append(number)
        for counter in JUDGE_COUNTERS:
            number = _number(info.get(f"judge_{counter}"))
            if number is not None:
                judge[counter] += number
    metrics: dict[str, float] = {f"{PREFIX}{SAMPLES}/{source}": float(n) for source, n in sorted(counts.items())}
    metrics.update({f"{PREFIX}{group}/{source}": sum(v) / len(v) for (group, source), v in sorted(values.items())})
    if infos:
        metrics.update({f"{PREFIX}{JUDGE}/{counter}": total for counter, total in judge.items()})
    return metrics


def split_logged(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One logged step's ``medgrpo/*`` metrics regrouped: {"sources": {source: {n, raw, normalized}},
    "judge": {counter: sum}} (what `step_reward_metrics` wrote; other metrics are ignored)."""
    names = {SAMPLES: "n", RAW: "raw", NORM: "normalized"}
    sources: dict[str, dict[str, float]] = defaultdict(dict)
    judge: dict[str, float] = {}
    for name, value in metrics.items():
        group, _, rest = name.removeprefix(PREFIX).partition("/")
        if not name.startswith(PREFIX) or not rest:
            continue
        if group == JUDGE:
            judge[rest] = value
        elif group in names:
            sources[rest][names[group]] = value
    return {"sources": {source: sources[source] for source in sorted(sources)}, "judge": judge}
