"""NAP (`next_action`): the label of the next segment after a clip.

Clips end `gap` seconds before a segment starts, gap = 0, stride, 2*stride, ... up to `horizon`;
labels outside the leaderboard's fixed class list (nap_classes.json) are dropped with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_preprocess.builder.canonical import Segment, Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import EPS, UNITS, Context, Drop, Item, generator, snap_down
from reward_fns.tasks import nap


@generator("NAP")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    segments = video.segments_of(s.kind)
    unit, units = UNITS.get(s.kind, ("step", "steps"))
    listed = _fixed_list(video.source, video.procedure or ctx.procedure) or sorted({x.label for x in segments})
    words = {"classes": ", ".join(listed), "unit": unit, "units": units}
    for i, seg in enumerate(segments):
        if i and segments[i - 1].label == seg.label and segments[i - 1].end >= seg.start - EPS:
            continue  # the same action going on: no boundary
        label = nap.canonical(video.source, seg.label)
        seen: set[tuple[float, float]] = set()
        for one in s.scales():
            yield from _clips(video, one, seg, label, words, ctx, seen)


def _clips(video: Video, s: TaskSettings, seg: Segment, label: str, words: dict[str, str], ctx: Context,
           seen: set[tuple[float, float]]) -> Iterator[Item | Drop]:
    """Clips of `clip_len` ending 0, stride, 2 * stride, ... <= horizon seconds before the segment starts."""
    gap = 0.0
    while gap <= s.horizon + EPS:
        end = snap_down(seg.start - gap, s.fps)
        start = end - s.clip_len
        gap += s.stride
        if start < -EPS:
            yield Drop("NAP", "clip would start before the video")
            continue
        start = max(start, 0.0)
        if (round(start, 6), round(end, 6)) in seen:
            continue
        seen.add((round(start, 6), round(end, 6)))
        question = ctx.ask("NAP", video, start, duration=end - start, **words)
        classes = nap.resolve_nap_classes(video.source, question, [label])
        if label not in classes:
            yield Drop("NAP", "next action not in the leaderboard class list")
            continue
        yield Item("NAP", start, end, question, label, [{"next_action": label}])


def _fixed_list(source: str, procedure: str) -> tuple[str, ...]:
    """The classes a question may list: the fixed list, or the procedure's list for NurViD."""
    table = nap.class_table()
    if source == "NurViD":
        return tuple(table["NurViD_by_procedure"].get(procedure) or ())
    return tuple(table.get(source) or ())
