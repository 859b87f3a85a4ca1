"""STG (`stg`): one track's boxes every `box_stride` seconds over a stretch of a (longer) clip, the way the
released records ask for them ("every N seconds from A to B seconds"). Keys are clip-relative seconds on the
`box_stride` grid from the clip start.

Per clip window and track, every maximal run of boxes `box_stride` apart (a box within half a frame of each
time), starting on any frame of the clip that has a box and at least `min_boxes` long, makes one record;
`max_boxes` (0 = no limit) cuts a longer run into pieces of that many boxes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from data_preprocess.builder.canonical import Box, Video
from data_preprocess.builder.config import TaskSettings
from data_preprocess.builder.generators.base import Context, Drop, Item, generator, seconds, windows
from data_preprocess.builder.generators.boxes import box_near, pixel_box


def stg_answer(bbox_dict: dict[str, list[int]]) -> str:
    return " ".join(f"{key} seconds: [{', '.join(str(v) for v in box)}]" for key, box in bbox_dict.items())


def runs(track: Sequence[Box], video: Video, start: float, end: float, stride: float, fps: float
         ) -> list[list[tuple[float, tuple[int, int, int, int]]]]:
    """Maximal runs of (clip-relative time, pixel box), `stride` apart with a box at each; a run may begin
    on any frame (1 / fps grid) that has a box, the next one after the previous run ends."""
    def at(t: float) -> tuple[int, int, int, int] | None:
        box = box_near(track, start + t, min(0.5, stride / 2, 0.5 / fps))
        return pixel_box(box, video) if box is not None else None

    out: list[list[tuple[float, tuple[int, int, int, int]]]] = []
    k, length = 0, end - start
    while k / fps < length - 1e-6:
        t = k / fps
        pixels = at(t)
        if pixels is None:
            k += 1
            continue
        run = []
        while pixels is not None and t < length - 1e-6:
            run.append((round(t, 6), pixels))
            t = round(t + stride, 6)
            pixels = at(t) if t < length - 1e-6 else None
        out.append(run)
        k = max(k + 1, round(t * fps))
    return out


def _pieces(run: list, size: int) -> list[list]:
    if not size or len(run) <= size:
        return [run]
    return [run[i:i + size] for i in range(0, len(run), size)]


@generator("STG")
def generate(video: Video, s: TaskSettings, ctx: Context) -> Iterator[Item | Drop]:
    tracks = video.tracks()  # each in time order
    times = {track_id: [b.time for b in track] for track_id, track in tracks.items()}
    max_boxes = s.max_boxes
    for start, end in windows(video.duration, s):
        for track_id, track in tracks.items():
            # the boxes in [start - 0.5, end), found by bisection: work per window ~ its boxes, not the track's
            inside = track[bisect_left(times[track_id], start - 0.5):bisect_left(times[track_id], end)]
            if not inside:
                continue
            found = [p for r in runs(inside, video, start, end, s.box_stride, s.fps) for p in _pieces(r, max_boxes)]
            kept = [p for p in found if len(p) >= s.min_boxes]
            if not kept:
                yield Drop("STG", f"track with fewer than {s.min_boxes} boxes in a row in the clip")
                continue
            label = inside[0].label
            for piece in kept:
                bbox_dict = {f"{t:.1f}": list(box) for t, box in piece}
                first, last = piece[0][0], piece[-1][0]
                question = ctx.ask("STG", video, start, object=label, duration=end - start, track=track_id,
                                   first=seconds(first), last=seconds(last), stride=seconds(s.box_stride))
                struc = [{"start": first, "end": last, "stride": s.box_stride, "object": label,
                          "bbox_dict": bbox_dict}]
                yield Item("STG", start, end, question, stg_answer(bbox_dict), struc)
