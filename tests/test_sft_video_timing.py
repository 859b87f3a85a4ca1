"""SFT and RL give a video the same time encoding (recipes/ext/sft_dataset.py).

One record (a frame list at 0.5, 1 or 2 fps, in data_preprocess's `videos` format) is written as an RL
row and as an SFT row. The RL side is built as verl's agent loop builds a prompt: `RLHFDataset` ->
qwen-vl-utils with video metadata -> the processor. The SFT side is `VideoTimingSFTDataset` (the
recipe's `data.custom_cls`). Both must give the same prompt tokens (Qwen3-VL writes frame timestamps
into them), the same `second_per_grid_ts` (Qwen2.5-VL) and the same temporal position ids from the
model's own `get_rope_index` (bound to the processor by verl's `hf_processor`, as the trainer does).
The actor's position ids from verl's agent loop (with recipes/ext/agent_loop.py's hook) must equal
the SFT dataset's too. The tiny processors are real Qwen2.5-VL / Qwen3-VL processors with a small
tokenizer; no weights.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from data_preprocess.video_spec import VideoSpec
from testbed.tiny_qwen import CHAT_TEMPLATE, build_processor, build_tokenizer

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO / "recipes" / "config" / "medgrpo_video.yaml"
N_FRAMES = 6  # 3 temporal patches
ANSWER = "1.0-3.0 seconds."
# family -> processor kwargs of recipes/config/medgrpo_model/<family>.yaml (without the pixel bounds)
FAMILIES = {"qwen2_5_vl": {"do_sample_frames": False}, "qwen3_vl": {"do_resize": False, "do_sample_frames": False}}
PATCH = {"qwen2_5_vl": 14, "qwen3_vl": 16}


def _special_ids(tokenizer) -> dict[str, int]:
    return {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}


def _save_model_folder(family: str, out: Path) -> None:
    """Tokenizer, processor and config.json (no weights) of a tiny model of `family`."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = build_tokenizer()
    text = {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096}
    if family == "qwen2_5_vl":
        processor = build_processor(tokenizer)
        # tokens_per_second 2: the released Qwen2.5-VL checkpoints' value (what verl's SFT helper assumes)
        config = Qwen2_5_VLConfig(text_config={**text, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
                                  vision_config={"depth": 1, "hidden_size": 32, "out_hidden_size": 64,
                                                 "tokens_per_second": 2}, **_special_ids(tokenizer))
    else:
        bounds = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2}
        processor = Qwen3VLProcessor(
            image_processor=Qwen2VLImageProcessor(min_pixels=8 * 32 * 32, max_pixels=48 * 32 * 32, **bounds),
            video_processor=Qwen3VLVideoProcessor(size={"shortest_edge": 8 * 32 * 32,
                                                        "longest_edge": 48 * 32 * 32 * N_FRAMES}, **bounds),
            tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
        config = Qwen3VLConfig(text_config={**text, "rope_scaling": {"rope_type": "default",
                                                                     "mrope_section": [2, 3, 3]}},
                               vision_config={"depth": 1, "hidden_size": 32, "out_hidden_size": 64,
                                              "patch_size": 16, "deepstack_visual_indexes": []},
                               **_special_ids(tokenizer))
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config.save_pretrained(out)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[str]:
    from PIL import Image

    root = tmp_path_factory.mktemp("timing_frames")
    paths = []
    for i in range(N_FRAMES):
        paths.append(str(root / f"frame_{i}.jpg"))
        Image.new("RGB", (160, 96), (40 * i, 80, 255 - 40 * i)).save(paths[-1])
    return paths


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    """(family, folder, tokenizer, processor with the model's get_rope_index bound, as verl loads them)."""
    from verl.utils import hf_processor, hf_tokenizer

    folder = tmp_path_factory.mktemp(request.param)
    _save_model_folder(request.param, folder)
    processor = hf_processor(str(folder))
    assert processor is not None and hasattr(processor, "get_rope_index"), "verl did not load the processor"
    return request.param, folder, hf_tokenizer(str(folder)), processor


def _write_rows(root: Path, video: dict) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    prompt = [{"role": "user", "content": "<video>\nWhen does the action take place?"}]
    rl, sft = root / "rl.parquet", root / "sft.parquet"
    pq.write_table(pa.Table.from_pylist([{"data_source": "toy", "prompt": prompt, "videos": [video]}]), rl)
    pq.write_table(pa.Table.from_pylist([{"messages": [*prompt, {"role": "assistant", "content": ANSWER}],
                                          "videos": [video]}]), sft)
    return rl, sft


def _rl_inputs(path: Path, tokenizer, processor, patch: int, mm_kwargs: dict) -> dict:
    """The prompt as verl's agent loop builds it from an RLHFDataset row."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    config = OmegaConf.create({"prompt_key": "prompt", "video_key": "videos", "image_patch_size": patch,
                               "filter_overlong_prompts": False, "mm_processor_kwargs": mm_kwargs})
    dataset = RLHFDataset(str(path), tokenizer, config, processor=processor)
    messages = dataset[0]["raw_prompt"]
    images, videos, _ = dataset._process_multi_modal_info(messages, dataset.image_patch_size, config)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    out = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos,
                                            mm_processor_kwargs=dataset.mm_processor_kwargs)
    return dict(out)


def _sft_sample(path: Path, tokenizer, processor, patch: int, mm_kwargs: dict, dataset_cls=None) -> dict:
    """One row through the SFT dataset class that recipes/config/medgrpo_sft.yaml names."""
    from omegaconf import OmegaConf
    from verl.utils.import_utils import load_extern_object

    from recipes import dry_run

    cfg = dry_run.compose("medgrpo_sft", ["model.path=/unused"])
    if dataset_cls is None:
        dataset_cls = load_extern_object(cfg.data.custom_cls.path, cfg.data.custom_cls.name)
    config = OmegaConf.create({"messages_key": "messages", "video_key": "videos", "image_patch_size": patch,
                               "pad_mode": "no_padding", "max_length": 8192, "enable_thinking_default": None,
                               "apply_chat_template_kwargs": {"processor_kwargs": {
                                   **mm_kwargs, "return_tensors": "pt", "add_special_tokens": False}}})
    return dataset_cls(str(path), tokenizer, config, processor=processor)[0]


def _spec_and_mm_kwargs(name: str) -> tuple[VideoSpec, dict]:
    """The recipe's VideoSpec and the processor kwargs of family `name` (pixel bounds for Qwen2.5-VL)."""
    spec = VideoSpec.load(SPEC_PATH)
    bounds = {"min_pixels": spec.min_pixels, "max_pixels": spec.max_pixels} if name == "qwen2_5_vl" else {}
    return spec, {**FAMILIES[name], **bounds}


def _rl_and_sft(family, frames: list[str], fps: float, root: Path) -> tuple[dict, dict]:
    """The RL prompt inputs and the SFT sample of one video row at `fps`."""
    name, _, tokenizer, processor = family
    spec, mm_kwargs = _spec_and_mm_kwargs(name)
    rl_path, sft_path = _write_rows(root, spec.video_entry(frames, fps))
    return (_rl_inputs(rl_path, tokenizer, processor, PATCH[name], mm_kwargs),
            _sft_sample(sft_path, tokenizer, processor, PATCH[name], mm_kwargs))


def _positions(processor, input_ids: torch.Tensor, mm: dict) -> torch.Tensor:
    """(3, seq) M-RoPE position ids from the model's get_rope_index (bound to the processor by verl)."""
    ids = input_ids.reshape(1, -1)
    types = torch.zeros_like(ids)
    types[ids == processor.video_token_id] = 2
    kwargs = {"video_grid_thw": mm["video_grid_thw"]}
    if "second_per_grid_ts" in mm:
        kwargs["second_per_grid_ts"] = mm["second_per_grid_ts"]
    positions, _ = processor.get_rope_index(input_ids=ids, mm_token_type_ids=types, **kwargs)
    return positions[:, 0]


def _frame_starts(processor, input_ids: torch.Tensor, positions: torch.Tensor) -> list[int]:
    """The temporal position id of each temporal patch (first video token of each new time step)."""
    temporal = positions[0][input_ids == processor.video_token_id]
    return sorted(set(temporal.tolist()))


@pytest.mark.parametrize("fps", [0.5, 1.0, 2.0])
def test_sft_and_rl_give_the_same_video_timing(family, frames, fps, tmp_path):
    name, _, tokenizer, processor = family
    rl, sft = _rl_and_sft(family, frames, fps, tmp_path)
    sft_mm = sft["multi_modal_inputs"]

    prompt_ids = rl["input_ids"][0]
    n = prompt_ids.shape[0]
    assert torch.equal(sft["input_ids"][:n], prompt_ids), "the SFT prompt tokens differ from the RL prompt"
    assert torch.equal(sft_mm["video_grid_thw"], rl["video_grid_thw"])
    assert torch.equal(sft_mm["pixel_values_videos"], rl["pixel_values_videos"])
    if name == "qwen2_5_vl":
        assert torch.equal(sft_mm["second_per_grid_ts"], rl["second_per_grid_ts"])
        assert sft_mm["second_per_grid_ts"].tolist() == [pytest.approx(2 / fps)]  # temporal patch 2 frames
    else:
        shown = tokenizer.decode(prompt_ids)
        assert f"<{0.5 / fps:.1f} seconds>" in shown and f"<{4.5 / fps:.1f} seconds>" in shown, shown

    rl_pos = _positions(processor, prompt_ids, rl)
    sft_pos = _positions(processor, sft["input_ids"], sft_mm)
    assert torch.equal(sft_pos[:, :n], rl_pos), "temporal/spatial position ids differ between SFT and RL"
    starts = _frame_starts(processor, prompt_ids, rl_pos)
    assert len(starts) == N_FRAMES // 2, f"each temporal patch needs its own temporal position: {starts}"
    if name == "qwen2_5_vl":
        step = processor.config.vision_config.tokens_per_second * int(2 / fps)
        assert [b - a for a, b in itertools.pairwise(starts)] == [step, step]
    # the dataset's own position ids (what the SFT trainer feeds the model) are the model's
    assert torch.equal(sft["position_ids"][1:], sft_pos)
    assert sft["position_ids"][0].tolist() == list(range(sft["input_ids"].shape[0]))


def test_verl_sft_dataset_alone_loses_the_timing(family, frames, tmp_path):
    """Why the custom class exists: verl 0.9.1's MultiTurnSFTDataset drops the fps (24 fps assumed) and
    cannot place Qwen3-VL videos. If this starts failing, verl has fixed both; data.custom_cls can go."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    name, _, tokenizer, processor = family
    spec, mm_kwargs = _spec_and_mm_kwargs(name)
    _, sft_path = _write_rows(tmp_path, spec.video_entry(frames, 1.0))
    if name == "qwen3_vl":  # its Qwen2-VL position helper walks off the grid of a multi-frame Qwen3-VL video
        with pytest.raises(IndexError):
            _sft_sample(sft_path, tokenizer, processor, PATCH[name], mm_kwargs, dataset_cls=MultiTurnSFTDataset)
        return
    plain = _sft_sample(sft_path, tokenizer, processor, PATCH[name], mm_kwargs, dataset_cls=MultiTurnSFTDataset)
    assert plain["multi_modal_inputs"]["second_per_grid_ts"].tolist() == [pytest.approx(2 / 24)]
    positions = _positions(processor, plain["input_ids"], plain["multi_modal_inputs"])
    assert len(_frame_starts(processor, plain["input_ids"], positions)) == 1  # every frame at time 0


def test_sft_dataset_names_a_missing_video(frames, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from omegaconf import OmegaConf

    from recipes.ext.sft_dataset import VideoTimingSFTDataset

    spec = VideoSpec.load(SPEC_PATH)
    path = tmp_path / "sft.parquet"
    messages = [{"role": "user", "content": "<video>\n<video>\nWhen?"}, {"role": "assistant", "content": ANSWER}]
    pq.write_table(pa.Table.from_pylist([{"messages": messages, "videos": [spec.video_entry(frames, 1.0)]}]), path)
    tokenizer = build_tokenizer()
    config = OmegaConf.create({"messages_key": "messages", "video_key": "videos", "pad_mode": "no_padding",
                               "enable_thinking_default": None, "image_patch_size": 14})
    dataset = VideoTimingSFTDataset(str(path), tokenizer, config, processor=build_processor(tokenizer))
    with pytest.raises(ValueError, match=rf"^{path}: row 0: messages: a <video> placeholder has no item left "
                                         r"in 'videos'$"):
        dataset[0]


@pytest.mark.parametrize("fps", [0.5, 1.0])
def test_rl_actor_positions_match_sft_with_the_agent_loop_hook(family, frames, fps, tmp_path):
    """The position ids verl's agent loop computes for the actor (`AgentLoopWorker._compute_position_ids`)
    equal the SFT dataset's once recipes/ext/agent_loop.py's hook hands it `second_per_grid_ts`; verl's
    plain worker differs for Qwen2.5-VL at fps != 2 (1 s per temporal patch assumed)."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.utils import hf_processor

    from recipes.ext.agent_loop import add_video_timing

    name, folder, _, _ = family
    rl, sft = _rl_and_sft(family, frames, fps, tmp_path)
    input_ids = rl["input_ids"]
    n = input_ids.shape[1]

    def actor_positions(with_hook: bool) -> torch.Tensor:
        worker = object.__new__(AgentLoopWorker)  # only verl's position-id method is exercised
        worker.processor = hf_processor(str(folder))
        if with_hook:
            add_video_timing(worker.processor)
        mm = {k: v for k, v in rl.items() if k not in ("input_ids", "attention_mask")}
        return worker._compute_position_ids(input_ids, torch.ones_like(input_ids), mm)[0]

    assert torch.equal(actor_positions(with_hook=True), sft["position_ids"][:, :n])
    if name == "qwen2_5_vl":
        assert not torch.equal(actor_positions(with_hook=False), sft["position_ids"][:, :n])


def test_grpo_recipe_runs_the_video_timing_agent_loop(family):
    """medgrpo_grpo's default agent loop, built as verl's worker builds it, installs the hook on the
    processor the worker shares with it."""
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.import_utils import resolve_config_path

    from recipes import dry_run
    from recipes.ext.agent_loop import VideoTimingSingleTurnAgentLoop

    _, folder, tokenizer, processor = family
    cfg = dry_run.compose("medgrpo_grpo", [f"actor_rollout_ref.model.path={folder}"])
    agent = cfg.actor_rollout_ref.rollout.agent
    entries = {e.name: e for e in OmegaConf.load(resolve_config_path(str(REPO / agent.agent_loop_config_path)))}
    processor.get_rope_index_kwargs = None
    loop = hydra.utils.instantiate(entries[agent.default_agent_loop], trainer_config=DictConfigWrap(cfg),
                                   server_manager=None, tokenizer=tokenizer, processor=processor,
                                   dataset_cls=RLHFDataset, data_config=DictConfigWrap(cfg.data),
                                   tools=ToolListWrap([]))
    assert isinstance(loop, VideoTimingSingleTurnAgentLoop) and loop.processor is processor
    assert processor.get_rope_index_kwargs({"second_per_grid_ts": torch.tensor([2.0])})["second_per_grid_ts"] == 2.0


def test_image_rows_go_through_too(tmp_path):
    """Rows with an encoded image (verl's `images` format) decode as RLHFDataset decodes them."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from omegaconf import OmegaConf
    from PIL import Image

    from recipes.ext.sft_dataset import VideoTimingSFTDataset

    buffer = io.BytesIO()
    Image.new("RGB", (112, 84), (10, 200, 30)).save(buffer, format="PNG")
    path = tmp_path / "sft_image.parquet"
    messages = [{"role": "user", "content": "<image>\nWhat is shown?"}, {"role": "assistant", "content": ANSWER}]
    pq.write_table(pa.Table.from_pylist([{"messages": messages, "images": [{"bytes": buffer.getvalue()}]}]), path)
    tokenizer = build_tokenizer()
    config = OmegaConf.create({"messages_key": "messages", "pad_mode": "no_padding", "max_length": 4096,
                               "enable_thinking_default": None, "image_patch_size": 14})
    sample = VideoTimingSFTDataset(str(path), tokenizer, config, processor=build_processor(tokenizer))[0]
    assert sample["multi_modal_inputs"]["image_grid_thw"].shape == (1, 3)
    assert int((sample["input_ids"] == tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum()) > 0

