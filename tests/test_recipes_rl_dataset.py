"""The RL dataset class of medgrpo_grpo (recipes/ext/rl_dataset.py): verl's prompt filter, chunked
with one progress line per chunk, keeps exactly the rows verl's own RLHFDataset keeps."""

from __future__ import annotations

import pytest

from recipes import dry_run
from recipes.ext import rl_dataset
from testbed.tiny_qwen import build_processor, build_tokenizer
from tests.test_recipes_dry_run import write_data, write_frames


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl_dataset")
    frames = write_frames(root)
    write_data(root / "data", frames)
    return root / "data" / "rl_train.parquet"


def test_recipe_names_the_progress_dataset():
    from verl.utils.dataset.rl_dataset import get_dataset_class

    cfg = dry_run.compose("medgrpo_grpo", [])
    assert get_dataset_class(cfg.data) is rl_dataset.ProgressRLDataset


def test_chunked_filter_keeps_what_verl_keeps_and_prints_progress(train_file, monkeypatch, capsys):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer)
    monkeypatch.setattr(rl_dataset, "MIN_CHUNK_ROWS", 2)
    for limit, expected in ((10_000, 5), (1, 0)):  # all rows fit / none fits
        config = OmegaConf.create({"prompt_key": "prompt", "video_key": "videos", "image_patch_size": 14,
                                   "max_prompt_length": limit, "filter_overlong_prompts": True,
                                   "filter_overlong_prompts_workers": 1})
        ours = rl_dataset.ProgressRLDataset(str(train_file), tokenizer, config, processor=processor)
        reference = RLHFDataset(str(train_file), tokenizer, config, processor=processor)
        assert len(ours) == len(reference) == expected
        assert [ours[i]["extra_info"]["index"] for i in range(len(ours))] == \
               [reference[i]["extra_info"]["index"] for i in range(len(reference))]
        out = capsys.readouterr().out
        progress = [line for line in out.splitlines() if "filter_overlong_prompts" in line and "checked" in line]
        assert [line.split(": ")[1].split(" ")[0] for line in progress] == ["2/5", "4/5", "5/5"], out
        assert f"filter dataset len: {expected} ({5 - expected} prompt(s) over the limit dropped)" in out
