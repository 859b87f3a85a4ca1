"""Deterministic splits, pure functions of the records and a seed: train/val by video (`VideoSplit`)
and the task-balanced Standard subset of the Large set (`standard_subset`, see docs/data.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from functools import cache

import numpy as np

STANDARD_SIZE = 51_505


def stable_hash(seed: int, text: str) -> int:
    """64-bit seeded hash, identical on every machine and Python run."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, key=str(seed).encode()).digest(), "big")


def index_priority(indices: np.ndarray, seed: int) -> np.ndarray:
    """Seeded pseudo-random uint64 per record index (splitmix64), vectorized."""
    with np.errstate(over="ignore"):
        z = indices.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % (1 << 64))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class VideoSplit:
    """Train/val by video: `code(video_id)` is 1 (val) when the video's seeded hash falls below `fraction`
    of the range, else 0 (no pass over the data; a video is on one side, and stays there as records come)."""

    def __init__(self, fraction: float, seed: int):
        if not 0 <= fraction < 1:
            raise ValueError(f"val fraction must be in [0, 1), got {fraction}")
        threshold = int(fraction * 2**64)
        self.code = cache(lambda video_id: int(stable_hash(seed, video_id) < threshold))


def waterfill(counts: Mapping[Hashable, int], budget: int) -> dict[Hashable, int]:
    """Share `budget` under one common cap: each key gets min(count, cap) under the highest cap that fits;
    what is left goes one by one to the keys still below their count, in key order."""
    budget = max(0, min(budget, sum(counts.values())))
    cap, top = 0, max(counts.values(), default=0)
    while cap < top:  # binary search for the highest cap whose shares fit in the budget
        mid = (cap + top + 1) // 2
        cap, top = (mid, top) if sum(min(n, mid) for n in counts.values()) <= budget else (cap, mid - 1)
    alloc = {key: max(0, min(n, cap)) for key, n in counts.items()}
    for key in sorted((k for k, n in counts.items() if n > cap), key=str)[:budget - sum(alloc.values())]:
        alloc[key] += 1
    return alloc


def standard_subset(tasks: Sequence[str], sources: Sequence[str], size: int, seed: int
                    ) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Boolean mask of the selected records and the count table {task: {source: n}}."""
    cells: dict[str, dict[str, list[int]]] = {}  # task -> source -> record indices
    for i, (task, source) in enumerate(zip(tasks, sources, strict=True)):
        if task:
            cells.setdefault(task, {}).setdefault(source, []).append(i)
    task_share = waterfill({task: sum(map(len, by_source.values())) for task, by_source in cells.items()}, size)
    mask, table = np.zeros(len(tasks), dtype=bool), {}
    for task in sorted(cells):
        source_share = waterfill({source: len(m) for source, m in cells[task].items()}, task_share[task])
        table[task] = {s: int(k) for s, k in sorted(source_share.items())}
        for source, k in source_share.items():
            members = np.asarray(cells[task][source], dtype=np.int64)
            mask[members[np.lexsort((members, index_priority(members, seed)))[:k]]] = True
    return mask, table
