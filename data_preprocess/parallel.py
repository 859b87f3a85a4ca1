"""Feed batches to `BatchConverter`s in forked worker processes (or in-process), results in input order.

This process reads the input, cuts it into batches at record boundaries (`RecordStream.scan`, which
also hashes it) and writes; workers read their byte range themselves and hand the tables back as
Arrow IPC files in a spill folder (tmpfs when available), memory-mapped here: the frame lists are
never pickled. At most `2 * workers` batches are in flight, which bounds memory. A batch that does
not hold the record count its separators promised raises `BadCut`; the caller then starts over in
safe mode, where every cut is checked by decoding it here first.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from data_preprocess.batch import BatchConverter, BatchResult
from data_preprocess.jsonstream import RecordStream, Span, read_span
from data_preprocess.plan import INDEX_DECODER, Plan

if TYPE_CHECKING:
    from data_preprocess.convert import ConvertConfig

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_WORKER: dict[str, Any] = {}


class BadCut(RuntimeError):
    """A batch cut at a learned separator did not hold whole records: redo the run in safe mode."""


def tune_malloc() -> None:
    """Keep freed batch buffers in the heap instead of returning them to the OS after every batch
    (glibc `mallopt`; inherited by forked workers). Page-fault churn otherwise costs ~20% of the run."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31)
    except (OSError, AttributeError):
        pass


def _init_worker(cfg: ConvertConfig, plan: Plan, spill: str) -> None:
    _WORKER.update(batcher=BatchConverter(cfg, plan), input=open(cfg.input, "rb"), spill=spill)  # noqa: SIM115


def _work(span: Span, start: int) -> tuple[BatchResult, dict[str, str]]:
    result = _WORKER["batcher"].convert(read_span(_WORKER["input"], span), start, expected=span.records)
    paths = {}
    for name, table in result.tables.items():
        path = os.path.join(_WORKER["spill"], f"{span.offset}.{name}.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        paths[name] = path
    result.tables = {}
    return result, paths


def _load(result: BatchResult, paths: dict[str, str]) -> BatchResult:
    for name, path in paths.items():
        result.tables[name] = pa.ipc.open_file(pa.memory_map(path)).read_all()
        os.unlink(path)  # the mapping stays valid until the table is released
    return result


class BatchMapper:
    """`with BatchMapper(cfg, plan, stream, safe) as batches: for result in batches: ...`

    Spans come from `stream.spans` when pass 1 already ran (Standard split), else from scanning now.
    """

    def __init__(self, cfg: ConvertConfig, plan: Plan, stream: RecordStream, safe: bool = False):
        self.cfg, self.plan, self.stream, self.safe = cfg, plan, stream, safe
        self.workers = cfg.n_workers()
        self._pool: Any = None
        self._spill = ""

    def __enter__(self) -> BatchMapper:
        if self.workers > 1:
            shm = Path("/dev/shm")
            self._spill = tempfile.mkdtemp(prefix="medgrpo-spill-", dir=shm if shm.is_dir() else self.cfg.out_dir)
            self._pool = multiprocessing.get_context("fork").Pool(
                self.workers, initializer=_init_worker, initargs=(self.cfg, self.plan, self._spill))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            shutil.rmtree(self._spill, ignore_errors=True)

    def _spans(self) -> Iterator[Span]:
        """Proven spans from pass 1 (Standard split), else spans found now (unproven unless safe)."""
        if self.plan.selected is not None:
            return iter(self.stream.spans)
        if self.safe:
            return (self.stream.spans[-1] for _ in self.stream.scan(INDEX_DECODER))
        return self.stream.fast_spans()

    def __iter__(self) -> Iterator[BatchResult]:
        """Results in input order, renumbered; `self.records` counts the records seen."""
        self.records = 0
        if self._pool is None:
            self.stream.hash_async()
            batcher = BatchConverter(self.cfg, self.plan)
            try:
                with open(self.cfg.input, "rb") as fh:
                    for span in self._spans():
                        start = self.records
                        yield self._checked(batcher.convert(read_span(fh, span), start, span.records), start)
            finally:
                batcher.close()
            return
        self.stream.hash_async()  # after the fork
        pending: deque[tuple[int, Any]] = deque()
        known = 0  # first record number of the next span, while every span so far had a known count
        for span in self._spans():
            start = known if known >= 0 and span.records >= 0 else 0
            known = known + span.records if known >= 0 and span.records >= 0 else -1
            pending.append((start, self._pool.apply_async(_work, (span, start))))
            while len(pending) >= 2 * self.workers:
                start, future = pending.popleft()
                yield self._checked(_load(*future.get()), start)
        while pending:
            start, future = pending.popleft()
            yield self._checked(_load(*future.get()), start)

    def _checked(self, result: BatchResult, start: int) -> BatchResult:
        """Raise BadCut for a span that was not whole records; renumber relative record numbers."""
        if not result.ok:
            raise BadCut("a batch cut at a record separator did not hold whole records")
        if start != self.records:
            result.shift(self.records - start)
        self.records += result.count
        return result
