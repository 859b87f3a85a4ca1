"""CVS (`cvs_assessment`): the three criteria scores of a scored segment: the clip is the segment, or with
`windowed` every window of `clip_len` (or of each `lengths` pair) inside it, each carrying its scores."""

from __future__ import annotations

from collections.abc import Iterator

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import Context, Drop, Item, generator, snap_up, windows
from reward_fns.tasks.cvs import CRITERIA, answer_text


@generator("CVS")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    for sc in (x for x in video.scores if x.kind == "cvs"):
        start, end = snap_up(sc.start, s.fps), min(sc.end, video.duration)
        if end - start < 1 / s.fps:
            yield Drop("CVS", "segment start >= end (or shorter than one frame)")
            continue
        if s.max_len and end - start > s.max_len and not s.windowed:
            yield Drop("CVS", f"segment longer than max_len {s.max_len} s")
            continue
        values = {k: int(sc.values[k]) for k in CRITERIA}
        total = sum(values.values())
        achieved = bool(sc.extra.get("critical_view_achieved", total >= 5))
        struc = [{"cvs_scores": {**values, "total": total, "critical_view_achieved": achieved}}]
        clips = windows(end - start, s, offset=start) if s.windowed else [(start, end)]
        for a, b in clips:
            question = ctx.ask("CVS", video, a, duration=b - a)
            yield Item("CVS", a, b, question, answer_text(values), struc)
