"""TAG (`tal`): the spans of one label inside a clip, one record per label present."""

from __future__ import annotations

from collections.abc import Iterator

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import (
    Context,
    Drop,
    Item,
    clip_spans,
    generator,
    merge_touching,
    vocabulary,
    windows,
)


def tal_answer(spans: list[tuple[float, float]]) -> str:
    return ", ".join(f"{s:.1f}-{e:.1f}" for s, e in spans) + " seconds."


@generator("TAG")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    segments = video.segments_of(s.kind)
    words = vocabulary(video, s.kind)
    for start, end in windows(video.duration, s):
        spans = clip_spans(segments, start, end, s.min_span)
        if not spans:
            yield Drop("TAG", f"no {s.kind} segment in the clip")
            continue
        for label in dict.fromkeys(sp.label for sp in spans):
            merged = [(sp.start, sp.end) for sp in merge_touching([sp for sp in spans if sp.label == label])]
            question = ctx.ask("TAG", video, start, label=label, duration=end - start, **words)
            struc = [{"action": label, "spans": [{"start": a, "end": b} for a, b in merged]}]
            yield Item("TAG", start, end, question, tal_answer(merged), struc)
