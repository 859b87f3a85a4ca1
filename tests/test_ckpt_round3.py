"""Hostile checkpoints and outputs for ckpt_tools/merge.py (issue 21): --force never deletes the checkpoint,
a shard cannot run code at export, corrupted bytes fail their checksums, a forged world_size cannot hang."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ckpt_tools.integrity import verify_torch_zip_bytes
from ckpt_tools.layout import CheckpointError, resolve_checkpoint
from ckpt_tools.merge import main
from ckpt_tools.shards import read_fsdp_checkpoint, read_shard
from ckpt_tools.verify import checksum_problems

REPO = Path(__file__).resolve().parents[1]


def _checkpoint(root: Path, world_size: int = 2, step: int = 5) -> Path:
    """verl's FSDP layout with real torch.save shards holding replicated (plain) tensors."""
    step_dir = root / "run" / f"global_step_{step}"
    actor = step_dir / "actor"
    (actor / "huggingface").mkdir(parents=True)
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": world_size}))
    (actor / "huggingface" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    for rank in range(world_size):
        torch.save({"w": torch.arange(4096, dtype=torch.float32), "b": torch.ones(3)},
                   actor / f"model_world_size_{world_size}_rank_{rank}.pt")
    return step_dir


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "ckpt_tools/merge.py", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


# 1. --force never deletes or overwrites anything inside or containing the checkpoint

@pytest.mark.parametrize("out", ["run", ".", "run/global_step_5", "run/global_step_5/actor",
                                 "run/global_step_5/actor/huggingface", "run/global_step_5/new"])
def test_force_never_touches_the_checkpoint(tmp_path: Path, out: str, capsys: pytest.CaptureFixture[str]) -> None:
    step_dir = _checkpoint(tmp_path)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    assert main(["--ckpt", str(step_dir), "--out", str(tmp_path / out), "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out ") and err.count("\n") == 1, err
    assert "holds the checkpoint" in err or "must not be inside the checkpoint" in err
    assert _snapshot(tmp_path) == before


def test_force_from_the_command_line_keeps_a_grandparent(tmp_path: Path) -> None:
    step_dir = _checkpoint(tmp_path)
    before = _snapshot(tmp_path)
    proc = _cli("--ckpt", str(step_dir / "actor"), "--out", str(tmp_path), "--force")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"--out {tmp_path} holds the checkpoint" in proc.stderr
    assert _snapshot(tmp_path) == before


def test_force_refuses_a_symlinked_checkpoint_folder_and_other_inputs(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    step_dir = _checkpoint(tmp_path)
    links = tmp_path / "links"
    links.mkdir()
    (links / "global_step_5").symlink_to(step_dir)
    assert main(["--ckpt", str(links / "global_step_5"), "--out", str(links), "--force"]) == 2
    assert "holds the checkpoint" in capsys.readouterr().err and (links / "global_step_5").is_symlink()
    stats = tmp_path / "stats" / "reward_stats.json"
    stats.parent.mkdir()
    stats.write_text("{}")
    assert main(["--ckpt", str(step_dir), "--out", str(stats.parent), "--force", "--reward-stats", str(stats)]) == 2
    assert "holds the reward stats file" in capsys.readouterr().err and stats.read_text() == "{}"


@pytest.mark.parametrize("kind", ["file", "other folder"])
def test_force_replaces_only_an_earlier_export(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    step_dir = _checkpoint(tmp_path)
    out = tmp_path / "home"
    if kind == "file":
        out.write_text("precious")
    else:
        out.mkdir()
        (out / "thesis.tex").write_text("precious")
    before = _snapshot(tmp_path)
    assert main(["--ckpt", str(step_dir), "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert ("not a folder" in err) if kind == "file" else ("not a model export" in err)
    assert _snapshot(tmp_path) == before


def test_unwritable_output_place_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step_dir = _checkpoint(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert main(["--ckpt", str(step_dir), "--out", str(tmp_path / "afile" / "model")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot export") and str(tmp_path / "afile") in err and err.count("\n") == 1


# 2. no code execution at export

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_pickle_payload_in_a_shard_never_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step_dir = _checkpoint(tmp_path)
    marker = tmp_path / "PWNED"
    shard = step_dir / "actor" / "model_world_size_2_rank_1.pt"
    torch.save({"w": torch.arange(4096, dtype=torch.float32), "b": _Payload(marker)}, shard)
    with pytest.raises(CheckpointError, match=rf"^{shard}: refused: the shard holds Python objects other than"):
        read_shard(shard)
    out = tmp_path / "hf"
    assert main(["--ckpt", str(step_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shard}: refused") and err.count("\n") == 1
    assert not marker.exists() and not out.exists()


def test_a_pickle_payload_as_the_whole_shard_never_runs(tmp_path: Path) -> None:
    step_dir = _checkpoint(tmp_path)
    marker = tmp_path / "PWNED"
    shard = step_dir / "actor" / "model_world_size_2_rank_0.pt"
    torch.save(_Payload(marker), shard)
    with pytest.raises(CheckpointError, match="refused"):
        read_fsdp_checkpoint(resolve_checkpoint(step_dir))
    assert not marker.exists()


def test_every_load_at_export_is_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    calls: list[object] = []
    real_load = torch.load

    def recording_load(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    def verl_loader(*args: object, **kwargs: object) -> None:
        raise AssertionError("verl's merger unpickled a shard (weights_only=False)")

    monkeypatch.setattr(torch, "load", recording_load)
    monkeypatch.setattr(FSDPModelMerger, "_load_and_merge_state_dicts", verl_loader)
    monkeypatch.setattr(FSDPModelMerger, "_load_rank_zero_state_dict", verl_loader)
    step_dir = _checkpoint(tmp_path)
    assert main(["--ckpt", str(step_dir), "--out", str(tmp_path / "hf")]) == 2  # the toy config fails later ...
    assert calls == [True, True]
    err = capsys.readouterr().err  # ... as one line naming the folder, not a traceback from verl's writer
    assert err.startswith(f"error: {step_dir / 'actor' / 'huggingface'}: verl's writer cannot build") and \
        err.count("\n") == 1


# 3. corrupted bytes fail their checksums (the shard bytes that are loaded)

def _corrupt(path: Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    start = data.index(b"\x00\x00\x80?")  # inside the float tensor data of arange(4096): 1.0 is 00 00 80 3f
    data[start:start + n] = os.urandom(n)
    path.write_bytes(bytes(data))


def test_random_bytes_in_tensor_data_fail_the_crc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    step_dir = _checkpoint(tmp_path)
    shard = step_dir / "actor" / "model_world_size_2_rank_1.pt"
    clean = torch.load(shard, weights_only=True)
    _corrupt(shard)
    assert not torch.equal(torch.load(shard, weights_only=True)["w"], clean["w"])  # torch.load alone would accept it
    with pytest.raises(CheckpointError, match=rf"^{shard}: corrupt \(member '.*' fails its CRC-32 checksum\)"):
        read_shard(shard)
    out = tmp_path / "hf"
    assert main(["--ckpt", str(step_dir), "--out", str(out), "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shard}: corrupt") and err.count("\n") == 1 and not out.exists()


def test_digests_are_of_the_bytes_read_and_changes_are_named(tmp_path: Path) -> None:
    layout = resolve_checkpoint(_checkpoint(tmp_path))
    _, digests = read_fsdp_checkpoint(layout)
    assert digests == {str(layout.shard_path(r)): hashlib.sha256(layout.shard_path(r).read_bytes()).hexdigest()
                       for r in range(2)}
    torch.save({"w": torch.zeros(4096), "b": torch.ones(3)}, layout.shard_path(1))  # changed after the export read
    now = {**digests, str(layout.shard_path(1)): hashlib.sha256(layout.shard_path(1).read_bytes()).hexdigest()}
    problems = checksum_problems(digests, now, "changed since the export read it")
    assert problems == [f"{layout.shard_path(1)}: changed since the export read it (sha256 "
                        f"{digests[str(layout.shard_path(1))][:12]}... at export, "
                        f"{now[str(layout.shard_path(1))][:12]}... now)"]
    assert checksum_problems(digests, dict(digests), "x") == []


@pytest.mark.parametrize("damage", ["random file", "empty zip", "text zip", "list", "no tensors", "crc byte"])
def test_damaged_shards_are_one_line_errors(tmp_path: Path, damage: str) -> None:
    import zipfile

    step_dir = _checkpoint(tmp_path)
    shard = step_dir / "actor" / "model_world_size_2_rank_0.pt"
    if damage == "random file":
        shard.write_bytes(os.urandom(5000))
    elif damage == "empty zip":
        zipfile.ZipFile(shard, "w").close()
    elif damage == "text zip":
        with zipfile.ZipFile(shard, "w") as archive:
            archive.writestr("archive/data.pkl", b"hello")
    elif damage == "list":
        torch.save([torch.ones(2)], shard)
    elif damage == "no tensors":
        torch.save({}, shard)
    else:
        data = bytearray(shard.read_bytes())
        data[data.index(b"\x00\x00\x80?")] ^= 1
        shard.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as err:
        read_fsdp_checkpoint(resolve_checkpoint(step_dir))
    assert str(err.value).startswith(f"{shard}: ") and "\n" not in str(err.value)


def test_crc_check_passes_every_clean_torch_save(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save({"a": torch.randn(300, 7), "i": torch.arange(5), "e": torch.empty(0)}, path)
    verify_torch_zip_bytes(path.read_bytes(), path)


def test_mismatched_replicated_entries_are_named(tmp_path: Path) -> None:
    step_dir = _checkpoint(tmp_path)
    shard = step_dir / "actor" / "model_world_size_2_rank_1.pt"
    torch.save({"w": torch.arange(4096, dtype=torch.float64), "b": torch.ones(3)}, shard)
    with pytest.raises(CheckpointError, match=rf"^{shard}: replicated entry 'w' differs from rank 0"):
        read_fsdp_checkpoint(resolve_checkpoint(step_dir))


# a forged world_size: no hang, one line

@pytest.mark.parametrize(("value", "why"), [
    (1e8, "must be an integer >= 1, got 100000000.0"), ("2", "got '2'"), (True, "got True"), (0, "got 0"),
    (-3, "got -3"), (None, "got None"), ([2], r"got \[2\]"),
    (100_000_000, r"lacks shard files: \[.*rank_2\.pt'.*\] and 99999993 more"),
    (10**30, r"and 9{29}\d+ more"),
])
def test_forged_world_size_is_one_line_and_fast(tmp_path: Path, value: object, why: str) -> None:
    step_dir = _checkpoint(tmp_path)
    actor = step_dir / "actor"
    (actor / "fsdp_config.json").write_text(json.dumps({"world_size": value}))
    if isinstance(value, int) and not isinstance(value, bool) and value > 2:
        for rank in range(2):  # the files of a world_size-2 save, renamed as if from the forged one
            (actor / f"model_world_size_2_rank_{rank}.pt").rename(actor / f"model_world_size_{value}_rank_{rank}.pt")
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=why):
        resolve_checkpoint(step_dir)
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "\xff\xfe", "[1, 2]", "{", "x" * (2 << 20)])
def test_unreadable_fsdp_config_is_one_line(tmp_path: Path, text: str) -> None:
    step_dir = _checkpoint(tmp_path)
    (step_dir / "actor" / "fsdp_config.json").write_text(text, encoding="latin-1")
    with pytest.raises(CheckpointError, match=r"fsdp_config.json: ") as err:
        resolve_checkpoint(step_dir)
    assert "\n" not in str(err.value)
