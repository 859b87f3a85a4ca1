"""Atomic outputs: parquet and JSON are written to a hidden temp file and renamed into place.

An interrupted run leaves the previous outputs (or nothing), never a half-written parquet.
`WriterSet` writes row groups on a background thread (pyarrow releases the GIL while encoding and
compressing) so conversion and writing overlap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    path = Path(path)
    tmp = _tmp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


class AtomicParquetWriter:
    """One parquet file, written row group by row group into a temp file, renamed on `commit`."""

    def __init__(self, path: str | os.PathLike[str], schema: pa.Schema):
        self.path, self.schema = Path(path), schema
        self.tmp = _tmp_path(self.path)
        self.rows = 0
        self._writer = pq.ParquetWriter(self.tmp, schema, compression=COMPRESSION, use_dictionary=False,
                                        write_statistics=False)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table if table.schema == self.schema else table.cast(self.schema))
            self.rows += table.num_rows

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class WriterSet:
    """Named atomic writers fed from a single background thread (at most `depth` batches in flight)."""

    def __init__(self, paths: Mapping[str, str | os.PathLike[str]], schemas: Mapping[str, pa.Schema], depth: int = 2):
        self.writers = {name: AtomicParquetWriter(path, schemas[name]) for name, path in paths.items()}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="parquet")
        self._pending: list[Future[None]] = []
        self._depth = depth

    def submit(self, tables: Mapping[str, pa.Table]) -> None:
        self._pending.append(self._pool.submit(self._write_all, dict(tables)))
        while len(self._pending) > self._depth:
            self._pending.pop(0).result()

    def _write_all(self, tables: Mapping[str, pa.Table]) -> None:
        for name, table in tables.items():
            self.writers[name].write(table)

    def commit(self) -> dict[str, int]:
        for future in self._pending:
            future.result()
        self._pool.shutdown()
        for writer in self.writers.values():
            writer.commit()
        return {name: w.rows for name, w in self.writers.items()}

    def abort(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for writer in self.writers.values():
            writer.abort()
