"""The parquet files load through verl 0.9.1's own datasets with a tiny offline Qwen2.5-VL processor."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from data_preprocess.convert import ConvertConfig, convert
from data_preprocess.video_spec import VideoSpec
from testbed.toy import TOY_FILE


@pytest.fixture(scope="module")
def parquet_dir(toy_dataset_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("verl_parquet")
    convert(ConvertConfig(input=str(toy_dataset_dir / TOY_FILE), data_root=str(toy_dataset_dir),
                            out_dir=str(out), val_fraction=0.3))
    return out


@pytest.fixture(scope="module")
def processor(tiny_qwen25vl_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen25vl_dir)


def test_rlhf_dataset_yields_video_tokens(parquet_dir: Path, processor, tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    config = OmegaConf.create({"prompt_key": "prompt", "video_key": "videos", "max_prompt_length": 4096,
                               "filter_overlong_prompts": True, "filter_overlong_prompts_workers": 1,
                               "cache_dir": str(tmp_path / "cache")})
    dataset = RLHFDataset(str(parquet_dir / "rl_val.parquet"), processor.tokenizer, config, processor=processor)
    assert len(dataset) > 0  # nothing filtered: every prompt fits 4096 tokens
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    spec = VideoSpec()
    for i in range(min(len(dataset), 4)):
        row = dataset[i]
        messages = row["raw_prompt"]
        assert [c["type"] for c in messages[0]["content"]].count("video") == 1
        images, videos, _ = RLHFDataset._process_multi_modal_info(messages, 14, config)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos)
        n_tokens = int((inputs["input_ids"][0] == video_pad).sum())
        video = next(c for c in messages[0]["content"] if c["type"] == "video")
        width, height = Image.open(video["video"][0]).size
        assert n_tokens == spec.visual_tokens(len(video["video"]), height, width) > 0
        grid_t = int(inputs["video_grid_thw"][0][0])
        assert float(inputs["second_per_grid_ts"][0]) == pytest.approx(2 / video["sample_fps"])
        assert grid_t == -(-len(video["video"]) // 2)


def test_multiturn_sft_dataset(parquet_dir: Path, processor) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    config = OmegaConf.create({"messages_key": "messages", "video_key": "videos", "max_length": 4096,
                               "pad_mode": "no_padding", "truncation": "error"})
    dataset = MultiTurnSFTDataset(str(parquet_dir / "sft_val.parquet"), processor.tokenizer, config,
                                  processor=processor)
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    item = dataset[0]
    assert int((item["input_ids"] == video_pad).sum()) > 0
    assert int(item["loss_mask"].sum()) > 0  # the assistant answer is trained on
    assert "pixel_values_videos" in item["multi_modal_inputs"]
