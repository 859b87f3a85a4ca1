"""`VideoSpec`: the one set of video sampling settings used by preprocessing, SFT, rollout and evaluation,
and the visual-token estimate of a frame list (what qwen-vl-utils 0.0.14 `fetch_video` and then the HF
Qwen2-VL video processor do to it)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from qwen_vl_utils import smart_resize

DEFAULTS_FILE = Path(__file__).resolve().parents[1] / "recipes" / "config" / "medgrpo_video.yaml"
_DEFAULTS: dict[str, Any] = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))  # the one place they are written
MODEL_SEQ_LEN = int(float(os.environ.get("MODEL_SEQ_LEN", 128000)))  # qwen-vl-utils' total_pixels budget
_VIDEO_MAX_TOKENS = 768  # qwen-vl-utils VIDEO_MAX_TOKEN_NUM


def processor_resize(h: int, w: int, factor: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
    """transformers' Qwen2-VL `smart_resize` (the video processor's) for a size that is already a
    multiple of `factor`: there it equals qwen-vl-utils' with each side kept >= `factor`."""
    hb, wb = smart_resize(h, w, factor, min_pixels, max_pixels)
    return max(factor, hb), max(factor, wb)


@dataclass(frozen=True)
class VideoSpec:
    """How a MedVidBench frame list is fed to a Qwen-VL model (fields: docs/data.md, VideoSpec); the
    defaults are recipes/config/medgrpo_video.yaml's (`DEFAULTS_FILE`)."""

    fps: float | None = _DEFAULTS["fps"]  # None: the record's fps; a lower value keeps every k-th frame
    max_frames: int = _DEFAULTS["max_frames"]  # uniform subsampling above this (0: no cap)
    min_pixels: int = _DEFAULTS["min_pixels"]  # per frame
    max_pixels: int = _DEFAULTS["max_pixels"]
    image_patch_size: int = _DEFAULTS["image_patch_size"]
    merge_size: int = _DEFAULTS["merge_size"]
    temporal_patch_size: int = _DEFAULTS["temporal_patch_size"]
    processor_min_pixels: int | None = _DEFAULTS["processor_min_pixels"]  # the HF processor's (None: the same)
    processor_max_pixels: int | None = _DEFAULTS["processor_max_pixels"]
    frame_size: tuple[int, int] = tuple(_DEFAULTS["frame_size"])  # (w, h) where frames are not probed

    def __post_init__(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"VideoSpec.fps must be > 0 or null, got {self.fps}")
        if self.max_frames < 0:
            raise ValueError(f"VideoSpec.max_frames must be >= 0, got {self.max_frames}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"VideoSpec needs 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        object.__setattr__(self, "fps", None if self.fps is None else float(self.fps))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> VideoSpec:
        """From a dict; a `video_spec:` section is looked into; unknown keys are an error."""
        data, known = dict(data.get("video_spec", data)), sorted(f.name for f in fields(cls))
        if unknown := sorted(set(data) - set(known)):
            raise ValueError(f"unknown VideoSpec keys {unknown}; known: {known}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VideoSpec:
        """Read a YAML or JSON file."""
        text = Path(path).read_text()
        return cls.from_mapping((json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)) or {})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frame_size": list(self.frame_size)}

    def select(self, n_frames: int, record_fps: float, must_keep: int | None = None
               ) -> tuple[list[int] | None, float, int | None]:
        """Which frames to keep (None: all), their fps (spacing in time), and where frame `must_keep` (the
        region-caption start frame) lands: it replaces the nearest kept frame when subsampling drops it."""
        keep: range | list[int] = range(n_frames)
        fps = record_fps
        if self.fps is not None and self.fps < record_fps and n_frames > 1:
            step = record_fps / self.fps
            keep, fps = sorted({int(i * step) for i in range(math.ceil(n_frames / step))}), self.fps
        if self.max_frames and len(keep) > self.max_frames:  # uniform subsampling, first and last kept
            step = (len(keep) - 1) / max(1, self.max_frames - 1)
            keep = [keep[p] for p in np.rint(np.arange(self.max_frames) * step).astype(np.int64).tolist()]
            fps = fps / step if self.max_frames > 1 else fps
        if isinstance(keep, range):
            return None, fps, must_keep
        if must_keep is not None and must_keep not in keep:
            nearest = min(range(len(keep)), key=lambda j: (abs(keep[j] - must_keep), j))
            keep = sorted({*keep[:nearest], must_keep, *keep[nearest + 1:]})
        return keep, fps, (keep.index(must_keep) if must_keep is not None else None)

    def video_entry(self, frames: Any, fps: Any) -> dict[str, Any]:
        """The verl `videos` item of frames at `fps` (a float; qwen-vl-utils reads `sample_fps` for a frame
        list). Given Arrow columns (frame lists, fps), the columns of many items: `rows.py` builds with it."""
        return {"video": frames, "fps": fps, "sample_fps": fps, "min_pixels": int(self.min_pixels),
                "max_pixels": int(self.max_pixels)}

    def resized_hw(self, height: int, width: int, n_frames: int) -> tuple[int, int]:
        """Frame size the model sees (qwen-vl-utils frame + clip resize, then the HF processor)."""
        factor = self.image_patch_size * self.merge_size
        h, w = smart_resize(height, width, 2 * factor, self.min_pixels, self.max_pixels)
        padded = max(2, math.ceil(n_frames / 2) * 2)
        total = MODEL_SEQ_LEN * factor * factor * 0.9
        limit = max(min(_VIDEO_MAX_TOKENS * factor * factor, total / padded * 2), int(self.min_pixels * 1.05))
        h, w = smart_resize(h, w, factor, self.min_pixels, min(self.max_pixels, limit))
        lo = self.processor_min_pixels if self.processor_min_pixels is not None else self.min_pixels
        hi = self.processor_max_pixels if self.processor_max_pixels is not None else self.max_pixels
        return processor_resize(h, w, factor, lo, hi)

    def visual_tokens(self, n_frames: int, height: int | None = None, width: int | None = None) -> int:
        """`<|video_pad|>` tokens for a clip of `n_frames` frames of the given size (`frame_size` where
        qwen-vl-utils refuses the aspect ratio, above 200)."""
        if n_frames <= 0:
            return 0
        try:
            h, w = self.resized_hw(height or self.frame_size[1], width or self.frame_size[0], n_frames)
        except ValueError:
            h, w = self.resized_hw(self.frame_size[1], self.frame_size[0], n_frames)
        padded = math.ceil(n_frames / 2) * 2  # qwen-vl-utils repeats the last frame to an even count
        grid_t = math.ceil(padded / self.temporal_patch_size)
        patch = self.image_patch_size
        return grid_t * (h // patch) * (w // patch) // (self.merge_size**2)
