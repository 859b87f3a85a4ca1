"""Region captions: draw `RC_info.start_frame_bbox` as a green rectangle (width 8) on the start frame.

The drawn frame is cached under the output folder with a content-addressed name (sha256 of the
source image bytes, the box and the style), written atomically, so reruns and duplicate records
reuse it and a crash never leaves a half-written image behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from io import BytesIO

from PIL import Image, ImageDraw

GREEN = (0, 255, 0)
LINE_WIDTH = 8
JPEG_QUALITY = 95
_STYLE = f"rc-overlay-v1:{GREEN}:{LINE_WIDTH}:{JPEG_QUALITY}"


def overlay_name(image_bytes: bytes, box: Sequence[float]) -> str:
    """Content address of one drawn frame."""
    digest = hashlib.sha256(image_bytes)
    digest.update(json.dumps([float(v) for v in box]).encode())
    digest.update(_STYLE.encode())
    return digest.hexdigest()


def draw_box(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """A copy of `image` (RGB) with the box outlined in green, the line drawn inside the box edge."""
    out = image.convert("RGB")
    x1, y1, x2, y2 = (float(v) for v in box)
    ImageDraw.Draw(out).rectangle((x1, y1, x2, y2), outline=GREEN, width=LINE_WIDTH)
    return out


_FOLDERS: set[str] = set()  # cache sub-folders known to exist (this process)


def overlay_frame(source: str | os.PathLike[str], box: Sequence[float], cache_dir: str | os.PathLike[str]) -> str:
    """Absolute path of the cached frame with the box drawn (created if missing)."""
    with open(source, "rb") as fh:
        data = fh.read()
    name = overlay_name(data, box)
    folder = os.path.join(os.path.abspath(cache_dir), name[:2])
    target = os.path.join(folder, f"{name}.jpg")
    if os.path.exists(target):
        return target
    if folder not in _FOLDERS:
        os.makedirs(folder, exist_ok=True)
        _FOLDERS.add(folder)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with Image.open(BytesIO(data)) as image:
        draw_box(image, box).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    os.replace(tmp, target)
    return target
