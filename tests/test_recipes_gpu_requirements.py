"""The GPU requirement files agree with what the installed verl declares, and `bash run.sh setup-gpu`
installs them in the order that resolves (torch, then flash-attn without build isolation, then the rest).

verl's extras are read from the installed distribution's metadata (`importlib.metadata`), expanded
the way pip expands them (`verl[fsdp]` -> `verl[flash-attn-cu130torch211]` -> `flash-attn==2.8.3`).
"""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
GPU, GPU_TORCH, GPU_MEGATRON = "requirements-gpu.txt", "requirements-gpu-torch.txt", "requirements-gpu-megatron.txt"
NOT_ON_PYPI = {"apex"}  # in verl's megatron extra; NVIDIA apex is built from its repository (docs/recipes.md)
# in verl's megatron extra, replaced by what PyPI has next to verl[vllm]: Megatron-Bridge 0.5.2 is not on
# PyPI, so the recipe uses mbridge (vanilla_mbridge: true), which verl's vllm extra already installs
REPLACED = {"megatron-bridge": "mbridge"}
TORCH = ("torch", "torchvision", "torchaudio")


def read_requirements(name: str) -> dict[str, Requirement]:
    out = {}
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[canonicalize_name(req.name)] = req
    return out


def verl_requirements(extras: set[str]) -> dict[str, list[Requirement]]:
    """What `pip install verl[extras]` asks for: name -> every requirement on it (self-extras expanded)."""
    requires = [Requirement(r) for r in distribution("verl").requires or []]
    out: dict[str, list[Requirement]] = {}
    todo, seen = set(extras), set()
    for req in requires:  # the base requirements
        if req.marker is None:
            out.setdefault(canonicalize_name(req.name), []).append(req)
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for req in requires:
            if req.marker is None or not req.marker.evaluate({"extra": extra}):
                continue
            if canonicalize_name(req.name) == "verl":
                todo |= set(req.extras) - seen
            else:
                out.setdefault(canonicalize_name(req.name), []).append(req)
    return out


def pinned(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req} is not pinned with =="
    return spec.version


def test_gpu_requirements_agree_with_verl_extras():
    ours = read_requirements(GPU)
    verl = ours["verl"]
    assert pinned(verl) == distribution("verl").version == pinned(read_requirements("requirements.txt")["verl"])
    declared = verl_requirements(set(verl.extras))
    for name, req in ours.items():
        if name == "verl" or not req.specifier:
            continue
        for theirs in declared.get(name, []):
            assert theirs.specifier.contains(pinned(req), prereleases=True), \
                f"{GPU}: {req} conflicts with verl {verl.extras} requiring {theirs}"
    # flash-attn must be pinned here (setup-gpu installs it alone, before the rest), as verl pins it
    assert "flash-attn" in declared and pinned(ours["flash-attn"]) == pinned(declared["flash-attn"][0])


def test_torch_first_file_matches_verl_and_the_gpu_file():
    ours, first = read_requirements(GPU), read_requirements(GPU_TORCH)
    declared = verl_requirements(set(ours["verl"].extras))
    assert set(first) == set(TORCH)
    for name in TORCH:
        assert pinned(first[name]) == pinned(ours[name]) == pinned(declared[name][0])


def test_megatron_file_lists_what_verl_megatron_adds():
    """Every package verl's megatron extra adds, except apex (not on PyPI) and Megatron-Bridge (replaced
    by mbridge, already in verl[vllm], selected by the recipe); pins inside verl's; Transformer Engine
    with its PyTorch extension (without it the package is an empty shell)."""
    from omegaconf import OmegaConf

    ours = read_requirements(GPU)
    base = verl_requirements(set(ours["verl"].extras))
    megatron = verl_requirements({"megatron"})
    extra_file = read_requirements(GPU_MEGATRON)
    wanted = set(megatron) - set(base) - set(ours) - NOT_ON_PYPI - set(REPLACED)
    assert wanted == set(extra_file), f"{GPU_MEGATRON} should list {sorted(wanted)}"
    for name, req in extra_file.items():
        for theirs in megatron[name]:
            if req.specifier:
                assert theirs.specifier.contains(pinned(req), prereleases=True), f"{req} vs verl's {theirs}"
    assert {"pytorch", "core_cu13"} <= set(extra_file["transformer-engine"].extras)
    assert set(megatron) >= NOT_ON_PYPI | set(REPLACED)
    assert all(new in base for new in REPLACED.values())  # mbridge comes with verl[vllm,fsdp]
    engine = OmegaConf.load(REPO / "recipes" / "config" / "medgrpo_engine" / "megatron.yaml")
    assert engine.actor_rollout_ref.actor.megatron.vanilla_mbridge is True  # the bridge that is installed


# ---- bash run.sh setup-gpu ------------------------------------------------------------------------
STUB = """#!/bin/bash
echo "$*" >> "{log}"
echo "FLASH_ATTN_CUDA_ARCHS=$FLASH_ATTN_CUDA_ARCHS MAX_JOBS=$MAX_JOBS \\
NVTE=$NVTE_FRAMEWORK:$NVTE_CUDA_ARCHS" >> "{log}.env"
"""


def _setup_gpu(venv: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = venv / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "MEDGRPO_GPU_VENV": str(venv)}
    proc = subprocess.run(["bash", str(REPO / "run.sh"), "setup-gpu", *args], env=env, capture_output=True,
                          text=True, timeout=60)
    return proc, log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def stub_venv(tmp_path) -> Path:
    """A venv whose python records its arguments (pip calls) instead of installing anything."""
    venv = tmp_path / "gpu venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(STUB.format(log=venv / "calls.log"))
    (venv / "bin" / "python").chmod(0o755)
    return venv


def test_setup_gpu_installs_torch_then_flash_attn_then_the_rest(stub_venv):
    proc, calls = _setup_gpu(stub_venv, "--megatron")
    assert proc.returncode == 0, proc.stderr
    pip = [c for c in calls if c.startswith("-m pip install")]
    flash = next(line for line in (REPO / GPU).read_text().splitlines() if line.startswith("flash-attn=="))
    assert pip[1:] == [f"-m pip install -r {GPU_TORCH}", f"-m pip install --no-build-isolation {flash}",
                       f"-m pip install -r {GPU}", f"-m pip install --no-build-isolation -r {GPU_MEGATRON}"], calls
    assert "ninja" in pip[0] and "packaging" in pip[0]  # flash-attn's build needs, installed first
    env = (stub_venv / "calls.log.env").read_text().splitlines()
    assert env[-1].startswith("FLASH_ATTN_CUDA_ARCHS=90 MAX_JOBS=") and env[-1].endswith("NVTE=pytorch:90")
    assert int(env[-1].split("MAX_JOBS=")[1].split()[0]) >= 1  # one arch, bounded jobs: not hours of compile
    again, calls = _setup_gpu(stub_venv, "--megatron")
    assert again.returncode == 0 and not [c for c in calls if "pip install" in c]  # nothing changed
    assert "up to date" in again.stdout


def test_setup_gpu_refuses_the_cpu_venv_and_unknown_flags(stub_venv):
    env = {**os.environ, "MEDGRPO_GPU_VENV": ".venv"}
    proc = subprocess.run(["bash", str(REPO / "run.sh"), "setup-gpu"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "must not be the CPU test venv" in proc.stderr
    proc, calls = _setup_gpu(stub_venv, "--cuda")
    assert proc.returncode == 2 and "usage" in proc.stderr and calls == []


# ---- bash run.sh demo --gpu -----------------------------------------------------------------------
def test_demo_gpu_runs_in_the_gpu_environment(stub_venv, tmp_path):
    """`demo --gpu` uses the GPU venv's interpreter (the preflight would refuse the CPU venv's torch),
    and says how to make one when it is missing; the CPU venv is not set up for it."""
    env = {**os.environ, "MEDGRPO_GPU_VENV": str(stub_venv), "MEDGRPO_VENV": str(tmp_path / "no-cpu-venv")}
    proc = subprocess.run(["bash", str(REPO / "run.sh"), "demo", "--gpu", "/models/sft"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (stub_venv / "calls.log").read_text().splitlines()[0] == "-m testbed.demo --gpu /models/sft"
    assert not (tmp_path / "no-cpu-venv").exists()
    env["MEDGRPO_GPU_VENV"] = str(tmp_path / "missing")
    proc = subprocess.run(["bash", str(REPO / "run.sh"), "demo", "--gpu", "/models/sft"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "bash run.sh setup-gpu" in proc.stderr
