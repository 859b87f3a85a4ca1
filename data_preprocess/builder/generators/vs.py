"""VS (`video_summary`): a clip's summary; written only with `--captions facts` (segments as facts)."""

from __future__ import annotations

from collections.abc import Iterator

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import (
    Context,
    Drop,
    Item,
    base_facts,
    clip_spans,
    facts_segments,
    generator,
    windows,
)


@generator("VS")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    segments = video.segments_of(s.kind)
    for start, end in windows(video.duration, s):
        spans = clip_spans(segments, start, end, s.min_span)
        if len(spans) < s.min_segments:
            yield Drop("VS", f"fewer than {s.min_segments} segments in the clip")
            continue
        facts = {**base_facts("VS", video, ctx, start, end, s.fps), "segments": facts_segments(spans)}
        question = ctx.ask("VS", video, start, duration=end - start)
        yield Item("VS", start, end, question, "", [], facts=facts)
