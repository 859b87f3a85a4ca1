"""Export caption pairs for `evaluation.judge_agree` (its `export` sub-command).

    python -m evaluation.judge_agree export --gt GT.json --pred SUBMISSION.json --out pairs.jsonl
    python -m evaluation.judge_agree export --data rl_train.parquet --rollouts rollouts.jsonl --out pairs.jsonl
        [--limit 500] [--seed 0]

The pairs are exactly what the judge sees in scoring and training: each task's `caption_pairs`
(VS / RC: the whole answer against the reference; DVC: IoU-matched events), de-duplicated, in input
order, or a seeded random sample of `--limit` of them.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable, Sequence

from reward_fns.atomic_io import write_text_atomic
from reward_fns.reference import Reference
from reward_fns.registry import task_for_qa_type


def caption_pairs(items: Iterable[tuple[Reference, str]]) -> list[dict[str, str]]:
    """Distinct {task, reference, prediction} of every answer's judged caption pairs."""
    seen: dict[tuple[str, str, str], None] = {}
    for ref, answer in items:
        task = task_for_qa_type(ref.qa_type)
        parsed = task.parse(answer)
        if not parsed.ok:
            continue
        for pair in task.caption_pairs(parsed, ref):
            seen.setdefault((task.name, pair.reference, pair.prediction), None)
    return [{"task": t, "reference": r, "prediction": p} for t, r, p in seen]


def _from_submission(gt_path: str, pred_path: str) -> list[tuple[Reference, str]]:
    from evaluation.benchmark_metrics import build_references
    from evaluation.file_io import load_json_list
    from evaluation.join import JOINS

    gt = load_json_list(gt_path, "ground-truth")
    refs = build_references(gt, where=gt_path)
    return list(zip(refs, JOINS["position"](gt, load_json_list(pred_path, "prediction")), strict=True))


def _from_rollouts(data: str, rollouts: str) -> list[tuple[Reference, str]]:
    from reward_fns.calibrate import load_references, load_rollouts

    refs = load_references(data)
    return [(refs[index], response) for index, response in load_rollouts(rollouts, refs)]


def main(argv: Sequence[str] | None = None) -> list[dict[str, str]]:
    p = argparse.ArgumentParser(prog="python -m evaluation.judge_agree export", description=__doc__.split("\n")[0])
    p.add_argument("--gt", help="MedVidBench JSON (with --pred: a scored submission)")
    p.add_argument("--pred", help="submission JSON [{id, qa_type, prediction}], joined by position")
    p.add_argument("--data", help="RL parquet (with --rollouts: calibration rollouts)")
    p.add_argument("--rollouts", help="rollouts JSONL {index, response}")
    p.add_argument("--out", required=True, help="pairs JSONL to write (atomically)")
    p.add_argument("--limit", type=int, help="keep a seeded random sample of this many pairs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if bool(args.gt and args.pred) == bool(args.data and args.rollouts):
        p.error("give either --gt and --pred, or --data and --rollouts")
    from evaluation.join import JoinError
    from reward_fns.calibrate import CalibrationError
    from reward_fns.reference import RecordError

    try:
        items = _from_submission(args.gt, args.pred) if args.gt else _from_rollouts(args.data, args.rollouts)
    except (JoinError, RecordError, CalibrationError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    pairs = caption_pairs(items)
    if args.limit is not None and args.limit < len(pairs):
        keep = sorted(random.Random(args.seed).sample(range(len(pairs)), args.limit))
        pairs = [pairs[i] for i in keep]
    write_text_atomic(args.out, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in pairs))
    print(f"{len(pairs)} caption pairs -> {args.out}")
    return pairs
