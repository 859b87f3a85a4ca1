"""Batched, memoised nearest-class snapping for NAP (one encode call for a whole file)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from reward_fns.similarity import Embedder


class BatchedSnapper:
    """Snaps texts to the most similar class; `prefetch` embeds many texts in one call."""

    def __init__(self, embedder: Embedder):
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def prefetch(self, texts: Iterable[str]) -> None:
        todo = sorted({t for t in texts if t not in self._vectors})
        for text, row in zip(todo, self._embedder.encode(todo), strict=True):
            self._vectors[text] = row

    def __call__(self, text: str, classes: Sequence[str]) -> str:
        self.prefetch([text, *classes])
        class_matrix = np.stack([self._vectors[c] for c in classes])
        return classes[int(np.argmax(class_matrix @ self._vectors[text]))]
