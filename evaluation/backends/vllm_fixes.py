"""Two fixes to vLLM 0.24.0 that the recipes' rollouts and evaluation rely on (loaded, never edited in).

**Video time for Qwen2.5-VL (every platform).** vLLM 0.24.0 drops the frame metadata of a
`(frames, metadata)` video before calling Qwen2.5-VL's HF processor, which takes the clip's time spacing
(`second_per_grid_ts` = temporal patch size / `metadata.sampled_fps`) from that metadata. Without it the
processor assumes 24 fps, so every clip's temporal M-RoPE positions are squeezed together, while the
actor (transformers, verl's agent loop with recipes/ext/agent_loop.py, the SFT dataset) places them at
the record's real fps: the rollout samples from a policy the actor does not train
(`rollout_probs_diff_max` up to 0.98 on a trained tiny model, 4 frames at 1 fps). Upstream fixed this
after 0.24 (vllm-project/vllm#47736); `install_video_metadata` does the same in place: the data parser
keeps each video's metadata (bare frame arrays, e.g. vLLM's own profiling inputs, get the metadata
transformers would assume for them), and the HF call receives it as `video_metadata`. Qwen3-VL already
keeps it in 0.24.0.

**Reloadable weights on vLLM-CPU.** At load, vLLM's CPU build repacks every linear layer's weight for
oneDNN and then replaces the weight parameter with an empty tensor (``dispatch_cpu_unquantized_gemm(layer,
remove_weight=True)``, vllm/model_executor/layers/linear.py), so verl's weight sync fails with "Attempted
to load weight (torch.Size([96, 32])) into parameter (torch.Size([0]))". `install_cpu_weights` makes the
dispatch keep the weight; verl already calls ``process_weights_after_loading`` after every sync, which
repacks the new weights. The cost is a second host copy of the linear weights.

Loaded through verl's extension point (``VERL_USE_EXTERNAL_MODULES``; the launchers list this module for
every GRPO run, recipes/common.sh), which imports it in every verl process, usually before vLLM: the video
fix then waits for vLLM's Qwen2.5-VL module to be imported (a post-import hook, nothing else is touched);
the weight fix acts where vLLM already runs on its CPU platform (the rollout's vLLM worker imports verl
for its worker extension before it loads the model). `evaluation.backends.vllm_offline` installs the
video fix itself. Both refuse a vLLM other than the one they were checked against (tests/test_vllm_cpu.py).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CHECKED_VLLM = "0.24.0"
QWEN25_VL_MODULE = "vllm.model_executor.models.qwen2_5_vl"
_PATCHED = "_medgrpo_patched"


class VLLMVersionError(RuntimeError):
    """The installed vLLM is not the version these fixes were checked against."""


def vllm_base_version() -> str:
    """The installed vLLM's version without its local tag (`0.24.0+cpu` -> `0.24.0`)."""
    return importlib.metadata.version("vllm").split("+", 1)[0]


def _require_checked_vllm(what: str) -> None:
    if vllm_base_version() != CHECKED_VLLM:
        raise VLLMVersionError(f"evaluation.backends.vllm_fixes was checked against vLLM {CHECKED_VLLM}, found "
                               f"{importlib.metadata.version('vllm')}: re-check {what} and update CHECKED_VLLM")


def _mark(function: Callable[..., Any]) -> Callable[..., Any]:
    setattr(function, _PATCHED, True)
    return function


# ---- video time for Qwen2.5-VL ---------------------------------------------------------------------------

def default_video_metadata(frames: Any) -> dict[str, Any]:
    """What transformers assumes for frames given without metadata (no fps: it then uses 24)."""
    count = len(frames)
    return {"total_num_frames": count, "fps": None, "frames_indices": list(range(count))}


def split_videos(videos: Sequence[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """`(frames, metadata)` items -> the frames and the HF processor's `video_metadata` (vLLM's loader
    adds a `do_sample_frames` key that is not metadata)."""
    frames, metadata = [], []
    for item in videos:
        video, meta = item if isinstance(item, tuple) else (item, None)
        frames.append(video)
        meta = default_video_metadata(video) if meta is None else meta
        metadata.append({key: value for key, value in meta.items() if key != "do_sample_frames"})
    return frames, metadata


def install_video_metadata() -> bool:
    """Give Qwen2.5-VL's HF processor in vLLM each video's metadata; True once installed (idempotent)."""
    _require_checked_vllm(f"{QWEN25_VL_MODULE} (its data parser and _call_hf_processor)")
    from vllm.model_executor.models import qwen2_5_vl

    info, processor = qwen2_5_vl.Qwen2_5_VLProcessingInfo, qwen2_5_vl.Qwen2_5_VLMultiModalProcessor
    if getattr(info.get_data_parser, _PATCHED, False):
        return True
    original_parser, original_call = info.get_data_parser, processor._call_hf_processor
    from vllm.multimodal.parse import MultiModalDataParser

    if "video_needs_metadata" not in inspect.signature(MultiModalDataParser.__init__).parameters:
        raise VLLMVersionError("vLLM's MultiModalDataParser has no `video_needs_metadata` any more: "
                               "re-check evaluation/backends/vllm_fixes.py")

    @functools.wraps(original_parser)
    def get_data_parser(self: Any) -> Any:
        parser = original_parser(self)
        parser.video_needs_metadata = True
        parser._get_video_with_metadata = _with_default_metadata(parser._get_video_with_metadata)
        return parser

    @functools.wraps(original_call)
    def call_hf_processor(self: Any, prompt: str, mm_data: Mapping[str, object], mm_kwargs: Mapping[str, object],
                          tok_kwargs: Mapping[str, object]) -> Any:
        videos = mm_data.get("videos")
        if videos:
            frames, metadata = split_videos(videos)  # type: ignore[arg-type]
            mm_data = {**mm_data, "videos": frames}
            mm_kwargs = {**mm_kwargs, "video_metadata": metadata}
        return original_call(self, prompt, mm_data, mm_kwargs, tok_kwargs)

    info.get_data_parser = _mark(get_data_parser)
    processor._call_hf_processor = _mark(call_hf_processor)
    return True


def _with_default_metadata(get: Callable[[Any], tuple[Any, Any]]) -> Callable[[Any], tuple[Any, Any]]:
    def get_video_with_metadata(video: Any) -> tuple[Any, Any]:
        frames, metadata = get(video)
        return frames, default_video_metadata(frames) if metadata is None else metadata

    return get_video_with_metadata


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `action` right after the module `name` is first imported (then removes itself)."""

    def __init__(self, name: str, action: Callable[[], Any]):
        self.name, self.action = name, action

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        execute, action = spec.loader.exec_module, self.action

        def exec_then_act(module: Any) -> None:
            execute(module)
            action()

        spec.loader.exec_module = exec_then_act  # type: ignore[method-assign]
        return spec


def install_video_metadata_on_import() -> None:
    """`install_video_metadata` now if vLLM's Qwen2.5-VL module is loaded, else right after it is."""
    if QWEN25_VL_MODULE in sys.modules:
        install_video_metadata()
    elif importlib.util.find_spec("vllm") is not None and not any(
            isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(QWEN25_VL_MODULE, install_video_metadata))


# ---- reloadable weights on vLLM-CPU ----------------------------------------------------------------------

def _keep_weight(dispatch: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(dispatch)
    def dispatch_keeping_weight(layer: Any, remove_weight: bool = False) -> None:
        dispatch(layer, remove_weight=False)

    return _mark(dispatch_keeping_weight)


def install_cpu_weights() -> bool:
    """Make vLLM-CPU keep linear weights after repacking; True once installed (idempotent).

    Raises VLLMVersionError when vLLM is not the checked version or its dispatch function changed shape:
    a silent no-op would bring back the weight-sync failure (or stale weights) in the middle of training.
    """
    _require_checked_vllm("vllm/model_executor/layers/utils.py (dispatch_cpu_unquantized_gemm)")
    from vllm.model_executor.layers import utils

    dispatch = utils.dispatch_cpu_unquantized_gemm
    if getattr(dispatch, _PATCHED, False):
        return True
    if "remove_weight" not in inspect.signature(dispatch).parameters:
        raise VLLMVersionError("vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm has no "
                               "`remove_weight` parameter any more: re-check evaluation/backends/vllm_fixes.py")
    utils.dispatch_cpu_unquantized_gemm = _keep_weight(dispatch)
    return True


def _on_cpu_platform() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


# Import-time hooks (verl's external modules).
install_video_metadata_on_import()
if "vllm" in sys.modules and _on_cpu_platform():
    install_cpu_weights()
