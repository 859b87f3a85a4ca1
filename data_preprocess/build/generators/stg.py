"""STG (`stg`): one track's boxes at `box_stride` over a clip, keys in clip-relative seconds."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from data_preprocess.build.canonical import Video
from data_preprocess.build.config import TaskSettings
from data_preprocess.build.generators.base import Context, Drop, Item, generator, windows
from data_preprocess.build.generators.boxes import box_near, pixel_box


def stg_answer(bbox_dict: dict[str, list[int]]) -> str:
    return " ".join(f"{key} seconds: [{', '.join(str(v) for v in box)}]" for key, box in bbox_dict.items())


@generator("STG")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    tracks = video.tracks()  # each in time order
    times = {track_id: [b.time for b in track] for track_id, track in tracks.items()}
    for start, end in windows(video.duration, s):
        for track_id, track in tracks.items():
            # the boxes in [start, end), found by bisection: work per window ~ its boxes, not the track's
            inside = track[bisect_left(times[track_id], start):bisect_left(times[track_id], end)]
            if not inside:
                continue
            bbox_dict: dict[str, list[int]] = {}
            t = 0.0
            while start + t < end:
                box = box_near(inside, start + t, min(0.5, s.box_stride / 2))
                pixels = pixel_box(box, video) if box is not None else None
                if pixels is not None:
                    bbox_dict[f"{t:.1f}"] = list(pixels)
                t = round(t + s.box_stride, 6)
            if len(bbox_dict) < s.min_boxes:
                yield Drop("STG", f"track with fewer than {s.min_boxes} boxes in the clip")
                continue
            label = inside[0].label
            keys = [float(k) for k in bbox_dict]
            question = ctx.ask("STG", video, start, object=label, duration=end - start, track=track_id)
            struc = [{"start": keys[0], "end": keys[-1], "stride": s.box_stride, "object": label,
                      "bbox_dict": bbox_dict}]
            yield Item("STG", start, end, "stg", question, stg_answer(bbox_dict), struc)
