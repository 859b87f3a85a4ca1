"""vLLM backend (GPU): offline `vllm.LLM.generate` with qwen-vl-utils video inputs (Qwen's documented recipe).

Each prompt is `{"prompt": chat text, "multi_modal_data": {"video": [(frames, metadata)]},
"mm_processor_kwargs": {"do_sample_frames": False}}`; decoding is `SamplingParams(n, temperature,
max_tokens, seed)`, one per prompt; sampled requests get `sample_seed(seed, index, start)` (vLLM seeds
sample i with seed + i), so a sample does not depend on batching or resumes. Engine arguments go to
`vllm.LLM` (defaults below: one video per prompt, the VideoSpec's processor pixel bounds, all visible
GPUs for tensor parallelism, max_model_len 32768, `--seed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evaluation.backends import BackendConfig, BackendError, sample_seed, vision_inputs
from evaluation.backends.vllm_plan import engine_tp, load_config

if TYPE_CHECKING:
    from evaluation.infer_requests import Request

INSTALL_HINT = ("the vllm backend needs vLLM on a CUDA machine (pip install -r requirements-gpu.txt); "
                "use --backend transformers otherwise")


class VLLMBackend:
    """Generation with `vllm.LLM`."""

    def __init__(self, config: BackendConfig):
        try:
            import vllm
        except ImportError as exc:
            raise BackendError(f"{INSTALL_HINT} ({exc})") from None
        import torch
        from transformers import AutoProcessor

        self.config = config
        lo, hi = config.processor_pixels
        kwargs: dict[str, Any] = {
            "limit_mm_per_prompt": {"image": 0, "video": 1},
            "mm_processor_kwargs": {"min_pixels": lo, "max_pixels": hi},
            "tensor_parallel_size": engine_tp(load_config(config.model), torch.cuda.device_count()),  # vllm_plan.py
            "max_model_len": 32768,
            "seed": config.seed,
        }
        kwargs.update(config.engine_args)
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.llm = vllm.LLM(model=config.model, **kwargs)
        self._sampling_params = vllm.SamplingParams

    def _sampling(self, request: Request, n: int, start: int) -> Any:
        config = self.config
        seed = sample_seed(config.seed, request.index, start) if config.temperature > 0 else None
        return self._sampling_params(n=n, temperature=config.temperature, max_tokens=config.max_new_tokens, seed=seed)

    def generate(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[str]]:
        prompts = []
        for request in requests:
            text = self.processor.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True)
            videos, metadata = vision_inputs([request], self.config.spec.image_patch_size)
            prompts.append({"prompt": text, "multi_modal_data": {"video": list(zip(videos, metadata, strict=True))},
                            "mm_processor_kwargs": {"do_sample_frames": False}})
        sampling = [self._sampling(request, n, start) for request in requests]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return [[c.text for c in sorted(out.outputs, key=lambda c: c.index)] for out in outputs]
