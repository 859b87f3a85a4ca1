"""Region captions: `RC_info.start_frame_bbox` clipped to the image (bounded work) and drawn as a green
rectangle (width 8) on the start frame, cached under its content address (sha256 of the image bytes,
the box and the style) and written atomically, so reruns and duplicate records reuse it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from io import BytesIO

from PIL import Image, ImageDraw

from reward_fns.atomic_io import atomic_path

GREEN = (0, 255, 0)
LINE_WIDTH = 8
JPEG_QUALITY = 95
_STYLE = f"rc-overlay-v1:{GREEN}:{LINE_WIDTH}:{JPEG_QUALITY}"


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, ...]:
    """The box clipped to [0, width] x [0, height]; ValueError when nothing of it is left."""
    clipped = tuple(min(max(float(v), 0.0), side) for v, side in zip(box, (width, height) * 2, strict=True))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ValueError(f"box {list(box)} lies outside the {width}x{height} image")
    return clipped


def draw_box(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """A copy of `image` (RGB) with the box outlined in green, the line drawn inside the box edge."""
    out = image.convert("RGB")
    ImageDraw.Draw(out).rectangle(tuple(float(v) for v in box), outline=GREEN, width=LINE_WIDTH)
    return out


def overlay_frame(source: str | os.PathLike[str], box: Sequence[float], cache_dir: str | os.PathLike[str]
                  ) -> tuple[str, tuple[float, ...]]:
    """Absolute path of the cached frame with the (clipped) box drawn, created if missing, and that box."""
    with open(source, "rb") as fh:
        data = fh.read()
    with Image.open(BytesIO(data)) as image:
        clipped = clip_box(box, *image.size)
        name = hashlib.sha256(data + json.dumps([float(v) for v in clipped]).encode() + _STYLE.encode()).hexdigest()
        target = os.path.join(os.path.abspath(cache_dir), name[:2], f"{name}.jpg")
        if not os.path.exists(target):
            with atomic_path(target) as tmp:
                draw_box(image, clipped).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    return target, clipped
