"""Token-in/token-out generation with a Hugging Face Qwen-VL model, as verl's vLLM server does it.

The agent loop hands over prompt ids with the vision placeholders already expanded, the frames with
their metadata (``(frames, {"fps": ..., ...})`` from qwen-vl-utils) and the data config's
``mm_processor_kwargs``. The model's processor turns the frames into ``pixel_values_videos``,
``video_grid_thw`` and ``second_per_grid_ts`` from that same metadata (verl's
``build_multimodal_processor_inputs``, ``do_sample_frames=False``), and the number of vision tokens
they make must equal the prompt's, so the rollout sees exactly the video the trainer scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs, get_processor_token_id
from verl.workers.rollout.utils import get_vision_placeholder_token_ids

_NON_MODEL_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


@dataclass
class GenerateRequest:
    """One generate call of verl's agent loop (see ``vLLMHttpServer.generate``)."""

    prompt_ids: list[int]
    sampling_params: dict[str, Any]
    images: list[Any] | None = None
    videos: list[Any] | None = None
    mm_processor_kwargs: dict[str, Any] = field(default_factory=dict)


class HFGenerator:
    """An HF image-text-to-text model and its processor, on CPU, in float32."""

    def __init__(self, model_path: str, prompt_length: int, response_length: int, trust_remote_code: bool = False):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_path, dtype=torch.float32, trust_remote_code=trust_remote_code).eval()
        self.prompt_length = prompt_length
        self.response_length = response_length
        tokenizer = self.processor.tokenizer
        generation = self.model.generation_config
        self.eos_token_id = generation.eos_token_id if generation.eos_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # As verl's vLLM server: a sampled image/video placeholder has no media behind it (it breaks the
        # trainer's rope index), and ids past the tokenizer's vocabulary decode to nothing.
        vocab = self.model.get_output_embeddings().weight.shape[0]
        self.banned_token_ids = sorted(set(get_vision_placeholder_token_ids(self.processor))
                                       | set(range(len(tokenizer), vocab)))

    def vision_inputs(self, request: GenerateRequest) -> dict[str, torch.Tensor]:
        """Processor outputs for the request's images/videos; their placeholder counts must match the prompt's.

        The processor runs on a bare text of one placeholder per image and video (the prompt the agent
        loop sent is already expanded: Qwen3-VL's carries frame timestamps that cannot be re-expanded).
        """
        if not request.images and not request.videos:
            return {}
        tokenizer = self.processor.tokenizer
        counts = {"image": len(request.images or []), "video": len(request.videos or [])}
        ids = {kind: get_processor_token_id(self.processor, kind) for kind in counts}
        text = "".join(tokenizer.convert_ids_to_tokens(ids[kind]) * n for kind, n in counts.items() if n)
        inputs = build_multimodal_processor_inputs(
            self.processor, text=[text], images=request.images or None, videos=request.videos or None,
            mm_processor_kwargs=request.mm_processor_kwargs)
        expanded = inputs["input_ids"][0].tolist()
        for kind, token in ids.items():
            if token is not None and expanded.count(token) != request.prompt_ids.count(token):
                raise ValueError(f"the processor gives {expanded.count(token)} {kind} tokens, the agent loop's "
                                 f"prompt has {request.prompt_ids.count(token)}: video settings differ between "
                                 "rollout and trainer")
        model_inputs = {key: value for key, value in inputs.items() if key not in _NON_MODEL_KEYS}
        if "mm_token_type_ids" in inputs:  # transformers 5: the rope index finds the media by these (as in verl)
            types = torch.zeros((1, len(request.prompt_ids)), dtype=torch.long)
            prompt = torch.tensor(request.prompt_ids)
            for code, kind in ((1, "image"), (2, "video")):
                if ids[kind] is not None:
                    types[0, prompt == ids[kind]] = code
            model_inputs["mm_token_type_ids"] = types
        return model_inputs

    def generation_kwargs(self, request: GenerateRequest) -> dict[str, Any]:
        """verl's sampling params (vLLM names) as `generate` arguments; temperature 0 is greedy."""
        params = request.sampling_params
        budget = self.prompt_length + self.response_length - len(request.prompt_ids)
        max_tokens = params.get("max_tokens", params.get("max_new_tokens", min(self.response_length, budget)))
        kwargs: dict[str, Any] = dict(max_new_tokens=max(1, int(max_tokens)), num_beams=1,
                                      eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
                                      suppress_tokens=self.banned_token_ids or None,
                                      repetition_penalty=float(params.get("repetition_penalty", 1.0)))
        temperature = float(params.get("temperature", 1.0))
        if temperature > 0:
            top_k = int(params.get("top_k", -1))
            kwargs.update(do_sample=True, temperature=temperature, top_p=float(params.get("top_p", 1.0)),
                          top_k=top_k if top_k > 0 else 0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    @torch.inference_mode()
    def generate(self, request: GenerateRequest) -> tuple[list[int], list[float] | None, str]:
        """(response ids, their log-probs if asked for, stop reason) for one request."""
        input_ids = torch.tensor([request.prompt_ids], dtype=torch.long)
        want_logprobs = bool(request.sampling_params.get("logprobs"))
        output = self.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **self.vision_inputs(request),
            **self.generation_kwargs(request), return_dict_in_generate=True, output_logits=want_logprobs)
        response = output.sequences[0, input_ids.shape[1]:].tolist()
        log_probs = None
        if want_logprobs:
            logits = torch.stack(output.logits, dim=1)[0].float()
            log_probs = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(response)[:, None])[:, 0].tolist()
        return response, log_probs, "completed"

    def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> int:
        """Copy the trainer's tensors (HF names) into the model; an unknown name is an error."""
        state = self.model.state_dict()
        unknown = [name for name, _ in named_tensors if name not in state]
        if unknown:
            raise KeyError(f"actor weights not in the rollout model: {unknown[:5]} ({len(unknown)} in all)")
        with torch.no_grad():
            for name, tensor in named_tensors:
                state[name].copy_(tensor.to(state[name].dtype))
        return len(named_tensors)
