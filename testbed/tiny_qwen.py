"""Build a tiny random Qwen2.5-VL or Qwen3-VL (model + processor) offline, in seconds, into a directory.

Usable from the command line: `python -m testbed.tiny_qwen OUT_DIR [qwen2_5_vl|qwen3_vl]`. Both
load in transformers and in vLLM (CPU build included). The tokenizer is a small
byte-level BPE holding the Qwen special tokens and the Qwen2-VL chat template; the video processor
uses the MedGRPO per-frame pixel bounds (8*28*28 .. 48*28*28) unless told otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = (
    "You are a helpful assistant. system user assistant seconds: When does the action take place? "
    "Describe the object inside the green box. Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0. "
    "Respect for tissue: 2/5 0.0-12.0 seconds: [10, 20, 30, 40] the surgeon grasper knife forceps tissue "
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;!?-'\"()[]{}/\n"
)


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([_CORPUS] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=list(SPECIAL_TOKENS[1:]))
    fast.chat_template = CHAT_TEMPLATE
    return fast


FAMILIES = ("qwen2_5_vl", "qwen3_vl")
# Text attention: 2 heads of size 32 (vLLM's CPU attention needs a head size >= 32); the M-RoPE sections
# (temporal, height, width) must sum to head_dim / 2.
_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
         "num_key_value_heads": 1, "head_dim": 32, "max_position_embeddings": 4096}
MROPE_SECTION = [4, 6, 6]
_VISION = {"depth": 2, "hidden_size": 64, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
           "spatial_merge_size": 2, "temporal_patch_size": 2}


def build_processor(tokenizer, min_pixels: int = 8 * 28 * 28, max_pixels: int = 48 * 28 * 28,
                    family: str = "qwen2_5_vl", max_frames: int = 64):
    """The family's real HF processor around `tokenizer` (per-frame pixel bounds; Qwen3-VL: patch 16)."""
    from transformers import (
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    patch = 16 if family == "qwen3_vl" else 14
    grid = {"patch_size": patch, "merge_size": 2, "temporal_patch_size": 2}
    image = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, **grid)
    if family == "qwen3_vl":
        # Qwen3-VL's video processor bounds the whole clip (pixels x frames), not one frame.
        video = Qwen3VLVideoProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels * max_frames},
                                      **grid)
        return Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                                chat_template=CHAT_TEMPLATE)
    video = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels, **grid)
    return Qwen2_5_VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                               chat_template=CHAT_TEMPLATE)


def build_config(tokenizer, family: str = "qwen2_5_vl"):
    """A tiny config of `family` whose weights both transformers and vLLM load."""
    from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text = {**_TEXT, "vocab_size": len(tokenizer), "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    if family == "qwen3_vl":
        return Qwen3VLConfig(
            text_config={**text, "rope_scaling": {"rope_type": "default", "mrope_section": MROPE_SECTION,
                                                  "mrope_interleaved": True}},
            vision_config={**_VISION, "patch_size": 16, "num_position_embeddings": 256,
                           "deepstack_visual_indexes": [0]},
            tie_word_embeddings=False, **ids)
    if family != "qwen2_5_vl":
        raise ValueError(f"unknown tiny model family {family!r}; known: {FAMILIES}")
    return Qwen2_5_VLConfig(
        text_config={**text, "rope_scaling": {"type": "mrope", "mrope_section": MROPE_SECTION}},
        vision_config={**_VISION, "patch_size": 14, "window_size": 112, "fullatt_block_indexes": [1]},
        **ids)


# Standard deviation of the text attention's query/key weights. At the usual 0.02 the attention is
# near-uniform, so the model barely depends on token positions: vLLM placing a 4-frame clip's time
# positions wrongly moved a prompt's log-probs by 1e-3 at most; at 0.2 by up to 0.18, and train-smoke's
# rollout/actor check (at most 1e-4) then sees it: 7e-4 to 9e-4 with the bug, 1.4e-5 without.
QK_STD = 0.2


def build_model(tokenizer, family: str = "qwen2_5_vl"):
    """The tiny model of `family` with seeded random weights (float32), position-sensitive attention."""
    import torch
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(build_config(tokenizer, family), dtype=torch.float32).eval()
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "language_model" in name and name.endswith(("q_proj.weight", "k_proj.weight")):
                weight.normal_(0.0, QK_STD)
    return model


def build_tiny_qwen(out_dir: str | Path, family: str = "qwen2_5_vl", with_model: bool = True,
                    **processor_kwargs) -> Path:
    """Save a tiny random Qwen-VL of `family` (processor, tokenizer and, unless told not to, the model)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    build_processor(tokenizer, family=family, **processor_kwargs).save_pretrained(out)
    tokenizer.save_pretrained(out)
    if with_model:
        build_model(tokenizer, family).save_pretrained(out)
    else:
        build_config(tokenizer, family).save_pretrained(out)
    return out


def build_tiny_qwen25vl(out_dir: str | Path, with_model: bool = True, **processor_kwargs) -> Path:
    """Save a tiny random Qwen2.5-VL (see build_tiny_qwen)."""
    return build_tiny_qwen(out_dir, "qwen2_5_vl", with_model, **processor_kwargs)


if __name__ == "__main__":
    family = sys.argv[2] if len(sys.argv) > 2 else "qwen2_5_vl"
    print(build_tiny_qwen(sys.argv[1] if len(sys.argv) > 1 else f"tiny_{family}", family))
