"""DVC (`dense_captioning`): a clip's segments with (later) captions; written only with `--captions facts`.

Segments are made disjoint (a later one starts where the earlier ends) and must span at least one frame
at the record fps, so the reference scores DVC F1 = 1 against itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import (
    Context,
    Drop,
    Item,
    Span,
    base_facts,
    clip_spans,
    facts_segments,
    generator,
    vocabulary,
    windows,
)


def disjoint(spans: list[Span], fps: float) -> list[Span]:
    """Time-ordered spans with overlaps cut off and sub-frame spans dropped."""
    out: list[Span] = []
    for sp in sorted(spans, key=lambda x: (x.start, x.end)):
        start = max(sp.start, out[-1].end) if out else sp.start
        if math.floor(sp.end * fps) > math.floor(start * fps):
            out.append(Span(sp.label, start, sp.end, sp.source))
    return out


def dvc_struc(video: Video, spans: list[Span]) -> list[dict]:
    """struc_info with empty captions: NurViD's dc_segments layout, else one {action, spans} per label."""
    if video.source == "NurViD":
        return [{"dc_segments": [{"start": sp.start, "end": sp.end, "caption": ""} for sp in spans]}]
    by_label: dict[str, list[dict]] = {}
    for sp in spans:
        by_label.setdefault(sp.label, []).append({"start": sp.start, "end": sp.end, "caption": ""})
    return [{"action": label, "spans": items} for label, items in by_label.items()]


@generator("DVC")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    segments = video.segments_of(s.kind)
    words = vocabulary(video, s.kind)
    for start, end in windows(video.duration, s):
        spans = disjoint(clip_spans(segments, start, end, s.min_span), s.fps)
        if len(spans) < s.min_segments:
            yield Drop("DVC", f"fewer than {s.min_segments} segments in the clip")
            continue
        facts = {**base_facts("DVC", video, ctx, start, end, s.fps), "segments": facts_segments(spans)}
        question = ctx.ask("DVC", video, start, duration=end - start, **words)
        yield Item("DVC", start, end, question, "", dvc_struc(video, spans), facts=facts)
