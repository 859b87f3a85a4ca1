"""What recipes/calibrate_reward_stats.sh needs besides the launchers: the model family, the prompts
and the vLLM plan.

    python -m recipes.calibration family --model DIR
        -> the medgrpo_model of the model (qwen2_5_vl | qwen3_vl; nothing when unknown)
    python -m recipes.calibration prepare --model DIR --data rl_train.parquet --out-dir DIR
        [--per-pair 64] [--seed 0] [--n 4] [--gpus N] [--tensor-parallel-size T] [--reward-config YAML] [--dry-run]
        -> stdout: `tensor_parallel_size=T replicas=R`, then the prompt file of each replica

`prepare` samples `--per-pair` prompts of every (data_source, task) of the train split with
`--seed` (recipes/pair_sample.py) into OUT/prompts.parquet (and R round-robin shards when the plan
has R > 1 replicas) and plans vLLM on the node (evaluation/backends/vllm_plan.py; `--gpus`: the
caller's GPUS_PER_NODE, else the GPUs torch sees). The budget goes to stderr: prompts, generations,
caption answers and, given the emitted reward config, judge calls and USD (recipes/run_plan.py
estimates). `--dry-run` writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from evaluation.backends import vllm_plan
from recipes.pair_sample import SampleError, read_pairs, sample_rows, shard_paths, write_sample
from reward_fns.judge.health import judge_used
from reward_fns.registry import caption_task_names

CONFIG_DIR = Path(__file__).resolve().parent / "config"
PROMPTS = "prompts.parquet"


def family(model: str) -> str | None:
    """The medgrpo_model config (recipes/config/medgrpo_model/<name>.yaml) of the model's model_type."""
    try:
        model_type = vllm_plan.load_config(model).get("model_type")
    except Exception:  # not a readable model folder: the launcher's dry run reports it
        return None
    return model_type if isinstance(model_type, str) and (CONFIG_DIR / "medgrpo_model" / f"{model_type}.yaml"
                                                          ).is_file() else None


def budget(counts: Counter[tuple[str, str]], n: int, data: str, reward_config: str | None) -> str:
    """One line: prompts, generations, caption answers and, with the reward config, judge calls and USD."""
    prompts = sum(counts.values())
    captions = sum(v for (_, task), v in counts.items() if task in caption_task_names())
    line = (f"{prompts} prompts ({len(counts)} (data_source, task) pairs) x {n} samples = {prompts * n} generations, "
            f"{captions * n} of them captions")
    if not reward_config or not Path(reward_config).is_file():
        return line
    from recipes.run_plan import judge_load
    from reward_fns.calibrate import _load_config

    settings = _load_config(reward_config)
    if not judge_used(settings):
        return line + " (judge off)"
    load = judge_load(data, settings)
    calls = n * sum(v * load.calls_per_task.get(task, 0.0) for (_, task), v in counts.items())
    return line + f"; judge: ~{calls:,.0f} calls, ~${calls * load.usd_per_call:,.2f} (estimates, no cache hits)"


def prepare(args: argparse.Namespace) -> int:
    count, memory = vllm_plan.visible_gpus()
    gpus = count if args.gpus is None else args.gpus
    try:
        plan = vllm_plan.plan(vllm_plan.load_config(args.model), gpus, vllm_plan.weight_bytes(args.model),
                              memory, args.tensor_parallel_size)
    except (OSError, ValueError) as err:
        print(f"error: vLLM plan for {args.model} on {gpus} GPU(s): {err}", file=sys.stderr)
        return 2
    out = Path(args.out_dir) / PROMPTS
    try:
        if args.dry_run:
            pairs, index = read_pairs(args.data)
            counts = Counter(pairs[r] for r in sample_rows(pairs, index, args.seed, per_pair=args.per_pair or None))
        else:
            counts = write_sample(args.data, out, args.seed, per_pair=args.per_pair or None, shards=plan.replicas)
    except (SampleError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(plan.line())
    for path in shard_paths(out, plan.replicas) if plan.replicas > 1 else [out]:
        print(path)
    per_pair = f"{args.per_pair} per (data_source, task)" if args.per_pair else "all"
    print(f"[calibration] vLLM on {gpus} GPU(s): {plan.line()} ({plan.reason})", file=sys.stderr)
    line = budget(counts, args.n, args.data, args.reward_config)
    print(f"[calibration] prompts: {per_pair}, seed {args.seed}: {line}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.calibration", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    fam = sub.add_parser("family", help="print the medgrpo_model of a model folder")
    fam.add_argument("--model", required=True)
    prep = sub.add_parser("prepare", help="sample the prompts and plan vLLM")
    prep.add_argument("--model", required=True)
    prep.add_argument("--data", required=True, help="rl_train.parquet")
    prep.add_argument("--out-dir", required=True)
    prep.add_argument("--per-pair", type=int, default=64, help="prompts per (data_source, task) (0: all)")
    prep.add_argument("--seed", type=int, default=0)
    prep.add_argument("--n", type=int, default=4, help="samples per prompt (for the budget line)")
    prep.add_argument("--gpus", type=int, help="GPUs of the node (default: the ones torch sees)")
    prep.add_argument("--tensor-parallel-size", type=int, help="force the tensor parallel size")
    prep.add_argument("--reward-config", help="medgrpo.reward YAML (for the judge-cost estimate)")
    prep.add_argument("--dry-run", action="store_true", help="plan and count only, write nothing")
    args = p.parse_args(argv)
    if args.command == "family":
        print(family(args.model) or "")
        return 0
    if args.per_pair < 0 or (args.gpus is not None and args.gpus < 0):
        print("error: --per-pair and --gpus must be >= 0", file=sys.stderr)
        return 2
    return prepare(args)


if __name__ == "__main__":
    sys.exit(main())
