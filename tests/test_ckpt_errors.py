"""A checkpoint file cut short (killed save, partial copy, full disk) stops ckpt_tools/merge.py with
one line naming the file, before verl's merger or torch.load touch it (exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ckpt_tools.integrity import check_safetensors, check_torch_zip
from ckpt_tools.layout import CheckpointError
from ckpt_tools.merge import main

REPO = Path(__file__).resolve().parents[1]


def _fsdp_checkpoint(root: Path, world_size: int = 2) -> Path:
    """verl's FSDP layout with small real torch.save shards (contents are not merged here)."""
    actor = root / "global_step_3" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": world_size}))
    (actor / "huggingface" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    for rank in range(world_size):
        torch.save({"w": torch.arange(4096, dtype=torch.float32) + rank}, actor / f"model_world_size_2_rank_{rank}.pt")
    return actor


def _cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_truncated_fsdp_shard_is_named_on_one_line(tmp_path, keep):
    actor = _fsdp_checkpoint(tmp_path)
    shard = actor / "model_world_size_2_rank_1.pt"
    _cut(shard, keep)
    out = tmp_path / "hf"
    proc = subprocess.run([sys.executable, "ckpt_tools/merge.py", "--ckpt", str(actor.parent), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {shard}: truncated or corrupt"), proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_complete_files_pass(tmp_path):
    actor = _fsdp_checkpoint(tmp_path)
    check_torch_zip(actor / "model_world_size_2_rank_0.pt")
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"a": torch.ones(64, 64), "b": torch.zeros(3)}, str(path))
    check_safetensors(path)


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.5, 0.999])
def test_truncated_safetensors_is_named(tmp_path, keep):
    from safetensors.torch import save_file

    path = tmp_path / "model-00001-of-00002.safetensors"
    save_file({"a": torch.ones(64, 64), "b": torch.zeros(3)}, str(path))
    _cut(path, keep)
    with pytest.raises(CheckpointError, match=rf"^{path}: truncated or corrupt \("):
        check_safetensors(path)


def test_truncated_megatron_hf_weights_stop_the_merge(tmp_path, capsys):
    from safetensors.torch import save_file

    hf = tmp_path / "global_step_8" / "actor" / "model" / "huggingface"
    hf.mkdir(parents=True)
    (hf / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    weights = hf / "model.safetensors"
    save_file({"a": torch.ones(128, 128)}, str(weights))
    _cut(weights, 0.7)
    assert main(["--ckpt", str(hf.parents[2]), "--out", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {weights}: truncated or corrupt (tensor data ends at byte") and err.count("\n") == 1
