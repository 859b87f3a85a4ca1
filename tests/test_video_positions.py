"""Qwen2.5-VL position ids of the actor side (evaluation/backends/qwen_positions.py).

Where transformers 5.9's `get_rope_index` and the released convention agree (text and images, a clip
whose time positions stay within its spatial extent, whole-second steps) the two are equal; where they
do not (text after a long clip, fractional time steps) the released convention is the one vLLM computes
(the cross-check against vLLM itself is tests/test_vllm_cpu.py).
"""

from __future__ import annotations

import pytest
import torch

from evaluation.backends.qwen_positions import rope_index, use_released_positions
from testbed.tiny_qwen import build_config, build_tokenizer

MERGE = 2


@pytest.fixture(scope="module")
def config():
    return build_config(build_tokenizer(), "qwen2_5_vl")


@pytest.fixture(scope="module")
def stock(config):
    from transformers import Qwen2_5_VLModel

    return Qwen2_5_VLModel(config).get_rope_index


def _ids(config, pieces: list[tuple[str, int]]) -> torch.Tensor:
    """A 1-row sequence: ("text", n) -> n text tokens, ("image"/"video", n) -> n vision tokens."""
    token = {"text": 5, "image": config.image_token_id, "video": config.video_token_id}
    return torch.tensor([[token[kind] for kind, count in pieces for _ in range(count)]])


def _types(config, ids: torch.Tensor) -> torch.Tensor:
    types = torch.zeros_like(ids)
    types[ids == config.image_token_id] = 1
    types[ids == config.video_token_id] = 2
    return types


def _both(config, stock, ids, **grids):
    ours, our_delta = rope_index(config, ids, **grids)
    theirs, their_delta = stock(ids, _types(config, ids), **grids)
    return ours, theirs, our_delta, their_delta


def test_text_and_images_match_transformers(config, stock) -> None:
    ids = _ids(config, [("text", 3), ("image", 6), ("text", 4), ("image", 4), ("text", 2)])
    grids = {"image_grid_thw": torch.tensor([[1, 4, 6], [1, 4, 4]])}
    ours, theirs, our_delta, their_delta = _both(config, stock, ids, **grids)
    assert torch.equal(ours, theirs) and torch.equal(our_delta, their_delta)


def test_a_short_clip_with_whole_second_steps_matches_transformers(config, stock) -> None:
    ids = _ids(config, [("text", 3), ("video", 2 * 4), ("text", 5)])  # 2 temporal patches of 2 x 2
    grids = {"video_grid_thw": torch.tensor([[2, 4, 4]]), "second_per_grid_ts": torch.tensor([1.0])}
    config.vision_config.tokens_per_second, saved = 1, config.vision_config.tokens_per_second
    try:
        ours, theirs, _, _ = _both(config, stock, ids, **grids)
    finally:
        config.vision_config.tokens_per_second = saved
    assert torch.equal(ours, theirs)


def test_text_after_a_long_clip_continues_after_its_last_time_position(config, stock) -> None:
    ids = _ids(config, [("text", 2), ("video", 3 * 4), ("text", 3)])  # 3 temporal patches, 2 s each
    grids = {"video_grid_thw": torch.tensor([[3, 4, 4]]), "second_per_grid_ts": torch.tensor([2.0])}
    ours, theirs, _, _ = _both(config, stock, ids, **grids)
    step = 2 * config.vision_config.tokens_per_second
    video = ours[0, 0, 2:14].tolist()
    assert sorted(set(video)) == [2, 2 + step, 2 + 2 * step]
    assert ours[:, 0, 14].tolist() == [2 + 2 * step + 1] * 3  # the first text token after the clip
    assert not torch.equal(ours, theirs)  # transformers 5.9 resumes at 2 + max(h, w) / merge


def test_fractional_time_steps_are_truncated_after_scaling(config, stock) -> None:
    ids = _ids(config, [("video", 4 * 4)])  # 4 temporal patches at 4 fps: 0.5 s each
    grids = {"video_grid_thw": torch.tensor([[4, 4, 4]]), "second_per_grid_ts": torch.tensor([0.5])}
    ours, theirs, _, _ = _both(config, stock, ids, **grids)
    per_patch = 0.5 * config.vision_config.tokens_per_second
    assert sorted(set(ours[0, 0].tolist())) == [int(k * per_patch) for k in range(4)]
    assert len(set(theirs[0, 0].tolist())) < len(set(ours[0, 0].tolist()))  # transformers 5.9 collapses them


def test_padding_is_left_out_and_rows_are_independent(config) -> None:
    row = _ids(config, [("text", 2), ("video", 8), ("text", 2)])[0]
    padded = torch.stack([torch.cat([torch.zeros(3, dtype=torch.long), row]),  # left padding
                          torch.cat([torch.full((3,), 5), row])])  # 3 more text tokens
    mask = torch.tensor([[0, 0, 0] + [1] * 12, [1] * 15])
    grids = {"video_grid_thw": torch.tensor([[2, 4, 4], [2, 4, 4]]), "second_per_grid_ts": torch.tensor([1.0, 1.0])}
    positions, deltas = rope_index(config, padded, attention_mask=mask, **grids)
    alone, alone_delta = rope_index(config, row[None], video_grid_thw=grids["video_grid_thw"][:1],
                                    second_per_grid_ts=torch.tensor([1.0]))
    assert torch.equal(positions[:, 0, 3:], alone[:, 0]) and positions[:, 0, :3].eq(0).all()
    assert positions[:, 1, :3].tolist() == [[0, 1, 2]] * 3
    assert deltas[0].item() == alone_delta.item()


def test_vision_tokens_that_do_not_fill_their_grid_are_an_error(config) -> None:
    ids = _ids(config, [("text", 2), ("video", 6)])
    with pytest.raises(ValueError, match=r"6 vision tokens where the grid \[2, 4, 4\] needs 8"):
        rope_index(config, ids, video_grid_thw=torch.tensor([[2, 4, 4]]), second_per_grid_ts=torch.tensor([1.0]))


def test_only_qwen25vl_gets_the_released_convention(config) -> None:
    class Owner:
        get_rope_index = None

    qwen3 = build_config(build_tokenizer(), "qwen3_vl")
    owner = Owner()
    assert not use_released_positions(owner, qwen3) and owner.get_rope_index is None
    assert use_released_positions(owner, config) and owner.get_rope_index.func is rope_index
