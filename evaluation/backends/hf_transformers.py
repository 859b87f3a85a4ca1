"""Transformers backend (CPU or GPU): `AutoModelForImageTextToText` + `AutoProcessor`, batched.

Greedy at temperature 0; otherwise `do_sample` with `num_return_sequences=n` (top-p 1, no top-k) after
`torch.manual_seed(seed)` once, so a run is reproducible for the same batches.

Engine arguments go to `from_pretrained` (e.g. `dtype=bfloat16`, `attn_implementation=flash_attention_2`),
except `device` (default: cuda when available, else cpu).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evaluation.backends import BackendConfig, cut_at_stop, decode, vision_inputs
from evaluation.backends.qwen_positions import use_released_positions

if TYPE_CHECKING:
    from evaluation.infer_requests import Request


class TransformersBackend:
    """Generation with a Hugging Face Qwen-VL checkpoint."""

    def __init__(self, config: BackendConfig):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

        self.config = config
        kwargs = dict(config.engine_args)
        self.device = kwargs.pop("device", "cuda" if torch.cuda.is_available() else "cpu")
        kwargs.setdefault("dtype", "auto")
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.processor.tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        self.model = AutoModelForImageTextToText.from_pretrained(config.model, **kwargs).to(self.device).eval()
        use_released_positions(getattr(self.model, "model", None), self.model.config)  # Qwen2.5-VL: as vLLM
        base = self.model.generation_config
        tokenizer = self.processor.tokenizer
        # a fresh config: not the checkpoint's sampling / repetition-penalty defaults
        sampling = (dict(do_sample=True, temperature=config.temperature, top_p=1.0, top_k=0)
                    if config.temperature > 0 else dict(do_sample=False))
        self.generation = GenerationConfig(
            max_new_tokens=config.max_new_tokens, num_beams=1, **sampling,
            eos_token_id=base.eos_token_id if base.eos_token_id is not None else tokenizer.eos_token_id,
            pad_token_id=base.pad_token_id if base.pad_token_id is not None else tokenizer.pad_token_id,
            bos_token_id=base.bos_token_id)
        self._torch = torch
        if config.temperature > 0:
            torch.manual_seed(config.seed)

    def prepare_inputs(self, requests: Sequence[Request]) -> Any:
        """The processor's batch for `requests` (chat text + frames with their metadata), on the device."""
        processor = self.processor
        texts = [processor.apply_chat_template(r.messages(), tokenize=False, add_generation_prompt=True)
                 for r in requests]
        videos, metadata = vision_inputs(requests, self.config.spec.image_patch_size)
        lo, hi = self.config.processor_pixels
        inputs = processor(text=texts, videos=videos or None, video_metadata=metadata or None,
                           do_sample_frames=False, min_pixels=lo, max_pixels=hi, padding=True, return_tensors="pt")
        return inputs.to(self.device)

    def generate_ids(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[list[int]]]:
        if not requests:
            return []
        inputs = self.prepare_inputs(requests)
        generation = copy.copy(self.generation)
        generation.num_return_sequences = n
        with self._torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=generation)
        new_tokens = output[:, inputs["input_ids"].shape[1]:].tolist()  # request-major: n rows per request
        stops = {generation.eos_token_id} if isinstance(generation.eos_token_id, int) else set(generation.eos_token_id)
        rows = [cut_at_stop(row, stops) for row in new_tokens]
        return [rows[i:i + n] for i in range(0, len(rows), n)]

    def generate(self, requests: Sequence[Request], n: int = 1, start: int = 0) -> list[list[str]]:
        return decode(self.processor.tokenizer, self.generate_ids(requests, n, start))
