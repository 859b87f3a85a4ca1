"""The CPU training mode's verl plug-ins (recipes/ext), without Ray.

- The ``hf_cpu`` rollout generates for the tiny Qwen2.5-VL from exactly what verl's agent loop sends:
  a toy RL parquet row through verl's RLHFDataset, its video through ``RLHFDataset.process_vision_info``
  (frames + fps metadata), prompt ids expanded by the processor with the recipe's
  ``mm_processor_kwargs``. Greedy output equals a direct ``model.generate`` on the same processor
  inputs, and the clip's time step (``second_per_grid_ts``) is the record's fps, not the 24 fps default.
- Weight sync: loaded tensors change the answers; a tensor the model lacks is an error.
- Registration: the rollout name, the "cpu" platform (gloo group, device module) and the engine are
  in verl's registries.
The full GRPO/SFT loop (Ray, FSDP, reward loop) runs in `bash run.sh train-smoke` (.ci/run).
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from data_preprocess import medvidbench
from recipes import dry_run
from recipes.ext.cpu_generate import GenerateRequest, HFGenerator


@pytest.fixture(scope="module")
def rollout_setup(tmp_path_factory, tiny_qwen25vl_dir, toy_subset):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    root = tmp_path_factory.mktemp("cpu_rollout")
    toy_json = toy_subset(1)
    medvidbench.main(["--input", str(toy_json), "--data-root", str(toy_json.parent),
                      "--out-dir", str(root / "data"), "--val-fraction", "0"])
    cfg = dry_run.compose("medgrpo_grpo", ["medgrpo_engine=cpu", "data.filter_overlong_prompts=false"])
    generator = HFGenerator(str(tiny_qwen25vl_dir), prompt_length=4096, response_length=8)
    dataset = RLHFDataset(str(root / "data" / "rl_train.parquet"), generator.processor.tokenizer, cfg.data,
                          processor=generator.processor)
    return {"cfg": cfg, "generator": generator, "dataset": dataset}


def _agent_loop_request(setup, index: int, **sampling) -> tuple[GenerateRequest, dict, float]:
    """What SingleTurnAgentLoop hands the rollout server for row `index` (+ the processor inputs)."""
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    dataset, processor = setup["dataset"], setup["generator"].processor
    row = dataset[index]
    messages = row["raw_prompt"]
    images, videos = asyncio.run(dataset.process_vision_info(messages, 14, setup["cfg"].data))
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    kwargs = dict(dataset.mm_processor_kwargs)
    inputs = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos,
                                               mm_processor_kwargs=kwargs)
    request = GenerateRequest(prompt_ids=inputs["input_ids"][0].tolist(),
                              sampling_params={"temperature": 0, "top_p": 1.0, "top_k": -1, **sampling},
                              images=images, videos=videos, mm_processor_kwargs=kwargs)
    return request, inputs, float(row["extra_info"]["fps"])


def test_rollout_uses_the_agent_loops_video_and_matches_hf_generate(rollout_setup):
    generator = rollout_setup["generator"]
    for index in range(3):
        request, inputs, fps = _agent_loop_request(rollout_setup, index)
        vision = generator.vision_inputs(request)
        assert vision["video_grid_thw"].tolist() == inputs["video_grid_thw"].tolist()
        # Qwen2.5-VL: temporal_patch_size / fps seconds per grid step (0.083 would mean 24 fps)
        assert vision["second_per_grid_ts"].tolist() == pytest.approx([2.0 / fps])
        response, log_probs, stop = generator.generate(request)
        expected = generator.model.generate(**inputs, do_sample=False, max_new_tokens=8, num_beams=1,
                                            suppress_tokens=generator.banned_token_ids,
                                            pad_token_id=generator.pad_token_id)
        assert response == expected[0, len(request.prompt_ids):].tolist()
        assert log_probs is None and stop == "completed"
        assert not set(response) & set(generator.banned_token_ids)


def test_rollout_log_probs_are_the_models(rollout_setup):
    generator = rollout_setup["generator"]
    request, _, _ = _agent_loop_request(rollout_setup, 0, logprobs=True)
    response, log_probs, _ = generator.generate(request)
    ids = torch.tensor([request.prompt_ids + response])
    vision = generator.vision_inputs(request)
    if "mm_token_type_ids" in vision:  # the answer's tokens are text
        vision["mm_token_type_ids"] = torch.cat([vision["mm_token_type_ids"],
                                                 torch.zeros((1, len(response)), dtype=torch.long)], 1)
    with torch.no_grad():
        logits = generator.model(input_ids=ids, attention_mask=torch.ones_like(ids), **vision).logits[0]
    start = len(request.prompt_ids)
    expected = torch.log_softmax(logits[start - 1:-1].float(), -1).gather(-1, torch.tensor(response)[:, None])[:, 0]
    assert log_probs == pytest.approx(expected.tolist(), abs=1e-4)


def test_rollout_rejects_a_prompt_the_processor_expands_differently(rollout_setup):
    request, _, _ = _agent_loop_request(rollout_setup, 0)
    video_pad = rollout_setup["generator"].processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    cut = request.prompt_ids.index(video_pad)
    request.prompt_ids = request.prompt_ids[:cut] + request.prompt_ids[cut + 1:]
    with pytest.raises(ValueError, match="video settings differ"):
        rollout_setup["generator"].generate(request)


def test_weight_sync_changes_the_policy_and_rejects_unknown_names(tiny_qwen25vl_dir, rollout_setup):
    generator = HFGenerator(str(tiny_qwen25vl_dir), prompt_length=4096, response_length=6)
    request, _, _ = _agent_loop_request(rollout_setup, 1)
    before = generator.generate(request)[0]
    head = next(name for name in generator.model.state_dict() if name.endswith("lm_head.weight"))
    weights = torch.zeros_like(generator.model.state_dict()[head])
    assert generator.load_weights([(head, weights)]) == 1
    after = generator.generate(request)[0]
    assert before != [0] * 6 and after == [0] * 6  # all-equal logits: greedy picks id 0 every time
    with pytest.raises(KeyError, match="not in the rollout model"):
        generator.load_weights([("model.no_such.weight", weights)])


def test_plugins_are_in_verls_registries():
    from verl.plugin.platform import PlatformRegistry
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.rollout.base import get_rollout_class
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from recipes.ext import cpu_engine, cpu_platform, cpu_rollout

    assert RolloutReplicaRegistry.get("hf_cpu") is cpu_rollout.CPURolloutReplica
    assert get_rollout_class("hf_cpu", "async") is cpu_rollout.CPUServerAdapter
    platform = PlatformRegistry.get("cpu")()
    assert platform.device_name == "cpu" and platform.communication_backend_name() == "gloo"
    assert torch.zeros(2).to(platform.current_device()).device.type == "cpu"
    device = platform.device_module
    assert device.memory_allocated() == 0 and device.is_available()
    assert 0 < device.mem_get_info()[0] <= device.mem_get_info()[1]
    for backend in ("fsdp", "fsdp2"):
        assert EngineRegistry._engines["language_model"][backend]["cpu"] is cpu_engine.CPUFSDPEngineWithLMHead
    assert cpu_platform.PLATFORM_NAME == "cpu"


def test_cpu_platform_starts_a_plain_gloo_group(monkeypatch):
    import torch.distributed as dist

    from recipes.ext.cpu_platform import init_gloo_process_group

    if dist.is_initialized():
        pytest.skip("a process group is already running in this pytest process")
    monkeypatch.delenv("RANK", raising=False)
    assert not init_gloo_process_group()  # not a distributed worker: nothing started
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29547")
    try:
        assert init_gloo_process_group()
        assert dist.get_backend() == "gloo"
        value = torch.ones(3)
        dist.all_reduce(value)
        assert value.tolist() == [1.0, 1.0, 1.0]
        assert not init_gloo_process_group()  # idempotent: verl's own init then skips
    finally:
        dist.destroy_process_group()


def test_rollout_serves_qwen3_vl_videos_with_frame_timestamps(tmp_path):
    """Qwen3-VL writes frame timestamps into the expanded prompt; the rollout still gets the video's
    pixels from the processor and generates what `model.generate` does on the processor's inputs."""
    from omegaconf import OmegaConf
    from PIL import Image
    from transformers import AutoConfig, AutoModelForImageTextToText
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    from data_preprocess.video_spec import VideoSpec
    from tests.test_sft_video_timing import FAMILIES, N_FRAMES, _save_model_folder, _write_rows

    frames = []
    for i in range(N_FRAMES):
        frames.append(str(tmp_path / f"frame_{i}.jpg"))
        Image.new("RGB", (160, 96), (40 * i, 80, 255 - 40 * i)).save(frames[-1])
    folder = tmp_path / "qwen3_vl"
    _save_model_folder("qwen3_vl", folder)
    config = AutoConfig.from_pretrained(folder)
    config.vision_config.num_heads = 2  # a vision head of 16 dims, so the tiny tower runs
    torch.manual_seed(0)
    AutoModelForImageTextToText.from_config(config).save_pretrained(folder)
    generator = HFGenerator(str(folder), prompt_length=4096, response_length=8)

    spec = VideoSpec.load(dry_run.CONFIG_DIR / "medgrpo_video.yaml")
    rl_path, _ = _write_rows(tmp_path, spec.video_entry(frames, 1.0))
    mm_kwargs = dict(FAMILIES["qwen3_vl"])
    data = OmegaConf.create({"prompt_key": "prompt", "video_key": "videos", "image_patch_size": 16,
                             "filter_overlong_prompts": False, "mm_processor_kwargs": mm_kwargs})
    dataset = RLHFDataset(str(rl_path), generator.processor.tokenizer, data, processor=generator.processor)
    messages = dataset[0]["raw_prompt"]
    images, videos = asyncio.run(dataset.process_vision_info(messages, 16, data))
    text = generator.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(generator.processor, text=[text], images=images, videos=videos,
                                               mm_processor_kwargs=mm_kwargs)
    prompt_ids = inputs["input_ids"][0].tolist()
    assert "seconds>" in generator.processor.tokenizer.decode(prompt_ids)  # the timestamps are in the prompt
    request = GenerateRequest(prompt_ids=prompt_ids, sampling_params={"temperature": 0}, images=images,
                              videos=videos, mm_processor_kwargs=mm_kwargs)
    response, _, _ = generator.generate(request)
    expected = generator.model.generate(**inputs, do_sample=False, max_new_tokens=8, num_beams=1,
                                        suppress_tokens=generator.banned_token_ids,
                                        pad_token_id=generator.pad_token_id)
    assert response == expected[0, len(prompt_ids):].tolist()
