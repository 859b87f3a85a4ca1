"""RC (`region_caption`): a box on the clip's start frame; written only with `--captions facts`.

Per track, boxes on the fps grid at least `stride` seconds apart each start a clip of `clip_len` (per pair of
`lengths` when given).
"""

from __future__ import annotations

from collections.abc import Iterator

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import EPS, Context, Drop, Item, base_facts, generator, snap_down
from data_preprocess.builder.generators.boxes import pixel_box


@generator("RC")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    for one in s.scales():
        yield from _clips(video, one, ctx)


def _clips(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    for track in video.tracks().values():
        last = -float("inf")
        for box in track:
            if box.time < last + s.stride - EPS:
                continue
            if abs(box.time * s.fps - round(box.time * s.fps)) > 1e-3:
                yield Drop("RC", "box time off the frame grid")
                continue
            start = round(box.time * s.fps) / s.fps
            end = min(start + s.clip_len, snap_down(video.duration, s.fps))
            pixels = pixel_box(box, video)
            if end - start < 1 / s.fps - EPS or pixels is None:
                yield Drop("RC", "clip shorter than one frame or box without area")
                continue
            last = box.time
            question = ctx.ask("RC", video, start, object=box.label, duration=end - start, time="0.0",
                               end=f"{end - start:.1f}")
            struc = [{"struc_info": {"start": 0.0, "end": round(end - start, 1), "object": box.label},
                      "question": question}]
            facts = {**base_facts("RC", video, ctx, start, end, s.fps),
                     "region": {"object": box.label, "bbox": list(pixels), "time": 0.0,
                                "image_size": [video.width, video.height]}}
            yield Item("RC", start, end, question, "", struc, rc_box=pixels, facts=facts)
