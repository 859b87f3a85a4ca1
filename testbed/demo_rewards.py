"""Demo step: reference-policy rollouts through verl's reward manager, summarised per source x task."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any


def load_manager(ctx: Any) -> Any:
    """Our manager through verl's `load_reward_manager`, from the recipe's composed config."""
    from verl.trainer.ppo.reward import load_reward_manager

    from recipes import dry_run
    from testbed.tiny_qwen import build_tokenizer

    train = str(ctx.data / "rl_train.parquet")
    judge = {"enabled": False} if ctx.no_judge else {"base_url": ctx.judge_url}
    cfg = dry_run.compose("medgrpo_grpo", values={
        "data.train_files": train, "data.val_files": train,
        "medgrpo.reward.normalization.stats_path": str(ctx.out / "reward_stats.json"),
        "medgrpo.reward.judge.model": "demo-judge", "medgrpo.reward.judge.api_key_env": "MEDGRPO_DEMO_KEY",
        "medgrpo.reward.judge.cache_path": str(ctx.out / "judge_cache.sqlite"),
        **{f"medgrpo.reward.judge.{key}": value for key, value in judge.items()}})
    return load_reward_manager(cfg, build_tokenizer())


def score_rollouts(ctx: Any, n: int) -> None:
    from testbed.policy import group_responses, noisy_predictions
    from testbed.rollouts import read_rl_rows, rollout_batch

    manager = load_manager(ctx)
    noisy = noisy_predictions(str(ctx.toy / "toy_predictions.json"))
    rows, texts = [], []
    for row in read_rl_rows(str(ctx.data / "rl_train.parquet")):
        for text in group_responses(row, noisy[row["extra_info"]["index"]], n):
            rows.append(row)
            texts.append(text)
    batch = rollout_batch(manager.tokenizer, rows, texts)

    async def run() -> list[dict]:
        try:
            return await asyncio.gather(*(manager.run_single(batch[i: i + 1]) for i in range(len(batch))))
        finally:
            judge = manager.scorer.captions.judge if manager.scorer.captions else None
            if judge is not None:
                await judge.aclose()

    outputs = asyncio.run(run())
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for out in outputs:
        info = out["reward_extra_info"]
        groups[(info["source"], info["task"])].append(info)
    print(f"   {len(outputs)} rollouts ({n} per prompt); NAP is off by default (task_enabled = 0)")
    print(f"   {'source':14s} {'task':4s} {'n':>4s} {'raw':>6s} {'norm':>6s} {'parsed':>7s} {'judged':>7s}")
    for (source, task), infos in sorted(groups.items()):
        mean = {key: sum(i[key] for i in infos) / len(infos) for key in ("raw", "normalized", "parse_ok", "judge_ok")}
        judged = f"{mean['judge_ok']:7.2f}" if any(i["caption_pairs"] for i in infos) else "      -"
        print(f"   {source:14s} {task:4s} {len(infos):4d} {mean['raw']:6.3f} {mean['normalized']:6.3f} "
              f"{mean['parse_ok']:7.2f} {judged}")
