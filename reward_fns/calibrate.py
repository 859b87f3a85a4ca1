"""CLI: logistic-normalization stats from SFT-model rollouts.

    python -m reward_fns.calibrate --data rl_train.parquet --rollouts rollouts.jsonl [more.jsonl ...] \
        --out stats.json [--plot stats.png] [--config reward.yaml] [--k 2.0] [--min-n 20] [--eps 0.001]

rollouts.jsonl: one line per response, `{"index": <extra_info.index of the parquet row>, "response": "..."}`
(several lines per index allowed; several files, e.g. one per vLLM replica, are read as one); `index`
must be a JSON integer and `response` a JSON string (no coercion: `1.9`, `true`, `"1"` or a numeric
response are errors naming the line). Raw rewards are computed exactly as in training (same tasks,
same caption reward: judge + similarity when `--config` enables the judge, similarity alone
otherwise), then p25 / p50 / p75 per (data_source, task) are validated like `RewardStats.load` does
and written as a versioned stats file; pairs with fewer than `--min-n` rollouts or an IQR below
`--eps` are reported as warnings naming the pair. With the judge on, one real judge request is sent
first (`judge.startup_check`), and a run whose judge failed `judge.max_failure_rate` of its requests
writes no stats (`judge.on_failure: abort`; `similarity`: a warning).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from reward_fns.answer_reward import RewardScorer
from reward_fns.build import build_scorer
from reward_fns.config import MedGRPORewardConfig
from reward_fns.jsonl import json_lines, json_object
from reward_fns.judge.health import judge_used, probe_judge
from reward_fns.normalize import DEFAULT_EPS, DEFAULT_MIN_N, MAX_K, RewardStats, StatsError, stats_warnings
from reward_fns.reference import Reference

RawRewards = dict[tuple[str, str], list[float]]


class CalibrationError(ValueError):
    """Bad calibration input; the message names the file and line."""


_EXPECTED = 'expected {"index": int, "response": str}'  # a rollout line; JSON types are never coerced


def load_references(parquet: str | Path) -> dict[int, Reference]:
    """extra_info.index -> Reference, from an RL parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(parquet, columns=["reward_model", "extra_info"])
    refs = {}
    for row, (rm, extra) in enumerate(zip(table["reward_model"].to_pylist(), table["extra_info"].to_pylist(),
                                          strict=True)):
        try:
            refs[int(extra["index"])] = Reference.from_json(rm["ground_truth"])
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError(f"{parquet}: row {row}: unreadable reward_model/extra_info: {err}") from None
    return refs


def load_rollouts(paths: str | Path | list[str | Path], refs: dict[int, Reference]) -> list[tuple[int, str]]:
    """(index, response) pairs of one or more files; every index must exist in the parquet."""
    rollouts = []
    for path in paths if isinstance(paths, list) else [paths]:
        with open(path, encoding="utf-8") as handle:
            for where, value in json_lines(handle, path, _EXPECTED, CalibrationError):
                item = json_object(value, where, {"index": int, "response": str}, _EXPECTED, CalibrationError)
                if item["index"] not in refs:
                    raise CalibrationError(f"{where}: index {item['index']} is not an extra_info.index of the parquet")
                rollouts.append((item["index"], item["response"]))
    if not rollouts:
        raise CalibrationError(f"{', '.join(map(str, paths)) if isinstance(paths, list) else paths}: no rollouts")
    return rollouts


async def raw_rewards(rollouts: list[tuple[int, str]], refs: dict[int, Reference],
                      config: MedGRPORewardConfig, scorer: RewardScorer | None = None) -> RawRewards:
    """Raw rewards grouped by (data_source, task), computed concurrently like the trainer does."""
    scorer = scorer or build_scorer(config)
    scorer.normalizer = None
    outcomes = await asyncio.gather(*(scorer.score(resp, refs[i]) for i, resp in rollouts))
    grouped: RawRewards = defaultdict(list)
    for outcome in outcomes:
        grouped[(outcome.source, outcome.task)].append(outcome.raw)
    return dict(grouped)


def compute_stats(grouped: RawRewards, k: float | None) -> RewardStats:
    """Quartiles per (source, task), validated as `RewardStats.load` would validate the file."""
    stats = RewardStats(k=k)
    for (source, task), values in sorted(grouped.items()):
        try:
            stats.set(source, task, values)
        except ValueError as err:
            raise CalibrationError(f"({source}, {task}): {err}") from None
    try:
        RewardStats.from_dict(stats.to_dict(), "computed stats")
    except StatsError as err:
        raise CalibrationError(str(err)) from None
    return stats


def check_judge_alive(config: MedGRPORewardConfig) -> None:
    """One real judge request before scoring (judge.startup_check): stats of similarity-only caption
    rewards would not match training's judge + similarity rewards."""
    judge = config.judge
    if not (judge_used(config) and judge.startup_check):
        return
    result = probe_judge(judge)
    if not result.ok:
        raise CalibrationError(f"the judge ({judge.model} at {judge.base_url or 'api.openai.com'}) did not answer one "
                               f"request: {result.reason} (judge.startup_check=false skips this check)")


def check_judge_outcome(config: MedGRPORewardConfig, scorer: RewardScorer) -> None:
    """After scoring: too many failed judge requests (judge.max_failure_rate) are an error with
    on_failure=abort, a warning otherwise."""
    judge = scorer.captions.judge if scorer.captions is not None else None
    if judge is None or not judge.health.failed:
        return
    health = judge.health
    line = (f"the judge failed {health.failed} of {health.judged} requests (last reason: {health.last_reason}); "
            f"their caption rewards are similarity only")
    if health.failed >= config.judge.max_failure_rate * health.judged and config.judge.on_failure == "abort":
        raise CalibrationError(f"{line}: no stats written (judge.on_failure=abort; similarity accepts them)")
    print(f"warning: {line}", file=sys.stderr)


def _load_config(path: str | None) -> MedGRPORewardConfig:
    data: dict[str, Any] = {}
    if path:
        from omegaconf import OmegaConf

        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        data = loaded.get("medgrpo", {}).get("reward", loaded) if isinstance(loaded, dict) else {}
    data = dict(data)
    data["normalization"] = {"enabled": False}
    data["check_data"] = False
    return MedGRPORewardConfig.from_mapping(data)


def main(argv: list[str] | None = None) -> RewardStats:
    p = argparse.ArgumentParser(prog="python -m reward_fns.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="RL parquet (rl_train.parquet)")
    p.add_argument("--rollouts", required=True, nargs="+", help="JSONL file(s) of {index, response}")
    p.add_argument("--out", required=True, help="stats JSON to write")
    p.add_argument("--plot", help="PNG of the raw-reward distributions with median and IQR")
    p.add_argument("--config", help="YAML with a medgrpo.reward block (judge, similarity)")
    p.add_argument("--k", type=float, default=2.0, help=f"default steepness stored in the stats file (0, {MAX_K:g}]")
    p.add_argument("--min-n", type=int, default=DEFAULT_MIN_N, help="warn for pairs with fewer rollouts")
    p.add_argument("--eps", type=float, default=DEFAULT_EPS, help="warn for pairs whose IQR is below this floor")
    args = p.parse_args(argv)
    if not (math.isfinite(args.k) and 0 < args.k <= MAX_K):
        raise SystemExit(f"error: --k must be in (0, {MAX_K:g}], got {args.k:g}")
    try:
        refs = load_references(args.data)
        rollouts = load_rollouts(args.rollouts, refs)
        config = _load_config(args.config)
        check_judge_alive(config)
        scorer = build_scorer(config)
        grouped = asyncio.run(raw_rewards(rollouts, refs, config, scorer))
        check_judge_outcome(config, scorer)
        stats = compute_stats(grouped, args.k)
    except (CalibrationError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    stats.save(args.out)
    for source, task in sorted(grouped):
        s = stats.get(source, task)
        print(f"{source:14s} {task:4s} n={s.n:5d} p25={s.p25:.3f} p50={s.p50:.3f} p75={s.p75:.3f}")
    for line in stats_warnings(stats, args.min_n, args.eps):
        print(f"warning: {line}", file=sys.stderr)
    if args.plot:
        from reward_fns.stats_plot import plot_distributions

        plot_distributions(grouped, stats, args.plot, eps=args.eps)
        print(f"plot: {args.plot}")
    print(f"stats: {args.out}")
    return stats


if __name__ == "__main__":
    main()
