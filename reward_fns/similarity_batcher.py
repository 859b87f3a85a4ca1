"""Async micro-batching of cosine similarities: many concurrent awaits, one `Embedder.encode` call.

Calls made within `max_wait_ms` of the first pending one (or until `max_batch` pairs are waiting)
are encoded together in a worker thread, so the event loop keeps running. Repeated texts in a
batch (a GRPO group shares its reference) are encoded once. The batcher can be created outside a
loop and used from several event loops in turn: pending work is kept per loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class TextEncoder(Protocol):
    """What the batcher needs from an embedder: unit-length rows, one per text."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class _Pending:
    pairs: list[tuple[str, str, asyncio.Future[float]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class SimilarityBatcher:
    """`await cosine(a, b)` with cross-call batching; `encode_calls` counts embedder calls."""

    def __init__(self, embedder: TextEncoder, max_batch: int = 256, max_wait_ms: float = 5.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait_ms >= 0, got {max_batch}, {max_wait_ms}")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.encode_calls = 0
        self.pairs_scored = 0
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs until each batch finishes
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = (
            weakref.WeakKeyDictionary())

    async def cosine(self, left: str, right: str) -> float:
        """Cosine similarity of two texts, batched with concurrent calls on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        with self._lock:
            pending = self._pending.setdefault(loop, _Pending())
        pending.pairs.append((left, right, future))
        if len(pending.pairs) >= self.max_batch:
            self._flush(loop, pending)
        elif pending.timer is None:
            pending.timer = loop.call_later(self.max_wait_s, self._flush, loop, pending)
        return await future

    async def cosines(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Several pairs at once (batched with everything else pending)."""
        return list(await asyncio.gather(*(self.cosine(a, b) for a, b in pairs)))

    def _flush(self, loop: asyncio.AbstractEventLoop, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        batch, pending.pairs = pending.pairs, []
        if batch:
            task = loop.create_task(self._run(loop, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, loop: asyncio.AbstractEventLoop,
                   batch: list[tuple[str, str, asyncio.Future[float]]]) -> None:
        lefts = [left for left, _, _ in batch]
        rights = [right for _, right, _ in batch]
        try:
            values = await loop.run_in_executor(None, self._compute, lefts, rights)
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value)

    def _compute(self, lefts: list[str], rights: list[str]) -> list[float]:
        """Encode the unique texts once, then take row-wise dot products (rows are unit length)."""
        unique = list(dict.fromkeys(lefts + rights))
        index = {text: i for i, text in enumerate(unique)}
        rows = np.asarray(self.embedder.encode(unique), dtype=np.float32)
        with self._lock:
            self.encode_calls += 1
            self.pairs_scored += len(lefts)
        left_rows = rows[[index[t] for t in lefts]]
        right_rows = rows[[index[t] for t in rights]]
        return [float(v) for v in np.sum(left_rows * right_rows, axis=1)]
