"""Build verl `DataProto` rollout batches from RL parquet rows and response texts (tests, demo, benchmarks).

The layout is what verl's trainer hands the reward loop: left-padded `prompts`, right-padded
`responses`, `attention_mask` over both, and the row's `data_source` / `reward_model` / `extra_info`
as non-tensor fields; `RewardLoopWorker` then calls `run_single(batch[i:i + 1])` per sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def read_rl_rows(path: str) -> list[dict[str, Any]]:
    """All rows of an RL parquet file as dicts."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def rollout_batch(tokenizer: Any, rows: Sequence[Mapping[str, Any]], responses: Sequence[str],
                  prompt_text: str = "<|im_start|>user\n<video> question<|im_end|>\n<|im_start|>assistant\n"):
    """A DataProto of len(responses) samples; sample i answers rows[i]."""
    import torch
    from verl import DataProto

    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows for {len(responses)} responses")
    pad = tokenizer.pad_token_id
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                    for text in responses]
    width = max(len(ids) for ids in response_ids)
    responses_t = torch.full((len(rows), width), pad, dtype=torch.long)
    response_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(response_ids):
        responses_t[i, : len(ids)] = torch.tensor(ids)
        response_mask[i, : len(ids)] = 1
    prompts_t = torch.tensor([prompt_ids] * len(rows), dtype=torch.long)
    attention = torch.cat([torch.ones_like(prompts_t), response_mask], dim=1)
    non_tensors = {key: np.array([row[key] for row in rows], dtype=object)
                   for key in ("data_source", "reward_model", "extra_info")}
    return DataProto.from_dict(
        tensors={"prompts": prompts_t, "responses": responses_t, "attention_mask": attention,
                 "input_ids": torch.cat([prompts_t, responses_t], dim=1)},
        non_tensors=non_tensors,
    )
