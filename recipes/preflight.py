"""Preflight of a real launch: what the composed config needs from *this* interpreter.

Run by the launchers (recipes/common.sh, `python -m recipes.dry_run --launch`) after the dry-run
checks and before verl starts Ray, so that a wrong environment fails in seconds instead of at rollout
start-up minutes later:
- flash-attn is importable when the config packs sequences (`use_remove_padding: true`) or keeps
  verl's default `attn_implementation` (flash_attention_2); otherwise verl dies later with
  `NameError: _flash_use_top_left_mask`;
- on a GPU launch (`trainer.device` cuda, verl's default): torch is a CUDA build, at least
  `trainer.n_gpus_per_node` GPUs are visible, the rollout engine (vllm / sglang) is installed, and the
  Megatron packages are when the engine is megatron (Megatron-Bridge, or mbridge with vanilla_mbridge);
- `trainer.device: cpu` (`medgrpo_engine=cpu`, the CPU training mode) skips the GPU checks.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from recipes.checks import Report, installed, select

ROLLOUT_MODULES = {"vllm": "vllm", "sglang": "sglang"}  # rollout name -> module it needs
SETUP_HINT = "install the GPU environment (bash run.sh setup-gpu; docs/recipes.md) and activate it or pass PYTHON="


def interpreter_summary() -> str:
    """`<python> (Python X.Y, torch V, CUDA c | CPU-only build)` of this process."""
    version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    try:
        import torch
    except ImportError:
        return f"{sys.executable} ({version}, no torch)"
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else (
        f"ROCm {torch.version.hip}" if getattr(torch.version, "hip", None) else "CPU-only build")
    return f"{sys.executable} ({version}, torch {torch.__version__}, {build})"


def cpu_build_of_vllm() -> str | None:
    """The installed `vllm` distribution's version when it is vLLM's CPU build (`0.24.0+cpu`), else None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("vllm")
    except PackageNotFoundError:
        return None
    return found if found.endswith("+cpu") else None


def _keys(kind: str) -> tuple[str, str]:
    model = "actor_rollout_ref.model" if kind == "ppo" else "model"
    return f"{model}.use_remove_padding", f"{model}.override_config.attn_implementation"


def check_flash_attn(cfg: Any, kind: str, report: Report) -> None:
    rmpad_key, attn_key = _keys(kind)
    attn = select(cfg, attn_key)
    attn = attn if isinstance(attn, str) else None
    needs = [f"{rmpad_key}=true"] if select(cfg, rmpad_key) is True else []
    if attn in (None, "flash_attention_2"):
        needs.append(f"{attn_key}={attn or 'flash_attention_2 (verl default)'}")
    if needs and not installed("flash_attn"):
        report.errors.append(f"flash-attn is not installed in {sys.executable}, but {' and '.join(needs)} need it "
                             f"(verl would stop later with NameError: _flash_use_top_left_mask): {SETUP_HINT}; "
                             f"or set {rmpad_key}=false +{attn_key}=sdpa")


def check_gpus(cfg: Any, report: Report) -> None:
    """A CUDA (or ROCm) torch build and at least trainer.n_gpus_per_node visible GPUs."""
    try:
        import torch
    except ImportError:
        report.errors.append(f"torch is not installed in {sys.executable}: {SETUP_HINT}")
        return
    if not torch.version.cuda and not getattr(torch.version, "hip", None):
        report.errors.append(f"torch {torch.__version__} in {sys.executable} is a CPU-only build: {SETUP_HINT} "
                             f"(or train on CPU with medgrpo_engine=cpu)")
        return
    visible = torch.cuda.device_count()  # 0 without a driver or with CUDA_VISIBLE_DEVICES=''
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={shown!r})" if shown is not None else ""
    wanted = select(cfg, "trainer.n_gpus_per_node")
    if visible == 0:
        report.errors.append(f"no GPU is visible to torch {torch.__version__}{where}: check nvidia-smi and "
                             f"CUDA_VISIBLE_DEVICES, or train on CPU with medgrpo_engine=cpu")
    elif isinstance(wanted, int) and visible < wanted:
        report.errors.append(f"trainer.n_gpus_per_node={wanted} (GPUS_PER_NODE) but this node sees {visible} "
                             f"GPU(s){where}")


def check_engines(cfg: Any, kind: str, report: Report) -> None:
    if kind == "ppo":
        rollout = select(cfg, "actor_rollout_ref.rollout.name")
        module = ROLLOUT_MODULES.get(rollout)
        if module and not installed(module):
            report.errors.append(f"actor_rollout_ref.rollout.name={rollout} but {module} is not installed in "
                                 f"{sys.executable}: {SETUP_HINT}")
        elif module == "vllm" and cpu_build_of_vllm():
            report.errors.append(f"vllm in {sys.executable} is vLLM's CPU build ({cpu_build_of_vllm()}, the CPU "
                                 f"test venv's): {SETUP_HINT}")
        strategy_key, megatron_key = "actor_rollout_ref.actor.strategy", "actor_rollout_ref.actor.megatron"
    else:
        strategy_key, megatron_key = "engine.strategy", "engine"
    if select(cfg, strategy_key) != "megatron":
        return
    vanilla = select(cfg, f"{megatron_key}.vanilla_mbridge") is True
    needed = {"megatron.core": "megatron-core", ("mbridge" if vanilla else "megatron.bridge"):
              ("mbridge (vanilla_mbridge=true)" if vanilla else "Megatron-Bridge")}
    for module, package in needed.items():
        if not installed(module):
            report.errors.append(f"{strategy_key}=megatron needs {package} ({module}), not installed in "
                                 f"{sys.executable}: pip install -r requirements-gpu-megatron.txt (docs/recipes.md)")


def check_launch(cfg: Any, kind: str, report: Report, device: str | None = None) -> None:
    """All launch checks on `report`, each problem reported (no early stop). `device`: trainer.device
    as configured (default: as in `cfg`; verl's auto_set_device turns "cpu" into the detected platform
    in a process without the CPU platform plugin)."""
    report.notes.append(f"python: {interpreter_summary()}")
    check_flash_attn(cfg, kind, report)
    device = select(cfg, "trainer.device") if device is None else device
    if device == "cpu":
        report.notes.append("trainer.device=cpu (CPU training mode): GPU and rollout-engine checks skipped")
        return
    if device not in (None, "cuda"):
        report.notes.append(f"trainer.device={device}: GPU checks are for CUDA only; not checked")
        return
    check_gpus(cfg, report)
    check_engines(cfg, kind, report)
