"""`bash run.sh demo`: the whole pipeline on the generated toy MedVidBench, on CPU.

generate -> preprocess -> tiny stand-in model -> calibrate reward stats (plot) -> dry-run the GRPO
recipe -> score reference-policy rollouts through verl's reward manager (raw vs normalized per
source x task) -> score predictions into the 10-column table and a bar chart vs the paper.
The judge is the local OpenAI-compatible test server (plumbing, not a medical judge); `--no-judge`
uses similarity only. `--gpu MODEL_PATH` instead runs a few real GRPO steps (needs GPUs and
requirements-gpu.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ROLLOUT_N = 4


@dataclass
class DemoContext:
    out: Path
    no_judge: bool
    judge_url: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def toy(self) -> Path:
        return self.out / "toy"

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def judge_yaml(self) -> Path | None:
        if self.no_judge:
            return None
        path = self.out / "judge.yaml"
        path.write_text(f"judge:\n  enabled: true\n  base_url: {self.judge_url}\n  model: demo-judge\n"
                        f"  cache_path: {self.out / 'judge_cache.sqlite'}\n")
        return path


Step = Callable[[DemoContext], None]
STEPS: list[tuple[str, Step]] = []


def step(title: str) -> Callable[[Step], Step]:
    def wrap(fn: Step) -> Step:
        STEPS.append((title, fn))
        return fn
    return wrap


@step("generate the toy MedVidBench (real JPEG frames, all 8 sources and 11 qa_types)")
def generate(ctx: DemoContext) -> None:
    from testbed import toy

    toy.main(["--out", str(ctx.toy), "--predictions"])


@step("convert it to verl RL + SFT parquet (validation, splits, prompt-token estimates)")
def preprocess(ctx: DemoContext) -> None:
    from data_preprocess import medvidbench

    medvidbench.main(["--input", str(ctx.toy / "medvidbench_toy.json"), "--data-root", str(ctx.toy),
                      "--out-dir", str(ctx.data)])


@step("build a tiny random Qwen2.5-VL offline (stand-in for the 7B model on CPU)")
def tiny_model(ctx: DemoContext) -> None:
    from testbed.tiny_qwen import build_tiny_qwen25vl

    print(f"   {build_tiny_qwen25vl(ctx.out / 'tiny_qwen25vl')}")


@step("calibrate logistic-normalization stats from reference-policy rollouts (with a plot)")
def calibrate(ctx: DemoContext) -> None:
    from reward_fns import calibrate as calibrate_cli
    from testbed.policy import group_responses, noisy_predictions
    from testbed.rollouts import read_rl_rows

    noisy = noisy_predictions(str(ctx.toy / "toy_predictions.json"))
    rollouts = ctx.out / "rollouts.jsonl"
    with rollouts.open("w", encoding="utf-8") as handle:
        for row in read_rl_rows(str(ctx.data / "rl_train.parquet")):
            index = row["extra_info"]["index"]
            for text in group_responses(row, noisy[index], ROLLOUT_N):
                handle.write(json.dumps({"index": index, "response": text}) + "\n")
    argv = ["--data", str(ctx.data / "rl_train.parquet"), "--rollouts", str(rollouts),
            "--out", str(ctx.out / "reward_stats.json"), "--plot", str(ctx.out / "reward_stats.png")]
    judge = ctx.judge_yaml
    calibrate_cli.main(argv + (["--config", str(judge)] if judge else []))


def _launcher_env(ctx: DemoContext) -> dict[str, str]:
    env = dict(os.environ, MODEL_PATH=str(ctx.out / "tiny_qwen25vl"), DATA_DIR=str(ctx.data),
               OUTPUT_DIR=str(ctx.out / "runs"), REWARD_STATS=str(ctx.out / "reward_stats.json"),
               JUDGE_MODEL="demo-judge", JUDGE_CACHE=str(ctx.out / "judge_cache.sqlite"), PYTHON=sys.executable)
    env["JUDGE_BASE_URL"] = ctx.judge_url or "http://127.0.0.1:9/v1"
    return env


@step("dry-run the GRPO recipe (full verl config composed and validated, no GPU)")
def dry_run(ctx: DemoContext) -> None:
    overrides = ["medgrpo.reward.judge.enabled=false"] if ctx.no_judge else []
    proc = subprocess.run(["bash", str(ROOT / "recipes" / "qwen25vl_7b_medgrpo.sh"), *overrides],
                          env={**_launcher_env(ctx), "DRY_RUN": "1"}, capture_output=True, text=True, cwd=ROOT)
    (ctx.out / "grpo_dry_run.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith(("[dry-run]", "[valid"))]
    print("\n".join("   " + line for line in lines))
    print(f"   resolved config: {ctx.out / 'grpo_dry_run.txt'}")


@step("score reference-policy rollouts through the verl reward manager (raw vs normalized)")
def reward_rollouts(ctx: DemoContext) -> None:
    from testbed.demo_rewards import score_rollouts

    score_rollouts(ctx, ROLLOUT_N)


@step("score the reference policy's predictions: the 10-column table and a bar chart vs the paper")
def benchmark(ctx: DemoContext) -> None:
    from evaluation import score_submission as score_cli
    from evaluation.plot import plot_comparison

    judge = ctx.judge_yaml
    argv = ["--gt", str(ctx.toy / "medvidbench_toy.json"), "--pred", str(ctx.toy / "toy_predictions.json"),
            "--out", str(ctx.out / "metrics.json")]
    # The project's judge protocol: the leaderboard's needs the user's copy of the public scorer.
    argv += (["--judge", "openai", "--judge-config", str(judge), "--judge-protocol", "medgrpo"] if judge
             else ["--judge", "similarity"])
    report = score_cli.run(argv)
    plot_comparison({"toy reference policy": report.columns}, ctx.out / "benchmark.png")
    print(f"   chart: {ctx.out / 'benchmark.png'}")


def run_gpu(model_path: str, ctx: DemoContext) -> None:
    """A few real GRPO steps on the toy set (GPU cluster with requirements-gpu.txt)."""
    for title, fn in STEPS[:4]:
        print(f"\n== {title}", flush=True)
        fn(ctx)
    env = {**_launcher_env(ctx), "MODEL_PATH": model_path, "GPUS_PER_NODE": os.environ.get("GPUS_PER_NODE", "1")}
    cmd = ["bash", str(ROOT / "recipes" / "qwen25vl_7b_medgrpo.sh"), "trainer.total_training_steps=3",
           "trainer.test_freq=-1", "trainer.save_freq=-1", "data.train_batch_size=8",
           "actor_rollout_ref.actor.ppo_mini_batch_size=8", "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
           "trainer.logger=[console]"]
    if ctx.no_judge:
        cmd.append("medgrpo.reward.judge.enabled=false")
    raise SystemExit(subprocess.call(cmd, env=env, cwd=ROOT))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bash run.sh demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="demo_out", help="folder for everything the demo writes")
    p.add_argument("--no-judge", action="store_true", help="caption rewards from similarity only")
    p.add_argument("--gpu", metavar="MODEL_PATH", help="run a few real GRPO steps on GPUs instead")
    args = p.parse_args(argv)
    ctx = DemoContext(out=Path(args.out).resolve(), no_judge=args.no_judge)
    ctx.out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if not args.no_judge:
            from testbed.judge_server import JudgeTestServer

            ctx.judge_url = stack.enter_context(JudgeTestServer().run_in_thread()).base_url
            print(f"local OpenAI-compatible judge (test server, deterministic scores): {ctx.judge_url}")
        if args.gpu:
            run_gpu(args.gpu, ctx)
        started = time.perf_counter()
        for number, (title, fn) in enumerate(STEPS, start=1):
            print(f"\n== [{number}/{len(STEPS)}] {title}", flush=True)
            start = time.perf_counter()
            fn(ctx)
            print(f"   done in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s; outputs in {ctx.out}/")


if __name__ == "__main__":
    main()
