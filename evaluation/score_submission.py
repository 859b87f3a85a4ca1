"""CLI: score a leaderboard submission against MedVidBench ground truth.

    python -m evaluation.score_submission --gt GT.json --pred PRED.json --out metrics.json \
        [--judge none|similarity|openai] [--join position|id] [--strict] [--lenient] \
        [--judge-protocol leaderboard|medgrpo] [--leaderboard-dir DIR]
"""

from __future__ import annotations

import argparse
import sys

from evaluation.benchmark_metrics import ScoreReport, build_references, score
from evaluation.caption_columns import JUDGE_PROTOCOLS, JudgeNotConfigured, make_backend
from evaluation.fidelity import DEVIATIONS
from evaluation.file_io import check_output_path, load_json_list
from evaluation.join import JOINS, JoinError
from evaluation.report import markdown_table, similarity_note
from reward_fns.atomic_io import write_json_atomic
from reward_fns.reference import RecordError
from reward_fns.similarity import SimilarityService


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.score_submission", description=__doc__.split("\n")[0])
    p.add_argument("--gt", required=True, help="MedVidBench JSON list (ground truth)")
    p.add_argument("--pred", required=True, help="submission JSON list [{id, qa_type, prediction}]")
    p.add_argument("--out", help="metrics JSON to write (atomically)")
    p.add_argument("--judge", default="none", choices=["none", "similarity", "openai"],
                   help="caption columns: none (null), similarity (MiniLM cosine, 0-1), openai (LLM judge)")
    p.add_argument("--judge-config", help="YAML/JSON judge settings for --judge openai")
    p.add_argument("--judge-protocol", default="leaderboard", choices=list(JUDGE_PROTOCOLS),
                   help="--judge openai: leaderboard (the public scorer's prompt and aggregation -> *_llm) or "
                        "medgrpo (the project's own judge -> *_medjudge)")
    p.add_argument("--leaderboard-dir", help="local copy of the public leaderboard scorer (its evaluation "
                                             "folder); its judge prompt is read from there, never shipped")
    p.add_argument("--join", default="position", choices=sorted(JOINS),
                   help="position (leaderboard default, id/qa_type checked) or id (id, qa_type, occurrence)")
    p.add_argument("--lenient", action="store_true",
                   help="read predictions that are not strings (number, null, list, object) as empty answers, "
                        "counted per task in counts.non_string, instead of stopping with an error")
    p.add_argument("--strict", action="store_true",
                   help="unparsable predictions count as 0 instead of being left out (CVS, SA, DVC F1)")
    return p


def run(argv: list[str] | None = None, similarity: SimilarityService | None = None) -> ScoreReport:
    """The CLI; `similarity` lets a caller hand in an already loaded similarity service (else a fresh one)."""
    args = _parser().parse_args(argv)
    if args.out:
        check_output_path(args.out)
    gt = load_json_list(args.gt, "ground-truth")
    preds = load_json_list(args.pred, "prediction")
    try:
        refs = build_references(gt, where=args.gt)
        texts = JOINS[args.join](gt, preds, lenient=args.lenient)
        similarity = similarity or SimilarityService()
        captions = make_backend(args.judge, args.judge_config, similarity, args.judge_protocol,
                                args.leaderboard_dir)
        report = score(refs, texts, strict=args.strict, captions=captions, similarity=similarity)
    except (JoinError, RecordError, JudgeNotConfigured) as err:
        raise SystemExit(f"error: {err}") from None
    report.settings = {"gt": args.gt, "pred": args.pred, "judge": args.judge, "join": args.join,
                       "strict": args.strict, "lenient": args.lenient, "deviations": DEVIATIONS,
                       "judge_protocol": args.judge_protocol if args.judge == "openai" else None,
                       "judge_settings": captions.settings() if hasattr(captions, "settings") else None}
    if args.out:
        write_json_atomic(args.out, report.to_json())
    print(markdown_table({"submission": report.columns}))
    note = similarity_note(report.columns)
    if note:
        print(note)
    own = {k: v for k, v in report.columns.items() if k.endswith("_medjudge")}
    if own:
        print("Caption judge, project protocol (1-5; not the leaderboard's protocol): " + ", ".join(
            f"{k}={'-' if v is None else f'{v:.3f}'}" for k, v in own.items()))
    return report


def main() -> None:
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
