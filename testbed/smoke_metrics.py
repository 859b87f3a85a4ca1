"""Per-step metrics of a training run, read from what verl writes through its public options.

- ``trainer.logger=[console,file]`` with ``VERL_FILE_LOGGER_PATH``: one JSON line per logged step
  (``{"step": N, "data": {metric: value}}``), for SFT (train/loss, ...) and GRPO (actor/kl_loss,
  actor/entropy, critic/score/mean, ...).
- ``trainer.rollout_data_dir``: one ``<step>.jsonl`` per GRPO step with every sample's decoded
  response, ground truth and the reward the trainer used (the normalized MedGRPO reward).

The recipe's ``medgrpo_sync`` trainer (recipes/ext/trainer.py) also logs, per step, the reward raw and
normalized per data_source and the judge's calls, cache hits, tokens and cost (``medgrpo/*`` metrics).
They are checked against a second computation from the dump: the normalized reward is the trainer's
own; the raw reward is the same sample rescored by the reward manager's scorer
(``reward_fns.build.build_scorer`` on the run's own ``medgrpo.reward`` config), which must reproduce
the trainer's normalized reward (a mismatch is reported).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipes.ext.reward_metrics import JUDGE_COUNTERS, split_logged
from reward_fns.build import build_scorer
from reward_fns.config import MedGRPORewardConfig
from reward_fns.reference import Reference
from reward_fns.train_log import file_log_steps

SFT_KEYS = {"loss": "train/loss", "grad_norm": "train/grad_norm", "lr": "train/lr"}
GRPO_KEYS = {"score": "critic/score/mean", "kl": "actor/kl_loss", "entropy": "actor/entropy",
             "pg_loss": "actor/pg_loss", "grad_norm": "actor/grad_norm",
             "response_length": "response_length/mean", "step_s": "timing_s/step",
             "rollout_probs_diff_max": "training/rollout_probs_diff_max"}
MATCH_TOL = 1e-5


def read_logged_rewards(path: str | Path) -> dict[int, dict[str, Any]]:
    """Per step: the ``medgrpo/*`` metrics the medgrpo_sync trainer logged, as
    {"sources": {source: {n, raw, normalized}}, "judge": {counter: sum}} (steps without them left out)."""
    steps = {step: split_logged(data) for step, data in file_log_steps(path)}
    return {step: logged for step, logged in steps.items() if logged["sources"] or logged["judge"]}


def logged_mismatches(step: dict[str, Any]) -> list[str]:
    """Where the trainer's logged per-source rewards (step["logged"]) differ from the dump's (step["sources"])."""
    logged, dumped = step.get("logged", {}).get("sources", {}), step.get("sources", {})
    where = f"GRPO step {step['step']}"
    if sorted(logged) != sorted(dumped):
        return [f"{where}: logged data sources {sorted(logged)} != rollout dump's {sorted(dumped)}"]
    problems = []
    for source, mine in dumped.items():
        for key in ("n", "raw", "normalized"):
            theirs = logged[source].get(key)
            if theirs is None or abs(float(theirs) - mine[key]) > MATCH_TOL:
                problems.append(f"{where}: {source} {key}: logged {theirs} != rollout dump's {mine[key]}")
    return problems


@dataclass
class SourceRewards:
    """Rewards of one data_source within one step."""

    raw: list[float] = field(default_factory=list)
    normalized: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        n = len(self.raw)
        return {"n": n, "raw": sum(self.raw) / n, "normalized": sum(self.normalized) / n}


def reward_settings(hydra_config: str | Path) -> MedGRPORewardConfig:
    """The run's `medgrpo.reward` settings from the config Hydra saved for it (.hydra/config.yaml)."""
    from omegaconf import OmegaConf

    return MedGRPORewardConfig.from_trainer_config(OmegaConf.load(hydra_config))


async def _score_step(scorer: Any, rows: list[dict[str, Any]], where: str) -> tuple[dict[str, SourceRewards], float]:
    per_source: dict[str, SourceRewards] = defaultdict(SourceRewards)
    worst = 0.0
    for number, row in enumerate(rows, 1):
        try:
            ref = Reference.from_json(row["gts"])
            output, score = row["output"], float(row["score"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}:{number}: unreadable rollout dump row: {err}") from None
        outcome = await scorer.score(output, ref)
        per_source[ref.data_source].raw.append(outcome.raw)
        per_source[ref.data_source].normalized.append(score)
        worst = max(worst, abs(outcome.normalized - score))
    return per_source, worst


def rewards_per_source(dump_dir: str | Path, settings: MedGRPORewardConfig) -> list[dict[str, Any]]:
    """Per step: {"step", "sources": {data_source: {n, raw, normalized}}, "max_rescore_diff"}."""
    files = sorted(Path(dump_dir).glob("*.jsonl"), key=lambda p: int(p.stem))
    if not files:
        raise FileNotFoundError(f"{dump_dir}: no rollout dumps (<step>.jsonl); was trainer.rollout_data_dir set?")
    scorer = build_scorer(settings)

    async def run() -> list[dict[str, Any]]:
        steps = []
        for path in files:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            per_source, worst = await _score_step(scorer, rows, str(path))
            steps.append({"step": int(path.stem), "max_rescore_diff": worst,
                          "sources": {src: per_source[src].summary() for src in sorted(per_source)}})
        return steps

    return asyncio.run(run())


def sft_line(step: dict[str, Any]) -> str:
    return (f"SFT  step {step['step']}: loss {step.get('loss', float('nan')):.4f}  "
            f"grad_norm {step.get('grad_norm', float('nan')):.3f}  lr {step.get('lr', float('nan')):.2e}")


def _rewards(r: dict[str, Any]) -> str:
    return (f"n={r.get('n', 0):<3g} raw {r.get('raw', float('nan')):.4f}  "
            f"normalized {r.get('normalized', float('nan')):.4f}")


def grpo_lines(step: dict[str, Any]) -> list[str]:
    """The step's verl metrics, then per data_source the trainer's logged rewards (medgrpo/*) beside the
    rollout dump's, then the judge's logged counts."""
    lines = [f"GRPO step {step['step']}: reward {step.get('score', float('nan')):.4f}  "
             f"kl {step.get('kl', float('nan')):.3e}  entropy {step.get('entropy', float('nan')):.4f}  "
             f"pg_loss {step.get('pg_loss', float('nan')):.4f}  response_len {step.get('response_length', 0):.1f}  "
             f"rollout_probs_diff_max {step.get('rollout_probs_diff_max', float('nan')):.2e}"]
    logged = step.get("logged", {})
    for source in sorted(set(step.get("sources", {})) | set(logged.get("sources", {}))):
        mine = step.get("sources", {}).get(source, {})
        lines.append(f"    {source:<20} logged {_rewards(logged.get('sources', {}).get(source, {}))}  |  "
                     f"dump {_rewards(mine)}")
    judge = logged.get("judge", {})
    if judge:
        lines.append("    judge (logged): " + "  ".join(
            f"{name} ${judge[name]:.6f}" if name == "cost_usd" else f"{name} {judge[name]:g}"
            for name in JUDGE_COUNTERS if name in judge))
    return lines
