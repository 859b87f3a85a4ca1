"""Per-step judge cost from verl's rollout dumps.

    python -m reward_fns.judge.cost_report ROLLOUT_DATA_DIR [--json]

verl 0.9.1 logs a training step's reward extra info only in the rollout dumps
(`trainer.rollout_data_dir=DIR` writes `DIR/<step>.jsonl`, one line per sample with every
`reward_extra_info` key); its console/W&B step metrics do not aggregate them (validation metrics
do: `val-aux/<source>/judge_cost_usd/mean@1`, ...). This report sums the `judge_*` keys the MedGRPO
reward manager writes, per step: judge requests, HTTP calls, cache hits, failures, injections,
tokens and estimated cost.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from reward_fns.jsonl import json_lines
from reward_fns.judge.tally import JUDGE_COUNTERS

KEYS = tuple(f"judge_{name}" for name in JUDGE_COUNTERS)


def step_totals(path: Path) -> dict[str, float]:
    """Sums of the judge keys over one dump file; a line without them counts as zero."""
    totals = dict.fromkeys(("samples", *KEYS), 0.0)
    with path.open(encoding="utf-8") as handle:
        for _, row in json_lines(handle, path, "expected a verl rollout-dump line", ValueError):
            totals["samples"] += 1
            for key in KEYS:
                value = row.get(key, 0) if isinstance(row, dict) else 0
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals[key] += value
    return totals


def report(folder: Path) -> dict[int, dict[str, float]]:
    """step -> totals for every `<step>.jsonl` in `folder` (other files are ignored)."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (pass trainer.rollout_data_dir)")
    steps = {int(p.stem): p for p in folder.glob("*.jsonl") if p.stem.isdigit()}
    return {step: step_totals(steps[step]) for step in sorted(steps)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reward_fns.judge.cost_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="verl's trainer.rollout_data_dir")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        rows = report(args.folder)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({str(k): v for k, v in rows.items()}, indent=1))
        return 0
    print(f"{'step':>6} {'samples':>8} {'requests':>9} {'http':>6} {'hits':>6} {'fail':>5} {'inj':>4} "
          f"{'prompt_tok':>11} {'compl_tok':>10} {'cost_usd':>10}")
    for step, t in rows.items():
        print(f"{step:>6} {t['samples']:>8.0f} {t['judge_requests']:>9.0f} {t['judge_http_calls']:>6.0f} "
              f"{t['judge_cache_hits']:>6.0f} {t['judge_failures']:>5.0f} {t['judge_injections']:>4.0f} "
              f"{t['judge_prompt_tokens']:>11.0f} {t['judge_completion_tokens']:>10.0f} {t['judge_cost_usd']:>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
