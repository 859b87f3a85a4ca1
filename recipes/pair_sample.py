"""Seeded samples of an RL parquet per (data_source, task): the calibration prompts and the validation cap.

    python -m recipes.pair_sample --data rl_val.parquet --out sample.parquet (--per-pair N | --total N)
        [--seed S] [--shards R]

Inside each (data_source, ability) pair the rows are ranked by a seeded hash of their
`extra_info.index` (data_preprocess.splits.index_priority), so the sample does not depend on the
file's row order and a smaller sample is part of a larger one. `--per-pair N` keeps up to N rows of
every pair; `--total N` shares N rows between the pairs by water-filling (every pair the same cap, a
small pair keeps all its rows). The rows keep their file order and every column. `--shards R` also
writes OUT's rows round-robin into R files `<stem>.r<i>.parquet` (one per vLLM replica). Outputs are
written atomically; the summary goes to stderr; a one-line error names the file (exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_preprocess.splits import index_priority, waterfill
from reward_fns.atomic_io import atomic_path

PAIR_COLUMNS = ("data_source", "ability")


class SampleError(ValueError):
    """The input cannot be sampled (the message names the file)."""


def read_pairs(path: str | os.PathLike[str]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """(data_source, ability) per row and the rows' extra_info.index, reading only those columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=[*PAIR_COLUMNS, "extra_info"])
        index = pc.struct_field(table["extra_info"], "index").to_numpy(zero_copy_only=False)
    except (OSError, pa.ArrowException, KeyError) as err:
        raise SampleError(f"{path}: cannot read data_source / ability / extra_info.index: {err}") from None
    if len(index) and (index.dtype.kind not in "iu"):
        raise SampleError(f"{path}: extra_info.index must be an integer on every row")
    pairs = list(zip(table["data_source"].to_pylist(), table["ability"].to_pylist(), strict=True))
    return pairs, index.astype(np.int64)


def sample_rows(pairs: Sequence[tuple[str, str]], index: np.ndarray, seed: int, per_pair: int | None = None,
                total: int | None = None) -> list[int]:
    """Row numbers (ascending) of the sample: `per_pair` rows of each pair, or `total` water-filled."""
    members: dict[tuple[str, str], list[int]] = {}
    for row, pair in enumerate(pairs):
        members.setdefault(pair, []).append(row)
    if total is not None:
        quota = waterfill({pair: len(rows) for pair, rows in members.items()}, total)
    else:
        quota = {pair: len(rows) if per_pair is None else min(len(rows), per_pair) for pair, rows in members.items()}
    chosen: list[int] = []
    for pair, rows in members.items():
        rows_arr = np.asarray(rows, dtype=np.int64)
        ids = index[rows_arr]
        order = np.lexsort((ids, index_priority(ids, seed)))  # seeded rank, ties by index
        chosen.extend(rows_arr[order[: quota[pair]]].tolist())
    return sorted(chosen)


def write_rows(src: str | os.PathLike[str], rows: Sequence[int], out: str | os.PathLike[str]) -> Any:
    """Write rows `rows` of `src` (all columns) to `out` atomically; returns the written table."""
    import pyarrow.parquet as pq

    table = pq.read_table(src).take(np.asarray(rows, dtype=np.int64))
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    return table


def shard_paths(out: str | os.PathLike[str], shards: int) -> list[Path]:
    out = Path(out)
    return [out.with_name(f"{out.stem}.r{i}{out.suffix}") for i in range(shards)]


def write_sample(src: str | os.PathLike[str], out: str | os.PathLike[str], seed: int, per_pair: int | None = None,
                 total: int | None = None, shards: int = 1) -> Counter[tuple[str, str]]:
    """Sample `src` into `out` (and its shards when shards > 1); returns the rows per pair."""
    pairs, index = read_pairs(src)
    rows = sample_rows(pairs, index, seed, per_pair, total)
    if not rows:
        raise SampleError(f"{src}: no rows to sample")
    write_rows(src, rows, out)
    if shards > 1:
        for i, path in enumerate(shard_paths(out, shards)):
            write_rows(src, rows[i::shards], path)
    return Counter(pairs[row] for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.pair_sample", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="RL parquet (data_preprocess.medvidbench output)")
    p.add_argument("--out", required=True, help="parquet to write")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--per-pair", type=int, help="rows per (data_source, task) at most (0: all)")
    size.add_argument("--total", type=int, help="rows in all, water-filled across the pairs (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=1, help="also write OUT round-robin into this many files")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    args = p.parse_args(argv)
    if (args.per_pair or 0) < 0 or (args.total or 0) < 0 or args.shards < 1:
        print("error: --per-pair / --total must be >= 0 and --shards >= 1", file=sys.stderr)
        return 2
    try:
        counts = write_sample(args.data, args.out, args.seed, args.per_pair or None, args.total or None, args.shards)
    except (SampleError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        for (source, task), n in sorted(counts.items()):
            print(f"  {source:14s} {task:4s} {n:6d}", file=sys.stderr)
    shards = f" + {args.shards} shards" if args.shards > 1 else ""
    print(f"[pair-sample] {sum(counts.values())} rows of {len(counts)} (data_source, task) pairs from {args.data} "
          f"(seed {args.seed}) -> {args.out}{shards}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
