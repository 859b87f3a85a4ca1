"""Qwen2.5-VL's M-RoPE position ids as the model was released with them (and as vLLM computes them).

transformers 5.9's `Qwen2_5_VLModel.get_rope_index` departs from that for videos in two ways:
- text after a video continues at the video's start + max(height, width) / merge instead of after the
  video's largest position, so when a clip's time positions run past its spatial extent (4 frames at
  1 fps already do), the following text reuses positions the clip holds;
- it truncates each video's `second_per_grid_ts` to an integer before scaling it by `tokens_per_second`,
  so a clip above 2 fps gets one time position for all its frames (huggingface/transformers#48669).
vLLM 0.24 (like Qwen's own code) continues after the largest position and truncates only the scaled
index. GRPO needs the actor's positions to be the rollout's, so every place that computes positions
on the transformers side (verl's agent loop, the SFT dataset, the transformers backend's generation)
uses `rope_index` here (`use_released_positions`). Other model families keep their own.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

FAMILY = "qwen2_5_vl"


def _sequence_positions(ids: torch.Tensor, config: Any, grids: dict[int, list[torch.Tensor]],
                        seconds: list[float]) -> torch.Tensor:
    """(3, len(ids)) positions of one unpadded sequence; `grids` and `seconds` are consumed in order."""
    vision = config.vision_config
    merge = vision.spatial_merge_size
    kinds = torch.zeros_like(ids)
    kinds[ids == config.image_token_id] = 1
    kinds[ids == config.video_token_id] = 2
    pieces: list[torch.Tensor] = []
    start, index, total = 0, 0, len(ids)
    while index < total:
        kind, end = int(kinds[index]), index
        while end < total and int(kinds[end]) == kind:
            end += 1
        if kind == 0:
            pieces.append(torch.arange(end - index).expand(3, -1) + start)
        else:
            t, h, w = (int(v) for v in grids[kind].pop(0))
            h, w = h // merge, w // merge
            grid = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"))
            if kind == 2:  # time: patch index x seconds per patch x tokens per second, truncated last
                grid[0] = (grid[0] * (seconds.pop(0) * vision.tokens_per_second)).long()
            if grid[0].numel() != end - index:
                raise ValueError(f"{end - index} vision tokens where the grid {[t, h * merge, w * merge]} needs "
                                 f"{grid[0].numel()}")
            pieces.append(grid.reshape(3, -1) + start)
        start = int(pieces[-1].max()) + 1
        index = end
    return torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long)


def rope_index(config: Any, input_ids: torch.Tensor, mm_token_type_ids: torch.Tensor | None = None,
               image_grid_thw: torch.Tensor | None = None, video_grid_thw: torch.Tensor | None = None,
               second_per_grid_ts: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
               **_unused: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """`get_rope_index`'s contract (position ids (3, batch, seq), deltas (batch, 1)) with the released
    convention; vision tokens are found by their ids (`mm_token_type_ids` is accepted and not needed)."""
    grids = {1: list(image_grid_thw) if image_grid_thw is not None else [],
             2: list(video_grid_thw) if video_grid_thw is not None else []}
    seconds = [float(s) for s in second_per_grid_ts] if second_per_grid_ts is not None else [1.0] * len(grids[2])
    positions = torch.zeros(3, *input_ids.shape, dtype=torch.long, device=input_ids.device)
    deltas = []
    for row, ids in enumerate(input_ids):
        keep = attention_mask[row].bool() if attention_mask is not None else torch.ones_like(ids, dtype=torch.bool)
        sequence = _sequence_positions(ids[keep].cpu(), config, grids, seconds)
        positions[:, row, keep] = sequence.to(positions.device)
        deltas.append((int(sequence.max()) + 1 if sequence.numel() else 0) - int(keep.sum()))
    return positions, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def use_released_positions(owner: Any, config: Any) -> bool:
    """Give `owner` (a processor verl bound `get_rope_index` to, or a transformers `Qwen2_5_VLModel`) the
    released convention when `config` is Qwen2.5-VL's; True when it did."""
    if getattr(config, "model_type", None) != FAMILY or owner is None:
        return False
    owner.get_rope_index = functools.partial(rope_index, config)
    return True
