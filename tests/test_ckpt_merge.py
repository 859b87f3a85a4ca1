"""ckpt_tools.merge on real verl FSDP checkpoints (world size 1 and 2, written on CPU by verl's own
checkpoint manager over gloo) and on Megatron/mbridge-style checkpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ckpt_tools.layout import CheckpointError, resolve_checkpoint
from ckpt_tools.merge import build_parser, export_checkpoint, main
from ckpt_tools.model_card import sha256_file
from ckpt_tools.shards import load_fsdp_full_state_dict
from ckpt_tools.verify import verify_export
from tests import ckpt_fixtures as fx

pytestmark = pytest.mark.slow  # real FSDP checkpoints of a tiny model: over a minute on 2 cores
REPO = Path(__file__).resolve().parent.parent
STEP = 7


@pytest.fixture(scope="module")
def tiny_model(tiny_qwen25vl_dir: Path) -> Path:
    return tiny_qwen25vl_dir  # the session's tiny model (checkpoints copy it, never change it)


@pytest.fixture(scope="module")
def original(tiny_model: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model, dtype=torch.float32)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def fsdp_ckpts(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("fsdp")
    steps = {ws: root / f"ws{ws}" / f"global_step_{STEP}" for ws in (1, 2)}
    fx.make_fsdp_checkpoints(tiny_model, steps)
    return steps


@pytest.fixture(scope="module")
def stats_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stats") / "reward_stats.json"
    path.write_text(json.dumps({"tal": {"mu": 0.3, "sigma": 0.1}}))
    return path


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def _check_export(out: Path, original: dict[str, torch.Tensor], dtype: torch.dtype, step: int) -> None:
    """The export reloads, holds the original weights (in ``dtype``) and every side file."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

    model, info = AutoModelForImageTextToText.from_pretrained(out, dtype="auto", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.dtype == dtype
    merged = model.state_dict()
    assert set(merged) == set(original)
    for key, value in original.items():
        assert torch.equal(merged[key], value.to(dtype)), key
    processor = AutoProcessor.from_pretrained(out)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor" and processor.video_processor is not None
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "<|video_pad|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert (out / "chat_template.jinja").is_file()
    assert GenerationConfig.from_pretrained(out).eos_token_id == processor.tokenizer.eos_token_id
    assert list(out.glob("*.safetensors"))
    assert f"| Training step | {step} |" in (out / "README.md").read_text()


def test_fsdp_checkpoints_have_verls_layout(fsdp_ckpts: dict[int, Path]) -> None:
    from torch.distributed.tensor import DTensor, Shard

    for ws, step_dir in fsdp_ckpts.items():
        layout = resolve_checkpoint(step_dir)
        assert (layout.backend, layout.world_size, layout.step) == ("fsdp", ws, STEP)
        assert json.loads((layout.actor_dir / "fsdp_config.json").read_text()) == {"FSDP_version": 2, "world_size": ws}
        assert (layout.hf_dir / "config.json").is_file() and (layout.hf_dir / "processor_config.json").is_file()
        shard = torch.load(layout.shard_path(0), map_location="cpu", weights_only=False)
        weight = shard["model.language_model.embed_tokens.weight"]
        assert isinstance(weight, DTensor) and tuple(weight.placements) == (Shard(0),)
        assert weight.device_mesh.mesh_dim_names == ("fsdp",)
        assert weight.to_local().shape[0] == -(-weight.shape[0] // ws)  # rank 0 holds ceil(rows / ws)


def test_shards_reassemble_exactly(fsdp_ckpts: dict[int, Path], original: dict[str, torch.Tensor]) -> None:
    for step_dir in fsdp_ckpts.values():
        full = load_fsdp_full_state_dict(resolve_checkpoint(step_dir))
        assert set(full) == set(original)
        for key, value in original.items():
            assert full[key].dtype == torch.float32 and torch.equal(full[key], value), key


def test_rank_region_follows_torch_chunk_and_meshes() -> None:
    from torch.distributed.tensor import Replicate, Shard

    from ckpt_tools.shards import _rank_region

    mesh = torch.arange(3)
    for rows in (5, 1, 0):  # uneven, fewer rows than ranks, empty
        chunks = torch.arange(rows).chunk(3) if rows else ()
        got = [_rank_region(torch.Size([rows, 2]), mesh, (Shard(0),), r)[0][0] for r in range(3)]
        assert [torch.arange(rows)[s].tolist() for s in got] == [c.tolist() for c in chunks] + [[]] * (3 - len(chunks))
    hsdp = torch.arange(4).reshape(2, 2)  # (ddp, fsdp): replicas of the second row are not canonical
    regions = [_rank_region(torch.Size([4]), hsdp, (Replicate(), Shard(0)), r) for r in range(4)]
    assert [(r[0][0], r[1]) for r in regions] == [
        (slice(0, 2), True),
        (slice(2, 4), True),
        (slice(0, 2), False),
        (slice(2, 4), False),
    ]
    assert _rank_region(torch.Size([4]), mesh, (Shard(0),), 7) is None


@pytest.mark.parametrize(("world_size", "dtype"), [(1, "float32"), (2, "float32"), (1, None)])
def test_merge_fsdp_in_process(
    world_size: int,
    dtype: str | None,
    fsdp_ckpts: dict[int, Path],
    original: dict[str, torch.Tensor],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "hf"
    argv = ["--ckpt", str(fsdp_ckpts[world_size]), "--out", str(out), "--verify"]
    assert main(argv + (["--dtype", dtype] if dtype else [])) == 0
    assert "verify OK: max abs logit diff 0, max abs weight diff 0" in capsys.readouterr().out
    _check_export(out, original, getattr(torch, dtype or "bfloat16"), STEP)
    assert "probe: video+image+text" in (out / "README.md").read_text()
    assert _leftovers(tmp_path) == []


def test_merge_cli_script_bf16_with_card(
    fsdp_ckpts: dict[int, Path], original: dict[str, torch.Tensor], stats_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models" / "run-step7"
    cmd = [
        sys.executable,
        "ckpt_tools/merge.py",
        "--ckpt",
        str(fsdp_ckpts[2]),
        "--out",
        str(out),
        "--verify",
        "--base-model",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "--recipe",
        "grpo_qwen25vl_7b",
        "--reward-stats",
        str(stats_file),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verify OK" in proc.stdout
    _check_export(out, original, torch.bfloat16, STEP)
    card = (out / "README.md").read_text()
    assert "base_model: Qwen/Qwen2.5-VL-7B-Instruct" in card and "| Recipe | grpo_qwen25vl_7b |" in card
    assert sha256_file(stats_file) in card and str(stats_file) in card
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_failed_verification_exits_1_and_writes_nothing(
    fsdp_ckpts: dict[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file, save_file

    import ckpt_tools.merge as merge_mod

    real_export = merge_mod.export_fsdp

    def corrupting_export(layout, target, dtype):  # a merger bug: one weight off by 1e-3
        real_export(layout, target, dtype)
        weights = load_file(target / "model.safetensors")
        weights["lm_head.weight"][0, 0] += 1e-3
        save_file(weights, target / "model.safetensors", metadata={"format": "pt"})

    monkeypatch.setattr(merge_mod, "export_fsdp", corrupting_export)
    out = tmp_path / "hf"
    assert main(["--ckpt", str(fsdp_ckpts[1]), "--out", str(out), "--verify", "--dtype", "float32"]) == 1
    assert not out.exists() and _leftovers(tmp_path) == []


def test_verify_reports_missing_weights(fsdp_ckpts: dict[int, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    out = tmp_path / "hf"
    assert main(["--ckpt", str(fsdp_ckpts[2]), "--out", str(out), "--dtype", "float32"]) == 0
    weights = load_file(out / "model.safetensors")
    del weights["model.norm.weight"]  # saved files use the hub key names
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    report = verify_export(out, resolve_checkpoint(fsdp_ckpts[2]))
    assert not report.ok
    assert any("model.language_model.norm.weight" in p for p in report.problems), report.problems


def test_megatron_mbridge_checkpoint(tiny_model: Path, original: dict[str, torch.Tensor], tmp_path: Path) -> None:
    step_dir = tmp_path / "megatron" / "global_step_12"
    fx.make_megatron_checkpoint(tiny_model, step_dir)
    out = tmp_path / "hf"
    assert main(["--ckpt", str(step_dir), "--out", str(out), "--verify"]) == 0
    _check_export(out, original, torch.float32, 12)
    assert "(megatron)" in (out / "README.md").read_text()
    # an existing output is kept unless --force, then replaced whole
    assert main(["--ckpt", str(step_dir), "--out", str(out), "--backend", "megatron"]) == 2
    (out / "stale.txt").write_text("old")
    assert main(["--ckpt", str(step_dir / "actor"), "--out", str(out), "--force"]) == 0
    assert not (out / "stale.txt").exists() and _leftovers(tmp_path) == []


def test_megatron_legacy_folder_gets_a_generation_config(tiny_model: Path, tmp_path: Path) -> None:
    step_dir = tmp_path / "global_step_3"
    actor = fx.make_megatron_checkpoint(tiny_model, step_dir, subdir="huggingface")
    shutil.rmtree(actor / "model")
    (actor / "huggingface" / "generation_config.json").unlink()
    assert resolve_checkpoint(step_dir).hf_dir == actor / "huggingface"
    out = tmp_path / "hf"
    assert main(["--ckpt", str(step_dir), "--out", str(out)]) == 0
    assert (out / "generation_config.json").is_file()


def test_megatron_without_hf_weights_names_the_folder(tmp_path: Path) -> None:
    actor = tmp_path / "global_step_5" / "actor"
    (actor / "model" / "dist_ckpt").mkdir(parents=True)
    out = tmp_path / "hf"
    cmd = [sys.executable, "-m", "ckpt_tools.merge", "--ckpt", str(actor.parent), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{actor}/model/huggingface/" in proc.stderr and "use_mbridge=True" in proc.stderr
    assert not out.exists() and _leftovers(tmp_path) == []


def test_incomplete_checkpoint_files_name_the_folder(tiny_model: Path, tmp_path: Path) -> None:
    step_dir = tmp_path / "global_step_4"
    actor = fx.make_megatron_checkpoint(tiny_model, step_dir)
    (actor / "model" / "huggingface" / "chat_template.jinja").unlink()
    with pytest.raises(CheckpointError, match=r"model/huggingface lack: chat template"):
        export_checkpoint(build_parser().parse_args(["--ckpt", str(step_dir), "--out", str(tmp_path / "hf")]))
    assert _leftovers(tmp_path) == []


def test_input_errors_name_the_path(fsdp_ckpts: dict[int, Path], tmp_path: Path) -> None:
    bad_name = tmp_path / "checkpoint_5"
    (bad_name / "actor").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=f"{bad_name}: expected a folder named global_step_N"):
        resolve_checkpoint(bad_name)
    copy = tmp_path / f"global_step_{STEP}"
    shutil.copytree(fsdp_ckpts[2], copy)
    (copy / "actor" / "model_world_size_2_rank_1.pt").unlink()
    with pytest.raises(CheckpointError, match=r"lacks shard files.*model_world_size_2_rank_1\.pt"):
        resolve_checkpoint(copy)
    empty = tmp_path / "global_step_9"
    (empty / "actor").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=f"cannot tell the backend of {empty / 'actor'}"):
        resolve_checkpoint(empty)


def test_missing_reward_stats_exits_2(fsdp_ckpts: dict[int, Path], tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.json"
    out = tmp_path / "hf"
    assert main(["--ckpt", str(fsdp_ckpts[1]), "--out", str(out), "--reward-stats", str(missing)]) == 2
    assert f"reward stats file {missing} does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_corrupted_real_shard_fails_even_with_verify(fsdp_ckpts: dict[int, Path], tmp_path: Path, capsys) -> None:
    """64 random bytes in a real shard's tensor data (issue 21: verify said OK with diff 0): its CRC fails."""
    import os

    copy = tmp_path / f"global_step_{STEP}"
    shutil.copytree(fsdp_ckpts[2], copy)
    shard = copy / "actor" / "model_world_size_2_rank_1.pt"
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = os.urandom(64)
    shard.write_bytes(bytes(data))
    out = tmp_path / "hf"
    assert main(["--ckpt", str(copy), "--out", str(out), "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shard}: corrupt") and "CRC-32" in err and not out.exists()


def test_verify_fails_when_a_shard_changes_after_the_export_read_it(
    fsdp_ckpts: dict[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import ckpt_tools.merge as merge_mod

    copy = tmp_path / f"global_step_{STEP}"
    shutil.copytree(fsdp_ckpts[1], copy)
    real_export = merge_mod.export_fsdp

    def export_then_swap(layout, target, dtype):  # the file is replaced by another valid save meanwhile
        digests = real_export(layout, target, dtype)
        shard = layout.shard_path(0)
        state = torch.load(shard, weights_only=True)
        key = next(k for k, v in state.items() if v.is_floating_point())
        state[key] = state[key].clone()  # a DTensor: its local piece changes
        state[key].to_local()[0] += 1.0
        torch.save(state, shard)
        return digests

    monkeypatch.setattr(merge_mod, "export_fsdp", export_then_swap)
    out = tmp_path / "hf"
    assert main(["--ckpt", str(copy), "--out", str(out), "--verify", "--dtype", "float32"]) == 1
    assert "changed since the export read it" in capsys.readouterr().err and not out.exists()
