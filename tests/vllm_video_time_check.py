"""Video time positions in vLLM vs transformers for Qwen2.5-VL clips (run by tests/test_vllm_cpu.py).

    python -m tests.vllm_video_time_check MODEL_DIR FRAMES_DIR OUT.json

Builds one vLLM-CPU engine in-process with evaluation/backends/vllm_fixes installed the way the recipes load it
(imported before vLLM, so its post-import hook must fire), then for clips of several frame counts and
fps (given as `(frames, metadata)` the way verl and evaluation.infer pass them) records the prompt's
M-RoPE positions as computed by:
- `vllm`: the rollout (vLLM's model runner);
- `actor`: the processor with the frame metadata and the released convention the actor side uses
  (evaluation/backends/qwen_positions.py, installed on the model as the transformers backend does);
- `transformers`: transformers 5.9's own `get_rope_index` (what the actor used before);
- `no_metadata`: the actor's convention without the frame metadata (vLLM 0.24.0 without the fix).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
CLIPS = ((4, 1.0), (4, 2.0), (6, 0.5), (6, 4.0), (2, 1.0))  # (frames, fps)


def messages(frames: list[str], fps: float) -> list[dict[str, Any]]:
    video = {"type": "video", "video": frames, "sample_fps": fps, "min_pixels": 3136, "max_pixels": 12544}
    return [{"role": "user", "content": [video, {"type": "text", "text": "When does the action happen?"}]}]


def hf_positions(rope_index: Any, processor: Any, text: str, video: Any, metadata: dict | None) -> list[list[int]]:
    kwargs = {"video_metadata": [metadata]} if metadata is not None else {}
    inputs = processor(text=[text], videos=[video], do_sample_frames=False, return_tensors="pt", **kwargs)
    positions, _ = rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
        second_per_grid_ts=inputs["second_per_grid_ts"], attention_mask=inputs["attention_mask"])
    return positions[:, 0, :].tolist()


def main(model_dir: str, frames_dir: str, out: str) -> None:
    importlib.import_module("evaluation.backends.vllm_fixes")  # as VERL_USE_EXTERNAL_MODULES does: before vLLM
    import torch
    import vllm
    from qwen_vl_utils import process_vision_info
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from vllm.model_executor.models import qwen2_5_vl

    from evaluation.backends.qwen_positions import use_released_positions

    seen: list[list[list[int]]] = []
    compute = qwen2_5_vl.Qwen2_5_VLForConditionalGeneration.get_mrope_input_positions

    def recording(self: Any, input_tokens: list[int], mm_features: Any, *args: Any, **kwargs: Any) -> Any:
        positions, delta = compute(self, input_tokens, mm_features, *args, **kwargs)
        seen.append(positions.tolist())
        return positions, delta

    qwen2_5_vl.Qwen2_5_VLForConditionalGeneration.get_mrope_input_positions = recording
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    stock = model.model.get_rope_index
    use_released_positions(model.model, model.config)
    actor = model.model.get_rope_index
    llm = vllm.LLM(model=model_dir, max_model_len=4096, enforce_eager=True, dtype="float32",
                   limit_mm_per_prompt={"image": 0, "video": 1})
    frames = sorted(f"file://{path}" for path in Path(frames_dir).glob("*.png"))
    report = []
    for count, fps in CLIPS:
        chat = messages(frames[:count], fps)
        _, items = process_vision_info(chat, image_patch_size=14, return_video_metadata=True)
        video, metadata = items[0]
        text = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        seen.clear()
        llm.generate([{"prompt": text, "multi_modal_data": {"video": items},
                       "mm_processor_kwargs": {"do_sample_frames": False}}],
                     vllm.SamplingParams(max_tokens=1), use_tqdm=False)
        positions = hf_positions(actor, processor, text, video, metadata)
        report.append({"frames": count, "fps": fps, "actor": positions,
                       "vllm": [row[:len(positions[0])] for row in seen[0]],
                       "transformers": hf_positions(stock, processor, text, video, metadata),
                       "no_metadata": hf_positions(actor, processor, text, video, None)})
    Path(out).write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
