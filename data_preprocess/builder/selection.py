"""Which records a build keeps: test/val exclusion by video, and the Standard (capped) split."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from data_preprocess.builder.canonical import AnnotationError, Video, read_json
from reward_fns.registry import SOURCES

T = TypeVar("T")
CHOLEC80_FAMILY = frozenset({"CholecT50", "CholecTrack20", "Cholec80-CVS"})
# Trailing part markers of one source video cut into pieces: '014014_part0', 'x-part_2', 'y clip3'.
PART_SUFFIX = re.compile(r"[_\-\s.]+(?:part|clip|seg|segment|chunk)[_\-\s]*\d+$")
VIDEO_EXTENSION = re.compile(r"\.(?:mp4|mkv|avi|webm|mov|m4v)$")


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


SOURCE_NAMES = {_squash(name): name for name in SOURCES}


def source_name(name: object) -> str | None:
    """A data_source spelled any way ('Egosurgery', 'cholec80_cvs') as the registry's name, or None."""
    return SOURCE_NAMES.get(_squash(str(name)))


def normalize_id(video_id: str) -> str:
    """Case, surrounding space, a video file extension and `_partN`-like suffixes removed."""
    text, previous = video_id, None
    while text != previous:
        previous = text
        text = PART_SUFFIX.sub("", VIDEO_EXTENSION.sub("", text.strip().casefold()))
    return text


def video_key(source: str, video_id: str) -> str:
    """A video's identity across sources: the Cholec80-based sources share 'cholec80:<number>'
    (VID01, vid01, video01 -> cholec80:1); other ids compare normalized (`normalize_id`) within the source."""
    if source in CHOLEC80_FAMILY:
        digits = re.findall(r"\d+", video_id)
        if digits:
            return f"cholec80:{int(digits[0])}"
    return f"{source}:{normalize_id(video_id)}"


def load_test_keys(paths: Iterable[str | Path]) -> dict[str, set[str]]:
    """{data_source: video keys} of every record of MedVidBench test/val JSON files."""
    keys: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        data = read_json(Path(path))
        if not isinstance(data, list):
            raise AnnotationError(str(path), "-", "<file>", "must be a JSON list of MedVidBench records")
        for i, rec in enumerate(data):
            meta = rec.get("metadata") if isinstance(rec, dict) else None
            if not isinstance(meta, dict) or meta.get("video_id") in (None, "") or not rec.get("data_source"):
                raise AnnotationError(str(path), i, "metadata.video_id/data_source", "missing")
            source = source_name(rec["data_source"])
            if source is None:
                raise AnnotationError(str(path), i, "data_source", f"{rec['data_source']!r} names no MedVidBench "
                                                                   f"source {SOURCES}")
            keys[source].add(video_key(source, str(meta["video_id"])))
    return dict(keys)


def excluder(keys: Mapping[str, set[str]]) -> Callable[[Video], bool]:
    every = set().union(*keys.values()) if keys else set()
    return lambda video: video_key(video.source, video.video_id) in every


def match_report(test: Mapping[str, set[str]], built: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Per test source: its test videos, how many of them a built video of that source matches, and how many
    any built video matches (the Cholec80 family shares videos across sources)."""
    by_source: dict[str, set[str]] = defaultdict(set)
    for source, video_id in built:
        by_source[source].add(video_key(source, video_id))
    every = set().union(*by_source.values()) if by_source else set()
    return {source: {"test_videos": len(keys), "built_videos": len(by_source.get(source, ())),
                     "matched": len(keys & by_source.get(source, set())), "matched_any_source": len(keys & every)}
            for source, keys in sorted(test.items())}


def no_match_sources(report: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Sources present in both the test files and the build of which no test video matched."""
    return [s for s, r in report.items() if r["test_videos"] and r["built_videos"] and not r["matched"]]


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
