"""DVC answer parsing: `s-e seconds: caption` headers, the loose line fallback, overlap splitting."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

from reward_fns.registry import Parsed
from reward_fns.tasks.common import NUM, text_of, unparsed


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    caption: str


_HEADER = rf"({NUM})-({NUM})\s+seconds?:\s+"
_STRICT = re.compile(rf"{_HEADER}(.*?)(?=\n{_HEADER}|$)", re.DOTALL)
_RANGE = rf"({NUM})\s*[-–]\s*({NUM})"
_LOOSE_TAIL = r"\s*seconds?.*?(?:-|\*\*Description:\*\*)(.+)"
_LOOSE_AT_START = re.compile(rf"^{_RANGE}{_LOOSE_TAIL}")
_LOOSE_AFTER_MARKER = re.compile(
    rf"(?:\*\*Start Time:\*\*|Start Time|Time Range:|Time Interval:)\s*{_RANGE}{_LOOSE_TAIL}"
)


def _strict_segments(text: str) -> list[Segment]:
    segments: list[Segment] = []
    seen: set[tuple[float, float]] = set()
    for match in _STRICT.finditer(text):
        key = (float(match.group(1)), float(match.group(2)))
        if key not in seen:
            seen.add(key)
            segments.append(Segment(key[0], key[1], match.group(3).strip()))
    return segments


def _loose_segments(text: str) -> list[Segment]:
    segments = []
    for line in text.split("\n"):
        line = line.strip()
        match = _LOOSE_AT_START.match(line) or _LOOSE_AFTER_MARKER.search(line)
        if match:
            segments.append(Segment(float(match.group(1)), float(match.group(2)), match.group(3).strip()))
    return segments


def split_overlaps(segments: Iterable[Segment]) -> list[Segment]:
    """Sort by (start, end); when any segment starts before its predecessor ends, cut everything
    at every boundary and keep the pieces covered by some segment (caption of the longest cover)."""
    ordered = sorted(segments, key=lambda s: (s.start, s.end))
    if not any(cur.start < prev.end for prev, cur in pairwise(ordered)):
        return ordered
    bounds = sorted({t for s in ordered for t in (s.start, s.end)})
    pieces = []
    for lo, hi in pairwise(bounds):
        best: Segment | None = None
        for seg in ordered:
            covers = seg.start <= lo and seg.end >= hi
            if covers and (best is None or seg.end - seg.start > best.end - best.start):
                best = seg
        if best is not None:
            pieces.append(Segment(lo, hi, best.caption))
    return pieces


def parse_events(answer: object) -> tuple[list[Segment], str]:
    """(events, "header" | "fallback" | "") as read, finite ends, BEFORE overlap splitting (DVC llm pairing)."""
    text = text_of(answer)
    strict = _strict_segments(text)
    segments, kind = (strict, "header") if strict else (_loose_segments(text), "fallback")
    segments = [s for s in segments if math.isfinite(s.start) and math.isfinite(s.end)]
    return segments, kind if segments else ""


def parse_segments(answer: object) -> Parsed:
    """Predicted events after header parsing (or the loose fallback) and overlap splitting."""
    text = text_of(answer)
    segments = _strict_segments(text) or _loose_segments(text)
    segments = [s for s in segments if math.isfinite(s.start) and math.isfinite(s.end)]  # '999...9' overflows
    if not segments:
        return unparsed("no 's-e seconds: caption' event found", empty=[])
    return Parsed(split_overlaps(segments), ok=True)


def gt_segments(struc_info: Iterable[object]) -> list[Segment]:
    """Reference events from any of the three struc_info layouts; entries need start, end, caption."""
    flat: list[object] = []
    for item in struc_info:
        if isinstance(item, list):
            flat.extend(item)
        elif isinstance(item, Mapping) and "dc_segments" in item:
            flat.extend(item["dc_segments"] or [])
        elif isinstance(item, Mapping) and "spans" in item and "start" not in item:  # {action, spans} layout
            flat.extend(item["spans"] or [])
        else:
            flat.append(item)
    return [
        Segment(float(seg["start"]), float(seg["end"]), str(seg["caption"]))
        for seg in flat
        if isinstance(seg, Mapping) and all(k in seg for k in ("start", "end", "caption"))
    ]
