"""Deterministic splits, pure functions of the records and a seed: train/val by video (`VideoSplit`)
and the task-balanced Standard subset of the Large set (`standard_subset`, see docs/data.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence

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
    """Train/val by video: a video is in val when its seeded hash falls below `fraction` of the range
    (no pass over the data; a video never on both sides, and on the same side when records are added)."""

    def __init__(self, fraction: float, seed: int):
        if not 0 <= fraction < 1:
            raise ValueError(f"val fraction must be in [0, 1), got {fraction}")
        self.threshold, self.seed = int(fraction * 2**64), seed
        self._cache: dict[str, int] = {}

    def code(self, video_id: str) -> int:
        """0 (train) or 1 (val)."""
        code = self._cache.get(video_id)
        if code is None:
            code = self._cache[video_id] = int(stable_hash(self.seed, video_id) < self.threshold)
        return code


def waterfill(counts: Mapping[Hashable, int], budget: int) -> dict[Hashable, int]:
    """Share `budget` under one common cap: min(count, cap); leftovers go one by one in key order."""
    alloc = dict.fromkeys(counts, 0)
    remaining = min(budget, sum(counts.values()))
    open_keys = sorted((k for k in counts if counts[k] > 0), key=lambda k: (counts[k], str(k)))
    while open_keys and remaining > 0:
        cap = remaining // len(open_keys)
        if cap == 0:
            for key in sorted(open_keys, key=str)[:remaining]:
                alloc[key] += 1
            break
        still_open = []
        for key in open_keys:
            give = min(cap, counts[key] - alloc[key])
            alloc[key] += give
            remaining -= give
            if alloc[key] < counts[key]:
                still_open.append(key)
        open_keys = still_open
    return alloc


def standard_subset(tasks: Sequence[str], sources: Sequence[str], size: int, seed: int
                    ) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Boolean mask of the selected records and the count table {task: {source: n}}."""
    n = len(tasks)
    cells: dict[tuple[str, str], list[int]] = {}
    for i, (task, source) in enumerate(zip(tasks, sources, strict=True)):
        if task:
            cells.setdefault((task, source), []).append(i)
    per_task: dict[str, dict[str, int]] = {}
    for (task, source), members in cells.items():
        per_task.setdefault(task, {})[source] = len(members)
    task_share = waterfill({t: sum(c.values()) for t, c in per_task.items()}, size)
    mask = np.zeros(n, dtype=bool)
    table: dict[str, dict[str, int]] = {}
    for task in sorted(per_task):
        source_share = waterfill(per_task[task], task_share[task])
        table[task] = {s: int(k) for s, k in sorted(source_share.items())}
        for source, k in source_share.items():
            members = np.asarray(cells[(task, source)], dtype=np.int64)
            order = np.lexsort((members, index_priority(members, seed)))
            mask[members[order[:k]]] = True
    return mask, table
