"""CLI: turn our inference output into the leaderboard's upload format.

    python -m evaluation.submission --pred predictions.json --out submission.json [--gt GT.json]

Inference output: a JSON list (or JSONL) of objects with `id`, `qa_type`, `prediction` and, when
written by `evaluation.infer`, the record `index`; rows are put in index order. The upload format is
`[{"id", "qa_type", "prediction"}]` in ground-truth order (the leaderboard joins by position).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.file_io import check_output_path, load_json_list, parse_json, read_text
from evaluation.join import JoinError, join_by_position, json_type
from reward_fns.atomic_io import write_json_atomic

FIELDS = ("id", "qa_type", "prediction")


def read_predictions(path: str | Path) -> list[Any]:
    """A JSON list, or JSON Lines when the file ends in .jsonl."""
    path = Path(path)
    if path.suffix == ".jsonl":
        text = read_text(path, "prediction")
        return [parse_json(line, f"{path}:{n}") for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return load_json_list(path, "prediction")


def _check_row(row: object, i: int) -> None:
    """Required fields, a string prediction and an integer index (when present), naming the row."""
    missing = [f for f in FIELDS if not isinstance(row, Mapping) or f not in row]
    if missing:
        raise ValueError(f"prediction row {i}: missing field(s) {', '.join(missing)}")
    assert isinstance(row, Mapping)
    if not isinstance(row["prediction"], str):
        raise ValueError(f"prediction row {i}: field 'prediction' is a {json_type(row['prediction'])}, not a string")
    index = row.get("index")
    if "index" in row and (not isinstance(index, int) or isinstance(index, bool)):
        raise ValueError(f"prediction row {i}: field 'index' must be an integer, got {json_type(index)} {index!r}")


def to_submission(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Validated upload rows, ordered by `index` when every row has one."""
    for i, row in enumerate(rows):
        _check_row(row, i)
    if all("index" in row for row in rows):
        indices = [row["index"] for row in rows]
        if sorted(indices) != list(range(len(rows))):
            raise ValueError("prediction 'index' values must be 0..N-1, each exactly once")
        rows = sorted(rows, key=lambda row: row["index"])
    return [{"id": str(r["id"]), "qa_type": str(r["qa_type"]), "prediction": r["prediction"]} for r in rows]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m evaluation.submission", description=__doc__.split("\n")[0])
    p.add_argument("--pred", required=True, help="inference output (JSON list or .jsonl)")
    p.add_argument("--out", required=True, help="submission JSON to write")
    p.add_argument("--gt", help="optional ground truth to check the position join against")
    args = p.parse_args(argv)
    check_output_path(args.out)
    try:
        submission = to_submission(read_predictions(args.pred))
        if args.gt:
            join_by_position(load_json_list(args.gt, "ground-truth"), submission)
    except (ValueError, JoinError) as err:
        raise SystemExit(f"error: {err}") from None
    write_json_atomic(args.out, submission)
    print(f"wrote {len(submission)} predictions to {args.out}")


if __name__ == "__main__":
    main()
