"""vLLM backend (GPU): offline `vllm.LLM.generate` with qwen-vl-utils video inputs (Qwen's documented recipe).

Each prompt is `{"prompt": chat text, "multi_modal_data": {"video": [(frames, metadata)]},
"mm_processor_kwargs": {"do_sample_frames": False}}`; decoding is `SamplingParams(temperature=0,
max_tokens=...)`. Engine arguments go to `vllm.LLM` (defaults below: one video per prompt, the
VideoSpec's processor pixel bounds, all visible GPUs for tensor parallelism, max_model_len 32768).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evaluation.backends import BackendConfig, BackendError, vision_inputs

if TYPE_CHECKING:
    from evaluation.infer_requests import Request

INSTALL_HINT = ("the vllm backend needs vLLM on a CUDA machine (pip install -r requirements-gpu.txt); "
                "use --backend transformers otherwise")


class VLLMBackend:
    """Greedy generation with `vllm.LLM`."""

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
            "tensor_parallel_size": max(1, torch.cuda.device_count()),
            "max_model_len": 32768,
            "seed": 0,
        }
        kwargs.update(config.engine_args)
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.llm = vllm.LLM(model=config.model, **kwargs)
        self.sampling = vllm.SamplingParams(temperature=0, max_tokens=config.max_new_tokens)

    def generate(self, requests: Sequence[Request]) -> list[str]:
        prompts = []
        for request in requests:
            text = self.processor.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True)
            videos, metadata = vision_inputs([request], self.config.spec.image_patch_size)
            prompts.append({"prompt": text, "multi_modal_data": {"video": list(zip(videos, metadata, strict=True))},
                            "mm_processor_kwargs": {"do_sample_frames": False}})
        outputs = self.llm.generate(prompts, self.sampling, use_tqdm=False)
        return [out.outputs[0].text for out in outputs]
