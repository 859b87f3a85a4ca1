"""Keyframes for `--with-frames`: a few frames per item as JPEG data URLs (RC: the start frame with the
green box drawn, as the model will see it)."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path

from PIL import Image

from data_preprocess.builder.records import keyframes
from data_preprocess.caption_writer.facts import FactsError, FactsItem
from data_preprocess.rc_overlay import draw_box

MAX_FRAMES = 4
MAX_SIDE = 512
REGION_FRAME = "caption_facts.region.frame"
KEYFRAMES = "caption_facts.keyframes"


class KeyframeLoader:
    """Callable item -> data URLs; frame paths are relative to `data_root`."""

    def __init__(self, data_root: str | Path, where: str = "<input>", max_frames: int = MAX_FRAMES):
        self.root, self.where, self.max_frames = Path(data_root), where, max_frames

    def check(self, items: list[FactsItem]) -> None:
        """Fail before any request when a frame the run will send is missing."""
        for item in items:
            for rel, field in self._paths(item):
                if not (self.root / rel).is_file():
                    raise FactsError(f"{self.where}: record {item.index}: field '{field}': no frame file "
                                     f"{self.root / rel}")

    def _paths(self, item: FactsItem) -> list[tuple[str, str]]:
        region = item.facts.region
        paths = [(region.frame, REGION_FRAME)] if region is not None and region.frame else []
        spread = keyframes(item.facts.keyframes, self.max_frames - len(paths))
        return paths + [(k, KEYFRAMES) for k in spread]

    def __call__(self, item: FactsItem) -> list[str]:
        box = item.facts.region.bbox if item.facts.region is not None else None
        return [self._encode(item, rel, field, box if field == REGION_FRAME else None)
                for rel, field in self._paths(item)]

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
