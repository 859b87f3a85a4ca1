"""Reward throughput through the real verl reward manager (toy task mix).

    python benchmarks/reward_bench.py [--rollouts 4096] [--latency 0.2] [--concurrency 64]

1. rule-only: rollouts of the rule tasks (CVS NAP SA STG TAG), judge off -> samples/s (pinned to one core);
2. judged: the full toy mix with the judge on the local OpenAI-compatible test server (a separate
   process) at `--latency` s per call and `--concurrency` -> fraction of the ideal
   calls * latency / concurrency;
3. the same rollouts again with a warm judge cache -> HTTP calls (must be 0) and speed-up;
4. the judge pipeline alone: a cold judge cache with the MiniLM embeddings already computed.
Targets: rule-only >= 5,000 samples/s per core; judged >= 80 % of ideal; warm rerun >= 20x faster.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULE_TASKS = {"CVS", "NAP", "SA", "STG", "TAG"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _toy_rows(tmp: Path) -> tuple[list[dict], dict[int, str]]:
    """RL rows of the toy set and the reference policy's answer per record index."""
    import json

    from data_preprocess import medvidbench
    from testbed import toy

    toy.main(["--out", str(tmp / "toy"), "--predictions", "--per-qa-type", "8"])
    medvidbench.main(["--input", str(tmp / "toy" / toy.TOY_FILE), "--data-root", str(tmp / "toy"),
                      "--out-dir", str(tmp / "rl"), "--val-fraction", "0"])
    from testbed.rollouts import read_rl_rows

    rows = read_rl_rows(str(tmp / "rl" / "rl_train.parquet"))
    predictions = json.loads((tmp / "toy" / toy.PREDICTIONS_FILE).read_text())
    return rows, {i: p["prediction"] for i, p in enumerate(predictions)}


def _rollouts(rows: list[dict], answers: dict[int, str], n: int, tasks: set[str] | None) -> tuple[list, list]:
    """n (row, response) pairs cycling over rows; caption answers made unique per rollout."""
    pool = [r for r in rows if tasks is None or r["ability"] in tasks]
    picked, responses = [], []
    for k in range(n):
        row = pool[k % len(pool)]
        text = answers[row["extra_info"]["index"]]
        if row["ability"] in ("VS", "RC", "DVC"):
            text = f"{text} (view {k})"  # every rollout distinct: no free cache hits in the cold run
        picked.append(row)
        responses.append(text)
    return picked, responses


def _manager(tmp: Path, data: Path, judge: dict | None):
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.reward import load_reward_manager

    overrides = [
        "reward.reward_manager.source=importlib",
        "reward.reward_manager.module.path=pkg://reward_fns.manager",
        "reward.reward_manager.name=MedGRPORewardManager",
        f"data.train_files=[{data}]", f"data.val_files=[{data}]",
        "+medgrpo.reward.normalization.enabled=false",
        f"+medgrpo.reward.judge={{{','.join(f'{k}:{v}' for k, v in (judge or {'enabled': False}).items())}}}",
    ]
    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=overrides)
    from testbed.tiny_qwen import build_tokenizer

    tokenizer = build_tokenizer()
    return load_reward_manager(cfg, tokenizer), tokenizer


async def _score_all(manager, batch) -> list[dict]:
    return await asyncio.gather(*(manager.run_single(batch[i: i + 1]) for i in range(len(batch))))


def _timed(manager, batch) -> tuple[float, list[dict]]:
    gc.collect()  # start each timed phase from the same heap state, not mid-way through a collection
    start = time.perf_counter()
    results = asyncio.run(_score_all(manager, batch))
    return time.perf_counter() - start, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rollouts", type=int, default=4096)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from testbed.rollouts import rollout_batch

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows, answers = _toy_rows(tmp)
        data = tmp / "rl" / "rl_train.parquet"

        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})
        manager, tokenizer = _manager(tmp, data, None)
        batch = rollout_batch(tokenizer, *_rollouts(rows, answers, args.rollouts, RULE_TASKS))
        _timed(manager, batch[:256])  # warm-up (NAP class embeddings, imports)
        seconds, results = _timed(manager, batch)
        os.sched_setaffinity(0, affinity)
        assert all(0.0 <= r["reward_score"] <= 1.0 for r in results)
        print(f"rule-only: {len(batch)} rollouts in {seconds:.2f} s = {len(batch) / seconds:,.0f} samples/s (1 core)")

        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "testbed.judge_server", "--port", str(port),
                                   "--latency", str(args.latency)], cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            time.sleep(2.0)
            judge = {"enabled": True, "base_url": f"http://127.0.0.1:{port}/v1", "concurrency": args.concurrency,
                     "cache_path": str(tmp / "judge.sqlite"), "timeout_s": 30}
            manager, tokenizer = _manager(tmp, data, judge)
            batch = rollout_batch(tokenizer, *_rollouts(rows, answers, args.rollouts, None))
            judge_client = manager.scorer.captions.judge
            cold, results = _timed(manager, batch)
            calls = judge_client.http_calls
            ideal = calls * args.latency / args.concurrency
            ok = sum(r["reward_extra_info"]["judge_ok"] for r in results if r["reward_extra_info"]["caption_pairs"])
            print(f"judged: {len(batch)} rollouts, {calls} judge calls in {cold:.2f} s; ideal {ideal:.2f} s "
                  f"-> {ideal / cold:.0%} of ideal; judge_ok on {ok} captioned rollouts")
            warm_similarity = manager.scorer.captions.similarity
            manager, tokenizer = _manager(tmp, data, judge)  # fresh manager: only the SQLite cache is warm
            warm, _ = _timed(manager, batch)
            print(f"warm rerun: {warm:.2f} s, HTTP calls {manager.scorer.captions.judge.http_calls}, "
                  f"{cold / warm:.1f}x faster than cold")
            # the judge pipeline alone: a cold judge cache, but MiniLM embeddings already computed
            manager, tokenizer = _manager(tmp, data, {**judge, "cache_path": str(tmp / "judge2.sqlite")})
            manager.scorer.captions.similarity = warm_similarity
            bound, _ = _timed(manager, batch)
            calls = manager.scorer.captions.judge.http_calls
            ideal = calls * args.latency / args.concurrency
            print(f"judge pipeline alone (embeddings warm): {calls} calls in {bound:.2f} s "
                  f"-> {ideal / bound:.0%} of ideal")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
