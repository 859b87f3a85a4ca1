"""Which records a build keeps: test/val exclusion by video, and the Standard (capped) split."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from data_preprocess.build.canonical import AnnotationError, Video, read_json

T = TypeVar("T")
CHOLEC80_FAMILY = frozenset({"CholecT50", "CholecTrack20", "Cholec80-CVS"})


def video_key(source: str, video_id: str) -> str:
    """A video's identity across sources: the Cholec80-based sources share 'cholec80:<number>'
    (VID01, vid01, video01 -> cholec80:1); other ids compare case-insensitively within the source."""
    if source in CHOLEC80_FAMILY:
        digits = re.findall(r"\d+", video_id)
        if digits:
            return f"cholec80:{int(digits[0])}"
    return f"{source}:{video_id.strip().lower()}"


def load_test_keys(paths: Iterable[str | Path]) -> set[str]:
    """Video keys of every record of MedVidBench test/val JSON files."""
    keys: set[str] = set()
    for path in paths:
        data = read_json(Path(path))
        if not isinstance(data, list):
            raise AnnotationError(str(path), "-", "<file>", "must be a JSON list of MedVidBench records")
        for i, rec in enumerate(data):
            meta = rec.get("metadata") if isinstance(rec, dict) else None
            if not isinstance(meta, dict) or meta.get("video_id") in (None, "") or not rec.get("data_source"):
                raise AnnotationError(str(path), i, "metadata.video_id/data_source", "missing")
            keys.add(video_key(str(rec["data_source"]), str(meta["video_id"])))
    return keys


def excluder(keys: set[str]) -> Callable[[Video], bool]:
    return lambda video: video_key(video.source, video.video_id) in keys


def standard_sample(items: Sequence[T], group: Callable[[T], tuple[str, str]], cap: Callable[[str, str], int],
                    seed: int) -> list[T]:
    """A seeded sample of at most `cap(source, task)` items per (source, task), original order kept."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[group(item)].append(i)
    keep: set[int] = set()
    for key in sorted(groups):
        idx = groups[key]
        n = min(cap(*key), len(idx))
        keep.update(random.Random(f"{seed}|{key[0]}|{key[1]}").sample(idx, n))
    return [item for i, item in enumerate(items) if i in keep]
