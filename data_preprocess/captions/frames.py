"""Keyframes for `--with-frames`: a few frames per item as JPEG data URLs (RC: the start frame with the
green box drawn, as the model will see it)."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

from PIL import Image

from data_preprocess.captions.facts import FactsError, FactsItem
from data_preprocess.rc_overlay import draw_box

MAX_FRAMES = 4
MAX_SIDE = 512


class KeyframeLoader:
    """Callable item -> data URLs; frame paths are relative to `data_root`."""

    def __init__(self, data_root: str | Path, where: str = "<input>", max_frames: int = MAX_FRAMES):
        self.root, self.where, self.max_frames = Path(data_root), where, max_frames

    def __call__(self, item: FactsItem) -> list[str]:
        facts = item.facts
        urls: list[str] = []
        if facts.region is not None and facts.region.frame:
            urls.append(self._encode(item, facts.region.frame, "caption_facts.region.frame", facts.region.bbox))
        for path in _spread(facts.keyframes, self.max_frames - len(urls)):
            urls.append(self._encode(item, path, "caption_facts.keyframes"))
        return urls

    def _encode(self, item: FactsItem, rel: str, field: str, box: tuple[float, ...] | None = None) -> str:
        path = self.root / rel
        try:
            with Image.open(path) as image:
                image = draw_box(image, box) if box else image.convert("RGB")
        except OSError as exc:
            raise FactsError(f"{self.where}: record {item.index}: field '{field}': cannot read frame {path}: "
                             f"{exc}") from None
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        buffer = BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _spread(paths: tuple[str, ...], k: int) -> list[str]:
    """Up to k paths evenly spread over the list."""
    if k <= 0 or not paths:
        return []
    if len(paths) <= k:
        return list(paths)
    step = (len(paths) - 1) / max(k - 1, 1)
    return [paths[round(i * step)] for i in range(k)]
