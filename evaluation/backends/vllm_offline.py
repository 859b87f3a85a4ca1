"""vLLM backend: offline `vllm.LLM.generate` with qwen-vl-utils video inputs (Qwen's documented recipe).

Runs on GPUs and, through vLLM's CPU build (`bash run.sh setup` installs it), on the CPU. Each prompt is
`{"prompt": chat text, "multi_modal_data": {"video": [(frames, metadata)]}, "mm_processor_kwargs":
{"do_sample_frames": False}}`; decoding is `SamplingParams(n, temperature, max_tokens, seed)`, one per
prompt; sampled requests get `sample_seed(seed, index, start)` (vLLM seeds sample i with seed + i), so a
sample does not depend on batching or resumes. Engine arguments go to `vllm.LLM` (defaults below: one video
per prompt, the VideoSpec's processor pixel bounds, the largest tensor parallel size over the visible GPUs
that divides the model's heads (vllm_plan.py), `max_model_len`
32768 or the model's own limit if smaller, `--seed`; on CPU also eager mode and no chunked prefill, which
seeded sampling on CPU needs). Settings the engine cannot honour are refused up front with the reason.
vLLM 0.24.0 would drop a Qwen2.5-VL clip's frame metadata and place its time positions as if it ran at
24 fps; the backend installs evaluation/backends/vllm_fixes.py's video fix first, so they follow the clip's fps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.backends import BackendConfig, BackendError, cut_at_stop, decode, sample_seed, vision_inputs
from evaluation.backends.vllm_plan import engine_tp

if TYPE_CHECKING:
    from evaluation.infer_requests import Request

INSTALL_HINT = ("the vllm backend needs vLLM (GPU: pip install -r requirements-gpu.txt; CPU: `bash run.sh setup` "
                "installs vLLM's CPU build); or use --backend transformers")
DEFAULT_MAX_MODEL_LEN = 32768


def local_config(model: str) -> dict[str, Any]:
    """The model folder's config.json ({} when it is not a local folder: vLLM resolves it itself)."""
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def model_max_len(config: dict[str, Any]) -> int | None:
    """The longest sequence a checkpoint's config allows (text `max_position_embeddings`), if it says."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    value = text.get("max_position_embeddings", config.get("max_position_embeddings"))
    return value if isinstance(value, int) and value > 0 else None


def engine_kwargs(config: BackendConfig, on_cpu: bool, gpus: int) -> dict[str, Any]:
    """`vllm.LLM` arguments: the defaults, the user's `--engine-arg`s, and the checks they must pass."""
    lo, hi = config.processor_pixels
    model_config = local_config(config.model)
    limit = model_max_len(model_config)
    kwargs: dict[str, Any] = {
        "limit_mm_per_prompt": {"image": 0, "video": 1},
        "mm_processor_kwargs": {"min_pixels": lo, "max_pixels": hi},
        # the largest size dividing every head count (evaluation/backends/vllm_plan.py)
        "tensor_parallel_size": engine_tp(model_config, gpus),
        "max_model_len": min(DEFAULT_MAX_MODEL_LEN, limit) if limit else DEFAULT_MAX_MODEL_LEN,
        "seed": config.seed,
    }
    if on_cpu:
        kwargs.update(enforce_eager=True, enable_chunked_prefill=False, tensor_parallel_size=1)
    kwargs.update(config.engine_args)
    problems = []
    wanted = kwargs["max_model_len"]
    if limit and isinstance(wanted, int) and wanted > limit:
        problems.append(f"max_model_len={wanted} is more than the model can hold (max_position_embeddings {limit} "
                        f"in {config.model}/config.json): pass --engine-arg max_model_len=<= {limit}")
    if on_cpu and config.temperature > 0 and kwargs.get("enable_chunked_prefill"):
        problems.append("seeded sampling (--temperature > 0) on vLLM's CPU build needs chunked prefill off "
                        "(its CPU sampler cannot offset a seeded generator): drop enable_chunked_prefill=true")
    if problems:
        raise BackendError("vllm backend: " + "; ".join(problems))
    return kwargs


class VLLMBackend:
    """Generation with `vllm.LLM`."""

    def __init__(self, config: BackendConfig):
        try:
            import vllm
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise BackendError(f"{INSTALL_HINT} ({exc})") from None
        import torch
        from transformers import AutoProcessor

        from evaluation.backends.vllm_fixes import install_video_metadata

        install_video_metadata()
        self.config = config
        kwargs = engine_kwargs(config, current_platform.is_cpu(), torch.cuda.device_count())
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.llm = vllm.LLM(model=config.model, **kwargs)
        self._sampling_params = vllm.SamplingParams
        eos = self.llm.get_tokenizer().eos_token_id
        self._stops = {eos} if eos is not None else set()

    def _sampling(self, request: Request, n: int, start: int) -> Any:
        config = self.config
        seed = sample_seed(config.seed, request.index, start) if config.temperature > 0 else None
        return self._sampling_params(n=n, temperature=config.temperature, max_tokens=config.max_new_tokens, seed=seed)

    def generate_ids(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[list[int]]]:
        prompts = []
        for request in requests:
            text = self.processor.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True)
            videos, metadata = vision_inputs([request], self.config.spec.image_patch_size)
            prompts.append({"prompt": text, "multi_modal_data": {"video": list(zip(videos, metadata, strict=True))},
                            "mm_processor_kwargs": {"do_sample_frames": False}})
        sampling = [self._sampling(request, n, start) for request in requests]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return [[cut_at_stop(c.token_ids, self._stops) for c in sorted(out.outputs, key=lambda c: c.index)]
                for out in outputs]

    def generate(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[str]]:
        return decode(self.processor.tokenizer, self.generate_ids(requests, n, start))
