"""Async micro-batching of cosine similarities: many concurrent awaits, one `Embedder.encode` call.

Calls made within `max_wait_ms` of the first pending one (or until `max_batch` pairs are waiting)
are encoded together in a worker thread, so the event loop keeps running. Repeated texts in a
batch (a GRPO group shares its reference) are encoded once. The batcher can be created outside a
loop and used from several event loops in turn: pending work is kept per loop. Embeddings are kept
in an LRU cache (`cache_size` texts), so a pair whose texts were seen before costs no encoding at
all (resumed runs, repeated references, repeated answers within a GRPO group).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections import OrderedDict
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

    def __init__(self, embedder: TextEncoder, max_batch: int = 256, max_wait_ms: float = 5.0,
                 cache_size: int = 20_000):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait_ms >= 0, got {max_batch}, {max_wait_ms}")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.encode_calls = 0
        self.pairs_scored = 0
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        # one encoding at a time on its own thread: parallel encodes only fight over the cores (torch is
        # already multi-threaded), and quick work on the loop's default executor never queues behind them
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="similarity")
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs until each batch finishes
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = (
            weakref.WeakKeyDictionary())

    async def cosine(self, left: str, right: str) -> float:
        """Cosine similarity of two texts, batched with concurrent calls on this loop."""
        cached = self._cached_cosine(left, right)
        if cached is not None:
            return cached
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
            values = await loop.run_in_executor(self._executor, self._compute, lefts, rights)
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value)

    def _cached_cosine(self, left: str, right: str) -> float | None:
        with self._lock:
            a, b = self._vectors.get(left), self._vectors.get(right)
            if a is None or b is None:
                return None
            self._vectors.move_to_end(left)
            self._vectors.move_to_end(right)
            self.pairs_scored += 1
        return float(np.dot(a, b))

    def _compute(self, lefts: list[str], rights: list[str]) -> list[float]:
        """Encode the unique uncached texts once, then take row-wise dot products (unit rows)."""
        with self._lock:
            vectors = {t: self._vectors[t] for t in dict.fromkeys(lefts + rights) if t in self._vectors}
        missing = [t for t in dict.fromkeys(lefts + rights) if t not in vectors]
        if missing:
            rows = np.asarray(self.embedder.encode(missing), dtype=np.float32)
            vectors.update(zip(missing, rows, strict=True))
        with self._lock:
            self.encode_calls += int(bool(missing))
            self.pairs_scored += len(lefts)
            for text in missing:
                self._vectors[text] = vectors[text]
            while len(self._vectors) > self.cache_size:
                self._vectors.popitem(last=False)
        return [float(np.dot(vectors[a], vectors[b])) for a, b in zip(lefts, rights, strict=True)]
