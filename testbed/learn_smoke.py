"""`bash run.sh learn-smoke [--out DIR] [--steps N] [--normalization logistic|none|zscore] [--seed S]`:
GRPO with the MedGRPO reward visibly raises the reward of a tiny model on CPU.

The learnable toy MedVidBench (testbed/toy_learn.py: the frames determine every answer) ->
verl parquet -> a tiny random Qwen2.5-VL -> SFT warm start (recipes/qwen25vl_7b_sft.sh: teaches the
answer formats) -> calibration (recipes/calibrate_reward_stats.sh) -> GRPO (recipes/qwen25vl_7b_medgrpo.sh)
for N steps, validating greedily on the held-out toy prompts before the first step (step 0) and every
`--val-every` steps. The same launchers and configs as train-smoke (testbed/train_smoke.py: its stage
runner), overridden for size and learning speed only (LEARN_SETTINGS).

Writes DIR/learning.json ({"settings", "steps": [{"step", "val": {source: {raw, normalized, n}},
"train": {source: {...}}}], "target", "timings_s"}), DIR/curves.png and DIR/curves.csv (reward_fns.curves:
per (data_source, task) and step), and prints the validation table and whether the run met the target
(mean raw validation reward up by >= 0.10 from step 0 to the last step, >= 3 sources ending higher).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reward_fns.atomic_io import write_json_atomic
from testbed.train_smoke import JUDGE_MODEL, VLLM_INFER_ARGS, VLLM_OFFLINE_ENV, Smoke, SmokeError, fresh_dir

MARKER = ".learn_smoke"
NORMALIZATION = {  # --normalization -> GRPO overrides of medgrpo.reward.normalization
    "logistic": [],
    "none": ["medgrpo.reward.normalization.enabled=false"],
    "zscore": ["medgrpo.reward.normalization.method=zscore"],
}
TARGET_GAIN, TARGET_SOURCES = 0.10, 3


@dataclass(frozen=True)
class LearnSettings:
    """Everything that shapes a learn-smoke run (written to learning.json)."""

    steps: int = 40
    normalization: str = "logistic"
    seed: int = 0
    per_pair: int = 40  # toy records per (data_source, task); about val_fraction go to validation
    val_fraction: float = 0.25
    sft_steps: int = 120
    sft_batch: int = 16
    sft_lr: float = 1e-2
    calib_n: int = 1
    batch: int = 8  # prompts per GRPO step
    mini_batch: int = 8  # prompts per policy update (batch / mini_batch updates per step)
    epochs: int = 1  # passes over each step's rollouts (actor.ppo_epochs)
    n: int = 8  # answers per prompt
    lr: float = 1e-3  # peak; cosine decay to min_lr_ratio x lr over the run
    min_lr_ratio: float = 0.1
    temperature: float = 1.0
    max_response: int = 32
    kl_coef: float = 0.01
    val_every: int = 5

    def sft_overrides(self) -> list[str]:
        return [f"data.train_batch_size={self.sft_batch}", f"trainer.total_training_steps={self.sft_steps}",
                "trainer.total_epochs=1000", f"optim.lr={self.sft_lr}", "optim.lr_scheduler_type=constant",
                "optim.lr_warmup_steps_ratio=0.0", f"trainer.save_freq={self.sft_steps}", "trainer.test_freq=-1",
                f"trainer.seed={self.seed}", "trainer.resume_mode=disable", "trainer.logger=[console,file]"]

    def grpo_overrides(self, rollouts: Path, val: Path) -> list[str]:
        return [
            f"data.train_batch_size={self.batch}", f"actor_rollout_ref.actor.ppo_mini_batch_size={self.mini_batch}",
            f"actor_rollout_ref.actor.ppo_epochs={self.epochs}",
            f"actor_rollout_ref.rollout.n={self.n}", f"actor_rollout_ref.rollout.temperature={self.temperature}",
            f"actor_rollout_ref.actor.optim.lr={self.lr}", "actor_rollout_ref.actor.optim.lr_scheduler_type=cosine",
            f"actor_rollout_ref.actor.optim.min_lr_ratio={self.min_lr_ratio}",
            f"actor_rollout_ref.actor.kl_loss_coef={self.kl_coef}",
            "data.max_prompt_length=512", f"data.max_response_length={self.max_response}",
            "data.filter_overlong_prompts_workers=1", f"data.seed={self.seed}",
            f"actor_rollout_ref.rollout.seed={self.seed}",
            "actor_rollout_ref.rollout.agent.num_workers=1", "reward.num_workers=1",
            f"trainer.total_training_steps={self.steps}", "trainer.total_epochs=1000", "trainer.save_freq=-1",
            f"trainer.test_freq={self.val_every}", "trainer.val_before_train=true", "trainer.log_val_generations=0",
            "trainer.resume_mode=disable", "trainer.logger=[console,file]",
            f"trainer.rollout_data_dir={rollouts}", f"trainer.validation_data_dir={val}",
            *NORMALIZATION[self.normalization]]


class LearnSmoke(Smoke):
    name = "learn-smoke"


def prepare(smoke: Smoke, settings: LearnSettings) -> Path:
    """Learnable toy data, its verl parquet, the tiny model (in-process: seconds)."""
    from data_preprocess import medvidbench
    from testbed import toy_learn
    from testbed.tiny_qwen import build_tiny_qwen25vl

    start = time.perf_counter()
    toy = toy_learn.generate(smoke.path("toy"), settings.per_pair, settings.seed)
    code = medvidbench.main(["--input", str(toy), "--out-dir", str(smoke.path("data")), "--workers", "1",
                             "--val-fraction", str(settings.val_fraction), "--seed", str(settings.seed)])
    if code != 0:
        raise SmokeError("converting the learnable toy set failed (see above)")
    model = build_tiny_qwen25vl(smoke.path("tiny_qwen25vl"))
    smoke.timings["prepare"] = round(time.perf_counter() - start, 1)
    return Path(model)


def train(smoke: Smoke, model: Path, settings: LearnSettings) -> None:
    """SFT warm start -> calibration -> GRPO with validation, through the launchers."""
    smoke.launcher("sft", "qwen25vl_7b_sft.sh", settings.sft_overrides(), MODEL_PATH=str(model), EXPERIMENT="sft",
                   GPUS_PER_NODE="2", VERL_FILE_LOGGER_PATH=str(smoke.path("logs", "sft_metrics.jsonl")))
    sft_hf = smoke.path("runs", "sft", f"global_step_{settings.sft_steps}", "huggingface")
    if not (sft_hf / "config.json").is_file():
        raise SmokeError(f"SFT wrote no HF model at {sft_hf}")
    infer_args = " ".join((*VLLM_INFER_ARGS, "--max-new-tokens", str(settings.max_response),
                           "--seed", str(settings.seed)))  # sampled through vLLM, as train-smoke calibrates
    smoke.launcher("calibrate", "calibrate_reward_stats.sh", [], MODEL_PATH=str(sft_hf), CALIB_N=str(settings.calib_n),
                   INFER_ARGS=infer_args, CALIB_DIR=str(smoke.path("calibration")), **VLLM_OFFLINE_ENV)
    overrides = settings.grpo_overrides(smoke.path("grpo_rollouts"), smoke.path("grpo_val"))
    smoke.launcher("grpo", "qwen25vl_7b_medgrpo.sh", overrides, MODEL_PATH=str(sft_hf), EXPERIMENT="grpo",
                   GPUS_PER_NODE="1", VERL_FILE_LOGGER_PATH=str(smoke.path("logs", "grpo_metrics.jsonl")))


def per_source(rows: list[dict[str, Any]], split: str) -> dict[int, dict[str, dict[str, float]]]:
    """{step: {data_source: {raw, normalized, n}}} of one split of the curves table (sample-weighted)."""
    sums: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        if row["split"] != split:
            continue
        acc = sums.setdefault(row["step"], {}).setdefault(row["data_source"], [0.0, 0.0, 0.0])
        acc[0] += row["raw"] * row["n"]
        acc[1] += row["normalized"] * row["n"]
        acc[2] += row["n"]
    return {step: {src: {"raw": r / n, "normalized": z / n, "n": int(n)} for src, (r, z, n) in sorted(srcs.items())}
            for step, srcs in sorted(sums.items())}


def learning_steps(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per validation point: its validation rewards and that step's training rollouts'."""
    val, train_ = per_source(rows, "val"), per_source(rows, "train")
    return [{"step": step, "val": val[step], "train": train_.get(step, {})} for step in sorted(val)]


def target(steps: list[dict[str, Any]], alarms: Sequence[str] = ()) -> dict[str, Any]:
    """Item 2 of the learn-smoke issue: mean raw validation reward over sources, first vs last point.
    `suspect`: the run's length-growth alarms (answers padded, e.g. extra TAG spans the reward never
    penalizes): a rise beside them may be reward hacking rather than learning."""
    if len(steps) < 2:
        return {"met": False, "why": f"{len(steps)} validation point(s); need step 0 and a later one"}
    first, last = steps[0]["val"], steps[-1]["val"]
    common = sorted(set(first) & set(last))
    mean = {key: sum(point[src]["raw"] for src in common) / max(len(common), 1)
            for key, point in (("first", first), ("last", last))}
    higher = [src for src in common if last[src]["raw"] > first[src]["raw"] + 1e-9]  # not float noise
    gain = mean["last"] - mean["first"]
    met = gain >= TARGET_GAIN and len(higher) >= TARGET_SOURCES
    return {"met": met, "suspect": [a for a in alarms if a.startswith("length-growth")],
            "first_step": steps[0]["step"], "last_step": steps[-1]["step"],
            "mean_raw_first": mean["first"], "mean_raw_last": mean["last"], "gain": gain,
            "sources_higher": higher, "sources": common,
            "want": f"gain >= {TARGET_GAIN} and >= {TARGET_SOURCES} sources higher"}


def table(steps: list[dict[str, Any]]) -> list[str]:
    """Validation raw reward per source (rows) and validation point (columns)."""
    sources = sorted({src for s in steps for src in s["val"]})
    lines = ["val raw      " + " ".join(f"{'step ' + str(s['step']):>9}" for s in steps)]
    for src in sources:
        cells = " ".join(f"{s['val'][src]['raw']:9.3f}" if src in s["val"] else f"{'-':>9}" for s in steps)
        lines.append(f"{src[:12]:<12} {cells}")
    means = [sum(v["raw"] for v in s["val"].values()) / max(len(s["val"]), 1) for s in steps]
    lines.append(f"{'mean':<12} " + " ".join(f"{m:9.3f}" for m in means))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    defaults = LearnSettings()
    parser = argparse.ArgumentParser(prog="bash run.sh learn-smoke", description=__doc__.split("\n")[1])
    parser.add_argument("--out", default="learn_smoke_out", help="output folder, emptied first (only one that "
                        "learn-smoke made, or an empty one)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"GRPO steps (default {defaults.steps})")
    parser.add_argument("--normalization", choices=sorted(NORMALIZATION), default=defaults.normalization)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--val-every", type=int, default=defaults.val_every, help="validate every N GRPO steps")
    parser.add_argument("--sft-steps", type=int, default=defaults.sft_steps)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="GRPO learning rate")
    parser.add_argument("--n", type=int, default=defaults.n, help="answers per prompt")
    parser.add_argument("--per-pair", type=int, default=defaults.per_pair, help="toy records per (source, task)")
    args = parser.parse_args(argv)
    for name in ("steps", "val_every", "sft_steps", "n", "per_pair"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    settings = LearnSettings(steps=args.steps, normalization=args.normalization, seed=args.seed,
                             val_every=args.val_every, sft_steps=args.sft_steps, lr=args.lr, n=args.n,
                             per_pair=args.per_pair)
    out = Path(args.out).resolve()
    try:
        fresh_dir(out, MARKER, "learn-smoke")
    except SmokeError as err:
        print(f"[learn-smoke] {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    from reward_fns import curves
    from testbed.judge_server import JudgeTestServer

    with JudgeTestServer(model=JUDGE_MODEL).run_in_thread() as server:
        smoke = LearnSmoke(out, server)
        try:
            train(smoke, prepare(smoke, settings), settings)
            run = curves.read_run(out)
        except (SmokeError, OSError, ValueError) as err:
            print(f"[learn-smoke] FAILED: {err}", file=sys.stderr)
            return 1
    curves.write_csv(run, out / "curves.csv")
    curves.plot(run, out / "curves.png", title=f"learn-smoke ({settings.normalization} normalization)")
    steps = learning_steps(run.rows)
    verdict = target(steps, [a.line() for a in run.alarms])
    total = round(time.perf_counter() - start, 1)
    write_json_atomic(out / "learning.json", {"settings": asdict(settings), "steps": steps, "target": verdict,
                                              "timings_s": smoke.timings, "total_s": total,
                                              "alarms": [a.line() for a in run.alarms]})
    print("\n".join(table(steps)))
    for alarm in run.alarms:
        print(f"[learn-smoke] alarm: {alarm.line()}")
    status = "MET" if verdict["met"] else "NOT MET"
    detail = (f"mean raw val reward {verdict['mean_raw_first']:.3f} -> {verdict['mean_raw_last']:.3f} "
              f"({verdict['gain']:+.3f}), {len(verdict['sources_higher'])}/{len(verdict['sources'])} sources "
              "higher" if "gain" in verdict else verdict["why"])
    print(f"[learn-smoke] target ({verdict.get('want', '')}): {status}: {detail}")
    if verdict.get("suspect"):
        print(f"[learn-smoke] but {len(verdict['suspect'])} length-growth alarm(s): answers got padded; read the "
              "validation answers (DIR/grpo_val) before calling the rise learning (docs/training.md)")
    print(f"[learn-smoke] {out / 'learning.json'}, {out / 'curves.png'}; total {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
