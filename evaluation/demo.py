"""`bash run.sh demo`: the pipeline end to end on bundled / generated data, CPU only."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent / "examples"


@dataclass
class DemoContext:
    out: Path
    no_judge: bool


Step = Callable[[DemoContext], None]
STEPS: list[tuple[str, Step]] = []


def step(title: str) -> Callable[[Step], Step]:
    def wrap(fn: Step) -> Step:
        STEPS.append((title, fn))
        return fn
    return wrap


@step("score the bundled example submission (rule metrics, leaderboard aggregation)")
def score_example(ctx: DemoContext) -> None:
    from evaluation import score as score_cli

    score_cli.run(["--gt", str(EXAMPLES / "gt_small.json"), "--pred", str(EXAMPLES / "pred_small.json"),
                   "--out", str(ctx.out / "example_metrics.json")])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bash run.sh demo", description=__doc__)
    p.add_argument("--out", default="demo_out", help="folder for everything the demo writes")
    p.add_argument("--no-judge", action="store_true", help="caption rewards from similarity only")
    args = p.parse_args(argv)
    ctx = DemoContext(out=Path(args.out), no_judge=args.no_judge)
    ctx.out.mkdir(parents=True, exist_ok=True)
    for number, (title, fn) in enumerate(STEPS, start=1):
        print(f"\n== [{number}/{len(STEPS)}] {title}", flush=True)
        start = time.perf_counter()
        fn(ctx)
        print(f"   done in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"\nDemo finished; outputs in {ctx.out}/")


if __name__ == "__main__":
    main()
