"""Inference backends: a small registry of `name -> "module:Class"`, imported only when chosen.

A backend is built as `Backend(BackendConfig)` and answers `generate(requests, n) -> list[list[str]]`,
n completions per request, in order: greedy at temperature 0, else sampled (temperature T, top-p 1,
no top-k, as verl's rollout samples) with `seed`. Both backends prepare the video the way verl's rollout does:
`qwen_vl_utils.process_vision_info(messages, image_patch_size, return_video_metadata=True)`, then the
HF processor with that metadata and `do_sample_frames=False` (its `fps` gives Qwen's time stamps).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from data_preprocess.video_spec import VideoSpec

if TYPE_CHECKING:
    from evaluation.infer_requests import Request

_REGISTRY: dict[str, str] = {}


class BackendError(RuntimeError):
    """A backend cannot be used here (not installed, unknown name, bad engine argument)."""


@dataclass(frozen=True)
class BackendConfig:
    """What every backend is built from (the CLI flags)."""

    model: str
    spec: VideoSpec = field(default_factory=VideoSpec)
    max_new_tokens: int = 256
    engine_args: dict[str, Any] = field(default_factory=dict)  # passed to from_pretrained / vllm.LLM
    temperature: float = 0.0  # 0: greedy
    seed: int = 0  # sampling seed (temperature > 0)

    @property
    def processor_pixels(self) -> tuple[int, int]:
        """The HF processor's per-frame pixel bounds (VideoSpec: None means min_pixels / max_pixels)."""
        spec = self.spec
        lo = spec.processor_min_pixels if spec.processor_min_pixels is not None else spec.min_pixels
        hi = spec.processor_max_pixels if spec.processor_max_pixels is not None else spec.max_pixels
        return lo, hi


class Backend(Protocol):
    def generate(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[str]]:
        """`n` completions per request, in order; they are samples `start .. start+n-1` of each request
        (a backend that seeds per request uses it so a resumed run draws the samples it lacks)."""
        ...

    def generate_ids(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[list[int]]]:
        """The same completions as new token ids, each cut after its first stop token."""
        ...


def cut_at_stop(token_ids: Sequence[int], stop_ids: set[int]) -> list[int]:
    """`token_ids` up to and including the first stop token (drops the padding after it)."""
    out = []
    for token in token_ids:
        out.append(int(token))
        if token in stop_ids:
            break
    return out


def decode(tokenizer: Any, completions: list[list[list[int]]]) -> list[list[str]]:
    """Texts of token-id completions, decoded the same way for every backend (special tokens dropped)."""
    return [tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            for ids in completions]


def sample_seed(seed: int, index: int, start: int = 0) -> int:
    """Seed of sample `start` of record `index` (sample i: + i), independent of batching and resumes."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") % 2**31 + start


def register(name: str, target: str) -> None:
    """Declare a backend: `target` is "module:Class", imported on first use."""
    _REGISTRY[name] = target


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def load_backend(name: str, config: BackendConfig) -> Backend:
    """Import and build the backend `name`."""
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend {name!r}; known: {backend_names()}")
    module, attr = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)(config)


def vision_inputs(requests: Sequence[Request], image_patch_size: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """Frame tensors and their metadata per request (qwen-vl-utils, as verl's rollout calls it)."""
    from qwen_vl_utils import process_vision_info

    videos, metadata = [], []
    for request in requests:
        _, items = process_vision_info(request.messages(), image_patch_size=image_patch_size,
                                       return_video_metadata=True)
        for video, meta in items or []:
            videos.append(video)
            metadata.append(meta)
    return videos, metadata


register("transformers", "evaluation.backends.hf_transformers:TransformersBackend")
register("vllm", "evaluation.backends.vllm_offline:VLLMBackend")
