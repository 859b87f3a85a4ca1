"""Splits: video-level train/val, water-filling, the Standard subset."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess.splits import STANDARD_SIZE, VideoSplit, index_priority, stable_hash, standard_subset, waterfill


def test_video_split_is_seeded_stable_and_near_the_fraction() -> None:
    videos = [f"video{i}" for i in range(20_000)]
    split = VideoSplit(0.1, seed=3)
    codes = [split.code(v) for v in videos]
    assert codes == [VideoSplit(0.1, seed=3).code(v) for v in videos]
    assert abs(sum(codes) / len(codes) - 0.1) < 0.01
    assert codes != [VideoSplit(0.1, seed=4).code(v) for v in videos]
    assert not any(VideoSplit(0.0, 0).code(v) for v in videos)
    assert stable_hash(0, "x") == stable_hash(0, "x") != stable_hash(1, "x")


@settings(max_examples=200, deadline=None)
@given(counts=st.dictionaries(st.text(max_size=3), st.integers(0, 500), max_size=8), budget=st.integers(0, 3000))
def test_waterfill(counts: dict[str, int], budget: int) -> None:
    alloc = waterfill(counts, budget)
    assert all(0 <= alloc[k] <= counts[k] for k in counts)
    assert sum(alloc.values()) == min(budget, sum(counts.values()))
    capped = [k for k in counts if alloc[k] < counts[k]]  # capped keys share one cap (+-1) ...
    if capped:
        cap = max(alloc[k] for k in capped)
        assert cap - min(alloc[k] for k in capped) <= 1
        assert all(counts[k] <= cap + 1 for k in counts if k not in capped)  # ... the others are not above it


def test_standard_subset_is_task_balanced_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    tasks = rng.choice(["TAG", "DVC", "STG", "NAP", "CVS", "VS", "RC", "SA"], size=200_000,
                       p=[0.3, 0.25, 0.12, 0.1, 0.1, 0.08, 0.03, 0.02]).tolist()
    sources = rng.choice(["AVOS", "CoPESD", "NurViD"], size=len(tasks)).tolist()
    mask, table = standard_subset(tasks, sources, STANDARD_SIZE, seed=0)
    assert int(mask.sum()) == STANDARD_SIZE == sum(sum(row.values()) for row in table.values())
    per_task = {t: sum(row.values()) for t, row in table.items()}
    capped = [n for t, n in per_task.items() if n < tasks.count(t)]
    assert max(capped) - min(capped) <= 1  # every capped task gets the same share
    again, _ = standard_subset(tasks, sources, STANDARD_SIZE, seed=0)
    assert np.array_equal(mask, again)
    assert not np.array_equal(mask, standard_subset(tasks, sources, STANDARD_SIZE, seed=1)[0])


def test_index_priority_is_a_permutation_key() -> None:
    keys = index_priority(np.arange(10_000), seed=5)
    assert len(set(keys.tolist())) == 10_000
    assert np.array_equal(keys, index_priority(np.arange(10_000), seed=5))
