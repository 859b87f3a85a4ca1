"""Box helpers shared by STG and RC: pixel rounding, image bounds, picking one track's box at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence

from data_preprocess.builder.canonical import Box, Video


def pixel_box(box: Box, video: Video) -> tuple[int, int, int, int] | None:
    """The box as integer pixels clipped to the image; None when it has no area left."""
    if not all(math.isfinite(v) for v in box.xyxy):
        return None
    x1, y1, x2, y2 = (round(v) for v in box.xyxy)
    if video.width and video.height:
        x1, x2 = max(0, min(x1, video.width)), max(0, min(x2, video.width))
        y1, y2 = max(0, min(y1, video.height)), max(0, min(y2, video.height))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def box_near(track: Sequence[Box], t: float, tolerance: float) -> Box | None:
    """The track's box closest to time t, if within `tolerance` seconds."""
    best = min(track, key=lambda b: abs(b.time - t), default=None)
    return best if best is not None and abs(best.time - t) <= tolerance else None
