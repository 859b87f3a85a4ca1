"""SA (`skill_assessment`): a trial's six OSATS-style aspect scores and its skill level; the clip is the trial
(its opening up to `max_len`), or with `windowed` every window of `clip_len` (or each `lengths` pair) in it."""

from __future__ import annotations

from collections.abc import Iterator

from data_preprocess.builder.canonical import SKILL_LEVELS, Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import Context, Drop, Item, generator, snap_down, snap_up, windows
from reward_fns.tasks.sa import ASPECTS, answer_text


@generator("SA")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    for sc in (x for x in video.scores if x.kind == "skill"):
        start, end = snap_up(sc.start, s.fps), snap_down(min(sc.end, video.duration), s.fps)
        if s.max_len and end - start > s.max_len and not s.windowed:
            end = start + s.max_len  # the trial's opening, as long as the config allows
        if end - start < 1 / s.fps or sc.level not in SKILL_LEVELS:
            yield Drop("SA", "trial shorter than one frame or without an N/I/E skill level")
            continue
        values = {a: int(sc.values[a]) for a in ASPECTS}
        struc = [{"skill_level": sc.level, "skill_scores": values}]
        clips = windows(end - start, s, offset=start) if s.windowed else [(start, end)]
        for a, b in clips:
            question = ctx.ask("SA", video, a, duration=b - a)
            yield Item("SA", a, b, question, answer_text(values), struc)
