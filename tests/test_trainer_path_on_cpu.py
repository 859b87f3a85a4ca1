"""The reward path of a GRPO step on CPU, with verl's own pieces wherever they run without a GPU.

verl's RLHFDataset + collate_fn build the prompt batch from the toy RL parquet (tiny Qwen2.5-VL
processor); every prompt is repeated rollout.n times with a uid per prompt, as the trainer does;
responses come from the reference policy; our manager is loaded by verl's `load_reward_manager`
from the recipe's composed config; `run_single` scores each sample (what `RewardLoopWorker` calls);
`assemble_rm_scores` places the scores on the response tokens; verl's
`compute_grpo_outcome_advantage` turns them into advantages. Rollout generation (vLLM) and the
actor/critic updates (FSDP) need a GPU and are not exercised here.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
import pytest
import torch

from recipes import dry_run
from reward_fns.answer_reward import NUMERIC_KEYS
from testbed.judge_server import JudgeTestServer
from testbed.policy import group_responses, noisy_predictions, reference_answer
from testbed.tiny_qwen import build_processor, build_tokenizer

N = 4  # rollout.n
MEDIAN_PAIR = ("Cholec80-CVS", "CVS")  # its stats are set so that a perfect answer sits at the median


@pytest.fixture(scope="module")
def setup(toy_rl_run, toy_subset):
    root = toy_rl_run("trainer_path", 2, lambda pair: [1.0, 1.0, 1.0] if pair == MEDIAN_PAIR else [0.2, 0.5, 0.8])
    toy_json, train = toy_subset(2), root / "data" / "rl_train.parquet"
    tokenizer = build_tokenizer()
    return {"root": root, "train": train, "tokenizer": tokenizer, "processor": build_processor(tokenizer),
            "noisy": noisy_predictions(str(toy_json.with_name(f"{toy_json.stem}_predictions.json")))}


def _prompt_ids(dataset, processor, sample) -> list[int]:
    """Prompt token ids as the agent loop builds them (chat template + video tokens via the processor)."""
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    messages = sample["raw_prompt"]
    images, videos, audios = dataset._process_multi_modal_info(messages, dataset.image_patch_size, dataset.config)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    out = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios,
                                            mm_processor_kwargs=dataset.mm_processor_kwargs)
    return out["input_ids"][0].tolist()


def _prompt_batch(setup, cfg):
    """What the trainer's dataloader yields: RLHFDataset rows collated, prompts tokenized with their
    videos (the agent loop's job), then repeated n times with one uid per prompt."""
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    dataset = RLHFDataset(str(setup["train"]), setup["tokenizer"], cfg.data, processor=setup["processor"])
    samples = [dataset[i] for i in range(len(dataset))]
    batch = DataProto.from_single_dict(collate_fn(samples))
    ids = [_prompt_ids(dataset, setup["processor"], s) for s in samples]
    video_pad = setup["tokenizer"].convert_tokens_to_ids("<|video_pad|>")
    assert all(video_pad in x for x in ids)  # the videos became tokens
    width = max(len(x) for x in ids)
    prompts = torch.full((len(ids), width), setup["tokenizer"].pad_token_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):  # left padding, like the rollout's prompts
        prompts[i, width - len(x):], mask[i, width - len(x):] = torch.tensor(x), 1
    batch.batch["input_ids"], batch.batch["attention_mask"] = prompts, mask
    batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in range(len(batch))], dtype=object)
    return batch.repeat(repeat_times=N, interleave=True), len(dataset)


def _with_responses(setup, batch):
    """Append tokenized reference-policy responses like the rollout does (prompts | responses)."""
    from verl import DataProto

    tok = setup["tokenizer"]
    texts = []
    for i in range(0, len(batch), N):
        row = {"reward_model": batch.non_tensor_batch["reward_model"][i]}
        index = int(batch.non_tensor_batch["extra_info"][i]["index"])
        texts.extend(group_responses(row, setup["noisy"][index], N))
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    width = max(len(x) for x in ids)
    responses = torch.full((len(ids), width), tok.pad_token_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        responses[i, : len(x)], mask[i, : len(x)] = torch.tensor(x), 1
    prompts = batch.batch["input_ids"]
    tensors = {"prompts": prompts, "responses": responses, "response_mask": mask,
               "input_ids": torch.cat([prompts, responses], 1),
               "attention_mask": torch.cat([batch.batch["attention_mask"], mask], 1)}
    return DataProto.from_dict(tensors=tensors, non_tensors=dict(batch.non_tensor_batch)), texts


def test_grpo_reward_path_on_cpu(setup, tmp_path):
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
    from verl.trainer.ppo.reward import load_reward_manager

    with JudgeTestServer().run_in_thread() as server:
        cfg = dry_run.compose("medgrpo_grpo", [
            f"actor_rollout_ref.rollout.n={N}",
            "data.filter_overlong_prompts=false", "medgrpo.reward.judge.model=med-judge",
            "medgrpo.reward.judge.api_key_env=MEDGRPO_TEST_JUDGE_KEY", "medgrpo.reward.tasks.NAP=true",
        ], values={"data.train_files": str(setup["train"]), "data.val_files": str(setup["train"]),
                   "actor_rollout_ref.model.path": str(setup["root"]), "data.cache_dir": str(tmp_path / "verl"),
                   "medgrpo.reward.normalization.stats_path": str(setup["root"] / "stats.json"),
                   "medgrpo.reward.judge.base_url": server.base_url})
        OmegaConf.resolve(cfg)
        prompts, n_prompts = _prompt_batch(setup, cfg)
        batch, texts = _with_responses(setup, prompts)
        manager = load_reward_manager(cfg, setup["tokenizer"])
        assert isinstance(manager, RewardManagerBase) and type(manager).__name__ == "MedGRPORewardManager"

        async def score_all():
            outputs = await asyncio.gather(*(manager.run_single(batch[i: i + 1]) for i in range(len(batch))))
            await manager.scorer.captions.judge.aclose()
            return outputs

        outputs = asyncio.run(score_all())
        assert server.requests > 0

    assert len(outputs) == len(batch) == n_prompts * N
    scores = [o["reward_score"] for o in outputs]
    assert all(0.0 <= s <= 1.0 for s in scores)
    for out in outputs:
        assert set(NUMERIC_KEYS) <= set(out["reward_extra_info"])
    infos = [o["reward_extra_info"] for o in outputs]
    assert {i["task"] for i in infos} == {"CVS", "NAP", "SA", "STG", "TAG", "DVC", "VS", "RC"}
    assert any(i["judge_ok"] for i in infos if i["task"] in ("VS", "RC", "DVC"))

    rm_scores = type(manager).assemble_rm_scores(batch, scores)
    assert torch.allclose(rm_scores.sum(-1), torch.tensor(scores))
    last = batch.batch["response_mask"].sum(-1) - 1
    assert torch.allclose(rm_scores[torch.arange(len(batch)), last], torch.tensor(scores))

    advantages, _ = compute_grpo_outcome_advantage(rm_scores, batch.batch["response_mask"],
                                                   batch.non_tensor_batch["uid"])
    per_sample = (advantages * batch.batch["response_mask"]).sum(-1) / batch.batch["response_mask"].sum(-1)
    groups = per_sample.view(n_prompts, N)
    assert torch.allclose(groups.mean(-1), torch.zeros(n_prompts), atol=1e-5)
    spread = torch.tensor(scores).view(n_prompts, N).std(-1) > 1e-6
    assert spread.any() and (groups[spread].abs().sum(-1) > 0).all()

    # the reference answers of the median pair score raw 1.0 = calibrated p50 -> normalized exactly 0.5
    median_hits = [o for o, t, i in zip(outputs, texts, infos, strict=True)
                   if (i["source"], i["task"]) == MEDIAN_PAIR and i["raw"] == 1.0]
    assert median_hits and all(o["reward_score"] == pytest.approx(0.5) for o in median_hits)
    assert json.loads(batch.non_tensor_batch["reward_model"][0]["ground_truth"])["answer"] == reference_answer(
        {"reward_model": batch.non_tensor_batch["reward_model"][0]})
