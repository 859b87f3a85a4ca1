"""verl SFT dataset that gives the processor each video's fps, as the RL path does.

verl's `MultiTurnSFTDataset` decodes a `videos` item into a bare frame tensor, so the HF processor
falls back to its default fps (24): Qwen2.5-VL then gets `second_per_grid_ts` = 2/24 and one temporal
position for every frame, and Qwen3-VL writes wrong timestamps into the prompt. The RL path (verl's
`RLHFDataset` + agent loop) decodes the same item with qwen-vl-utils' `process_vision_info(...,
return_video_metadata=True)` and hands the processor `video_metadata` with `do_sample_frames=False`.

`VideoTimingSFTDataset` decodes videos and images with the RL dataset's own code
(`RLHFDataset._process_multi_modal_info`) and passes the resulting metadata to every processor call of
the SFT dataset (per-turn tokenization and the whole-conversation check). Plug it in with

    data.custom_cls.path=pkg://recipes.ext.sft_dataset data.custom_cls.name=VideoTimingSFTDataset

(recipes/config/medgrpo_sft.yaml sets both).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.py_functional import convert_nested_value_to_list_recursive

PLACEHOLDER = re.compile("(<image>|<video>)")
METADATA_KEY = "medgrpo_video_metadata"  # kept on the content item; the chat template ignores it


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def _vision_items(messages: list[dict], kind: str) -> Iterator[dict]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            yield from (item for item in content if isinstance(item, dict) and item.get("type") == kind)


class VideoTimingSFTDataset(MultiTurnSFTDataset):
    """`MultiTurnSFTDataset` whose videos carry their fps / metadata to the processor (RL-identical)."""

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
