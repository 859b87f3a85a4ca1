"""Item (generator output) + video + frame paths -> a MedVidBench record in the released layout."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.generators.base import Item

KEYFRAMES = 4


def _time_bounds(video: Video, item: Item) -> dict[str, str]:
    return {"input_video_start_time": f"{item.start:.1f}", "input_video_end_time": f"{item.end:.1f}"}


def _frame_bounds(video: Video, item: Item) -> dict[str, str]:
    return {"start_frame": str(round(item.start * video.fps)), "end_frame": str(round(item.end * video.fps))}


# Source-specific clip bounds the released records carry besides input_video_start/end_frame.
EXTRA_METADATA: dict[str, Callable[[Video, Item], dict[str, str]]] = {
    "NurViD": _time_bounds,
    "Cholec80-CVS": _frame_bounds,
}


def metadata(video: Video, item: Item, fps: float) -> dict[str, str]:
    meta = {"video_id": video.video_id, "fps": f"{fps:.1f}",
            "input_video_start_frame": str(round(item.start * video.fps)),
            "input_video_end_frame": str(round(item.end * video.fps))}
    extra = EXTRA_METADATA.get(video.source)
    return {**meta, **(extra(video, item) if extra else {})}


def keyframes(frames: Sequence[str], n: int = KEYFRAMES) -> list[str]:
    """Up to n frames spread evenly over the clip (first and last included when n >= 2)."""
    if n <= 0:
        return []
    if len(frames) <= n:
        return list(frames)
    step = (len(frames) - 1) / max(n - 1, 1)
    return [frames[round(i * step)] for i in range(n)]


def scaled_box(box: Sequence[float], scale: tuple[float, float] | None) -> list[int]:
    """A pixel box on frames resized by `scale` (x, y); the box itself when they were not."""
    if scale is None:
        return [int(v) for v in box]
    sx, sy = scale
    return [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)]


def make_record(video: Video, item: Item, fps: float, frames: list[str],
                scale: tuple[float, float] | None = None) -> dict[str, Any]:
    """The record; caption items (`facts`) get the caption_facts key of the captions interchange format.
    `scale`: the video's frames were stored resized by (x, y), so the RC box drawn on its start frame is
    scaled to them (STG answers stay in the source video's pixels, as released)."""
    rec: dict[str, Any] = {
        "conversations": [{"from": "human", "value": "<video>\n" + item.question},
                          {"from": "gpt", "value": item.answer}],
        "video": frames,
        "metadata": metadata(video, item, fps),
        "qa_type": item.qa_type,
        "data_source": video.source,
        "struc_info": item.struc_info,
        "is_RC": item.rc_box is not None,
    }
    if item.rc_box is not None:
        rec["RC_info"] = {"start_frame": frames[0], "start_frame_bbox": scaled_box(item.rc_box, scale)}
    if item.facts is not None:
        facts = dict(item.facts)
        if "region" in facts:
            facts["region"] = {**facts["region"], "frame": frames[0]}
            if scale is not None:
                w, h = facts["region"]["image_size"]
                facts["region"].update(bbox=scaled_box(facts["region"]["bbox"], scale),
                                       image_size=[round(w * scale[0]), round(h * scale[1])])
        facts["keyframes"] = keyframes(frames)
        rec["caption_facts"] = facts
    return rec
