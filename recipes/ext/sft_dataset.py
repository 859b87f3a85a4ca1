"""verl SFT dataset that gives the processor each video's fps, as the RL path does.

verl's `MultiTurnSFTDataset` decodes a `videos` item into a bare frame tensor, so the HF processor
falls back to its default fps (24): Qwen2.5-VL then gets `second_per_grid_ts` = 2/24 and one temporal
position for every frame, and Qwen3-VL writes wrong timestamps into the prompt. The RL path (verl's
`RLHFDataset` + agent loop) decodes the same item with qwen-vl-utils' `process_vision_info(...,
return_video_metadata=True)` and hands the processor `video_metadata` with `do_sample_frames=False`.

`VideoTimingSFTDataset` decodes videos and images with the RL dataset's own code
(`RLHFDataset._process_multi_modal_info`) and passes the resulting metadata to every processor call of
the SFT dataset (per-turn tokenization and the whole-conversation check). The sample's M-RoPE position
ids then come from the processor's `get_rope_index` (verl binds the model's to it; for Qwen2.5-VL the
released convention the rollout uses, evaluation/backends/qwen_positions.py) with that
`second_per_grid_ts`, not from verl's Qwen2-VL helper (which crashes on Qwen3-VL videos). Plug it in with

    data.custom_cls.path=pkg://recipes.ext.sft_dataset data.custom_cls.name=VideoTimingSFTDataset

(recipes/config/medgrpo_sft.yaml sets both).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.py_functional import convert_nested_value_to_list_recursive

from evaluation.backends.qwen_positions import use_released_positions

PLACEHOLDER = re.compile("(<image>|<video>)")
METADATA_KEY = "medgrpo_video_metadata"  # kept on the content item; the chat template ignores it


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def _vision_items(messages: list[dict], kind: str) -> Iterator[dict]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            yield from (item for item in content if isinstance(item, dict) and item.get("type") == kind)


def _concat_multimodal(parts: list[dict]) -> dict[str, torch.Tensor]:
    """Per-turn processor outputs joined along dim 0 (token-type ids and ragged keys dropped, as verl does)."""
    merged: dict[str, list] = {}
    for part in parts:
        for key, value in part.items():
            merged.setdefault(key, []).append(value)
    out = {}
    for key, values in merged.items():
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        if key == "mm_token_type_ids" or len(tensors) != len(values):
            continue
        if all(t.shape[1:] == tensors[0].shape[1:] for t in tensors):
            out[key] = torch.cat(tensors, dim=0)
    return out


def model_position_ids(processor: Any, input_ids: torch.Tensor, mm: dict[str, torch.Tensor]) -> torch.Tensor:
    """(4, seq): text positions, then the model's own M-RoPE rows from `get_rope_index` (bound to the
    processor by verl's `hf_processor`, as the agent loop uses it) with the video's `second_per_grid_ts`."""
    ids = input_ids.reshape(1, -1)
    types = torch.zeros_like(ids)
    for value, kind in ((1, "image"), (2, "video")):
        token = getattr(processor, f"{kind}_token_id", None)
        if token is not None:
            types[ids == token] = value
    kwargs = {key: mm[key] for key in ("image_grid_thw", "video_grid_thw", "second_per_grid_ts") if key in mm}
    vision, _ = processor.get_rope_index(input_ids=ids, mm_token_type_ids=types, **kwargs)
    text = torch.arange(ids.shape[1], dtype=torch.long).unsqueeze(0)
    return torch.cat((text, vision[:, 0].to(torch.long)), dim=0)


class VideoTimingSFTDataset(MultiTurnSFTDataset):
    """`MultiTurnSFTDataset` whose videos carry their fps / metadata to the processor (RL-identical)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        use_released_positions(self.processor, getattr(self.processor, "config", None))

    def __getitem__(self, item: int) -> dict:
        """verl's sample layout; position ids from the model's `get_rope_index` when verl bound one
        (verl's own Qwen2-VL helper continues text after a video from its largest temporal position and
        fails on Qwen3-VL's per-frame timestamps); otherwise verl's own `__getitem__`. A bad row raises
        one ValueError naming the file(s) and the row."""
        try:
            if not hasattr(self.processor, "get_rope_index"):
                return super().__getitem__(item)
            return self._sample(item)
        except ValueError as err:
            files = ", ".join(str(f) for f in self.parquet_files)
            raise ValueError(f"{files}: row {item}: {err}") from None

    def _sample(self, item: int) -> dict:
        messages = self._build_messages(self.dataframe.iloc[item].to_dict())
        tools = self.tools[item] if self.tools is not None else None
        thinking = self.enable_thinking[item] if self.enable_thinking is not None else self.enable_thinking_default
        thinking = None if thinking is None else bool(thinking)
        parts = [self._process_single_message(index=i, message=message, full_message=messages,
                                              tools=tools if i == 0 else None, enable_thinking=thinking)
                 for i, message in enumerate(messages)]
        input_ids, loss_mask, attention_mask = (torch.cat([p[k] for p in parts]) for k in range(3))
        self.sanity_check(input_ids, messages, tools, thinking)
        mm = _concat_multimodal([p[3] for p in parts])
        positions = model_position_ids(self.processor, input_ids, mm)
        sample = self._fit_length(input_ids, loss_mask, attention_mask, positions)
        if mm:
            sample["multi_modal_inputs"] = mm
        return sample

    def _fit_length(self, input_ids, loss_mask, attention_mask, position_ids) -> dict:
        """Pad (pad_mode right) or cut to data.max_length as verl's SFT dataset does."""
        n, limit = input_ids.shape[0], self.max_length
        if n > limit and self.truncation == "error":
            raise ValueError(f"{self.messages_key}: {n} tokens > data.max_length={limit} (truncation: error)")
        keep = slice(n - limit, n) if n > limit and self.truncation == "left" else slice(0, limit)
        input_ids, loss_mask, attention_mask = input_ids[keep], loss_mask[keep], attention_mask[keep]
        position_ids = position_ids[..., keep]
        if self.pad_mode != "right":
            return {"input_ids": input_ids, "position_ids": position_ids, "loss_mask": loss_mask}
        pad = limit - input_ids.shape[0]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return {"input_ids": torch.nn.functional.pad(input_ids, (0, pad), value=pad_id),
                "attention_mask": torch.nn.functional.pad(attention_mask, (0, pad), value=0),
                "position_ids": torch.nn.functional.pad(position_ids, (0, pad), value=0),
                "loss_mask": torch.nn.functional.pad(loss_mask, (0, pad), value=0)}

    def _build_messages(self, example: dict) -> list[dict]:
        messages: list[dict] = convert_nested_value_to_list_recursive(example[self.messages_key])
        images = convert_nested_value_to_list_recursive(example.get(self.image_key)) or []
        videos = convert_nested_value_to_list_recursive(example.get(self.video_key)) or []
        if not images and not videos:
            return super()._build_messages(example)
        if self.processor is None:
            raise ValueError("VideoTimingSFTDataset: rows with images/videos need a multimodal processor")
        queues = {"<image>": [("image", item) for item in images], "<video>": [("video", item) for item in videos]}
        for message in messages:
            if isinstance(message["content"], str):
                message["content"] = [self._content_item(segment, queues)
                                      for segment in PLACEHOLDER.split(message["content"]) if segment]
        unused = {tag: len(left) for tag, left in queues.items() if left}
        if unused:
            raise ValueError(f"{self.messages_key}: more media than placeholders ({unused} left over; "
                             f"{self.image_key}={len(images)}, {self.video_key}={len(videos)})")
        # Decode exactly as the RL path does (qwen-vl-utils, with video metadata).
        decoded_images, decoded_videos, _ = RLHFDataset._process_multi_modal_info(
            messages, image_patch_size=self.image_patch_size, config=None)
        for item, image in zip(_vision_items(messages, "image"), decoded_images or [], strict=True):
            item.clear()
            item.update(type="image", image=image)
        for item, (frames, metadata) in zip(_vision_items(messages, "video"), decoded_videos or [], strict=True):
            item.clear()
            item.update({"type": "video", "video": frames, METADATA_KEY: metadata})
        return messages

    def _content_item(self, segment: str, queues: dict[str, list[tuple[str, Any]]]) -> dict:
        if segment not in queues:
            return {"type": "text", "text": segment}
        if not queues[segment]:
            key = self.image_key if segment == "<image>" else self.video_key
            raise ValueError(f"{self.messages_key}: a {segment} placeholder has no item left in '{key}'")
        kind, value = queues[segment].pop(0)
        if isinstance(value, dict) and "bytes" in value:  # encoded image, as RLHFDataset reads it
            value = {**{k: v for k, v in value.items() if k != "bytes"}, kind: Image.open(BytesIO(value["bytes"]))}
        if isinstance(value, dict):
            return {"type": kind, **value}
        return {"type": kind, kind: value}

    @contextlib.contextmanager
    def _video_timing(self, messages: list[dict]) -> Iterator[None]:
        """Within the block, processor calls get the `video_metadata` of the videos in `messages`."""
        metadata = [item[METADATA_KEY] for item in _vision_items(messages, "video") if METADATA_KEY in item]
        if not metadata:
            yield
            return
        saved = self.apply_chat_template_kwargs
        kwargs = dict(_plain(saved) or {})
        processor_kwargs = dict(_plain(kwargs.get("processor_kwargs")) or {})
        processor_kwargs.update(video_metadata=metadata, do_sample_frames=False)
        kwargs["processor_kwargs"] = processor_kwargs
        self.apply_chat_template_kwargs = kwargs
        try:
            yield
        finally:
            self.apply_chat_template_kwargs = saved

    def _process_single_message(self, index: int, message: dict[str, Any], full_message: list, tools=None,
                                enable_thinking=None):
        with self._video_timing([message]):
            return super()._process_single_message(index, message, full_message, tools=tools,
                                                   enable_thinking=enable_thinking)

    def sanity_check(self, input_ids, messages: list[dict], tools: list[dict], enable_thinking: bool):
        with self._video_timing(messages):
            return super().sanity_check(input_ids, messages, tools, enable_thinking)
