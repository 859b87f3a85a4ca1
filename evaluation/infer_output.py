"""Resumable inference output: an append-only JSON Lines log keyed by the record index.

Each finished batch is appended, flushed and fsynced, so a crash loses at most the batch in flight.
On restart the log is read back; a torn last line (a crash mid-write) is cut off, and rows are checked
against the ground truth (same `id` and `qa_type` at that index) so a log is never mixed with the
predictions of another file. The index is the key: MedVidBench ids are not unique.

Two formats share the log: `predictions` (one `prediction` row per index, for scoring) and `rollouts`
(`response` rows, several per index, for `reward_fns.calibrate`); an index is done when it has its
N rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reward_fns.atomic_io import write_json_atomic

ROW_KEYS = ("index", "id", "qa_type", "data_source", "prediction")
FORMATS = {"predictions": "prediction", "rollouts": "response"}  # format -> the row's text key


class OutputError(ValueError):
    """The output file cannot be resumed; the message names the file and the line or index."""


def progress_path(out: str | os.PathLike[str]) -> Path:
    """Where rows are appended: `out` itself for .jsonl, else `out` + `.progress.jsonl`."""
    out = Path(out)
    return out if out.suffix == ".jsonl" else out.with_name(out.name + ".progress.jsonl")


class PredictionLog:
    """Append-only JSONL of output rows (`key`: "prediction" or "response"), several allowed per index."""

    def __init__(self, path: str | os.PathLike[str], key: str = "prediction"):
        self.path, self.key = Path(path), key
        self.rows: dict[int, list[dict[str, Any]]] = {}

    def count(self, index: int) -> int:
        """Rows written for `index`."""
        return len(self.rows.get(index, ()))

    def load(self) -> dict[int, list[dict[str, Any]]]:
        """Rows already written, by index, in file order (a torn last line is removed from the file)."""
        self.rows = {}
        if not self.path.exists():
            return self.rows
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        if lines and lines[-1].strip():  # no newline at the end: a crash cut the last row short
            try:
                json.loads(lines[-1])
            except ValueError:
                with self.path.open("r+b") as fh:
                    fh.truncate(len(data) - len(lines[-1]))
                lines = lines[:-1]
            else:  # a complete row without its newline: add it so the next append starts a new line
                with self.path.open("ab") as fh:
                    fh.write(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise OutputError(f"{self.path}:{number}: not valid JSON ({exc}); fix or remove the line") from None
            if not isinstance(row, Mapping) or not isinstance(row.get("index"), int) or self.key not in row:
                raise OutputError(f"{self.path}:{number}: not a {self.key} row (needs int 'index' and "
                                  f"'{self.key}'): is --out of another --format?")
            self.rows.setdefault(row["index"], []).append(dict(row))
        return self.rows

    def check_against(self, expected: Mapping[int, tuple[str, str]]) -> None:
        """Every row whose index is in `expected` must carry that (id, qa_type)."""
        for index, rows in sorted(self.rows.items()):
            want = expected.get(index)
            row = next((r for r in rows if (r.get("id"), r.get("qa_type")) != want), None)
            if want is not None and row is not None:
                raise OutputError(
                    f"{self.path}: row for record {index} has id {row.get('id')!r} / qa_type {row.get('qa_type')!r} "
                    f"but the ground truth has {want[0]!r} / {want[1]!r}: is --out from another --data file?")

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows and make them durable (flush + fsync)."""
        rows = [dict(r) for r in rows]
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        for row in rows:
            self.rows.setdefault(row["index"], []).append(row)

    def ordered(self) -> list[dict[str, Any]]:
        """One row per index (the last written), sorted by index."""
        return [self.rows[i][-1] for i in sorted(self.rows)]


def write_final_json(out: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """The ordered JSON list (atomically)."""
    write_json_atomic(out, [{k: r.get(k) for k in ROW_KEYS} for r in rows])
