"""Preflight of a real launch: what the composed config needs from *this* interpreter.

Run by the launchers (recipes/common.sh, `python -m recipes.dry_run --launch`) after the dry-run
checks and before verl starts Ray, so that a wrong environment fails in seconds instead of at rollout
start-up minutes later:
- flash-attn is importable when the config packs sequences (`use_remove_padding: true`) or keeps
  verl's default `attn_implementation` (flash_attention_2); otherwise verl dies later with
  `NameError: _flash_use_top_left_mask`;
- on a GPU launch (`trainer.device` cuda, verl's default): torch is a CUDA build, at least
  `trainer.n_gpus_per_node` GPUs are visible (plus the judge's own GPUs with `medgrpo_judge=verl` on
  one node; verl itself checks the pool only after its start-up scan), a driver new enough for
  torch's CUDA when none is visible, the rollout engine (vllm / sglang) is installed, and the
  Megatron packages are when the engine is megatron (mbridge with vanilla_mbridge, else
  Megatron-Bridge; Megatron-Core; Transformer Engine with its compiled PyTorch extension);
- `trainer.device: cpu` (`medgrpo_engine=cpu`, the CPU training mode) skips the GPU checks;
- the judge (backend openai, a caption task rewarded, `judge.startup_check` true): one real judge
  request from this node must succeed (reward_fns/judge/health.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Any

from recipes.check_report import Report, select
from recipes.checks import installed

ROLLOUT_MODULES = {"vllm": "vllm", "sglang": "sglang"}  # rollout name -> module it needs
MIN_DRIVER = {13: 580, 12: 525}  # CUDA major of the torch build -> oldest NVIDIA driver branch that runs it
TE_EXTENSION = "transformer_engine_torch"  # Transformer Engine's compiled PyTorch extension
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
    judge = judge_pool_gpus(cfg)
    if visible == 0:
        old = old_driver(torch.version.cuda)
        report.errors.append(old or f"no GPU is visible to torch {torch.__version__}{where}: check nvidia-smi and "
                             f"CUDA_VISIBLE_DEVICES, or train on CPU with medgrpo_engine=cpu")
    elif isinstance(wanted, int) and visible < wanted + judge:
        also = f" + {judge} for the judge's own pool (medgrpo_judge=verl)" if judge else ""
        report.errors.append(f"trainer.n_gpus_per_node={wanted} (GPUS_PER_NODE){also} but this node sees {visible} "
                             f"GPU(s){where}" + ("; lower GPUS_PER_NODE so that actor and judge fit" if judge else ""))


def judge_pool_gpus(cfg: Any) -> int:
    """GPUs the judge's own resource pool takes on this node (single-node runs with medgrpo_judge=verl)."""
    rm = "reward.reward_model"
    if select(cfg, f"{rm}.enable") is not True or select(cfg, f"{rm}.enable_resource_pool") is not True:
        return 0
    if select(cfg, "trainer.nnodes") != 1 or select(cfg, f"{rm}.nnodes") != 1:
        return 0  # multi-node: the pools may sit on different nodes (Ray checks the cluster)
    gpus = select(cfg, f"{rm}.n_gpus_per_node")
    return gpus if isinstance(gpus, int) else 0


def old_driver(cuda: str | None) -> str | None:
    """An error when nvidia-smi reports a driver older than torch's CUDA build needs (None otherwise)."""
    need = MIN_DRIVER.get(int(str(cuda).split(".")[0])) if cuda and str(cuda)[0].isdigit() else None
    smi = shutil.which("nvidia-smi")
    if need is None or smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.split()
        have = int(out[0].split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    if have >= need:
        return None
    return (f"no GPU is visible: torch is a CUDA {cuda} build, which needs an NVIDIA driver >= {need}, but nvidia-smi "
            f"reports driver {out[0]}: update the driver, or install a torch built for an older CUDA (docs/recipes.md, "
            f"GPU set-up)")


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
              ("mbridge (vanilla_mbridge=true)" if vanilla else "Megatron-Bridge (vanilla_mbridge=false)"),
              "transformer_engine": "transformer-engine"}
    for module, package in needed.items():
        if not installed(module):
            report.errors.append(f"{strategy_key}=megatron needs {package} ({module}), not installed in "
                                 f"{sys.executable}: bash run.sh setup-gpu --megatron (docs/recipes.md, Megatron)")
    if installed("transformer_engine") and not installed(TE_EXTENSION):
        report.errors.append(f"Transformer Engine is installed in {sys.executable} without its PyTorch extension "
                             f"({TE_EXTENSION}; `pip install transformer-engine` without extras is an empty meta "
                             f"package): bash run.sh setup-gpu --megatron builds transformer-engine[pytorch] "
                             f"(docs/recipes.md, Megatron)")


def check_judge(cfg: Any, report: Report) -> None:
    """One real judge request from this node (backend openai, a judged task on, startup_check true)."""
    from reward_fns.config import MedGRPORewardConfig
    from reward_fns.judge.health import judge_used, probe_judge

    try:
        settings = MedGRPORewardConfig.from_trainer_config(cfg)
    except Exception:  # invalid block: the dry-run checks report it
        return
    judge = settings.judge
    if judge.backend != "openai" or not judge_used(settings):
        return
    where = f"{judge.model} at {judge.base_url or 'api.openai.com'}"
    if not judge.startup_check:
        report.warnings.append(f"judge ({where}) not probed: medgrpo.reward.judge.startup_check=false")
        return
    started = time.monotonic()
    result = probe_judge(judge)
    if result.ok:
        report.notes.append(f"judge: {where} answered one request in {time.monotonic() - started:.1f} s")
        return
    report.errors.append(f"the judge ({where}) did not answer one request from this node: {result.reason} "
                         f"(every node needs the endpoint and ${judge.api_key_env}; medgrpo.reward.judge."
                         f"startup_check=false launches anyway, then a dead judge stops the run during training)")


def check_launch(cfg: Any, kind: str, report: Report, device: str | None = None) -> None:
    """All launch checks on `report`, each problem reported (no early stop). `device`: trainer.device
    as configured (default: as in `cfg`; verl's auto_set_device turns "cpu" into the detected platform
    in a process without the CPU platform plugin)."""
    report.notes.append(f"python: {interpreter_summary()}")
    check_flash_attn(cfg, kind, report)
    if kind == "ppo":
        check_judge(cfg, report)
    device = select(cfg, "trainer.device") if device is None else device
    if device == "cpu":
        report.notes.append("trainer.device=cpu (CPU training mode): GPU and rollout-engine checks skipped")
        return
    if device not in (None, "cuda"):
        report.notes.append(f"trainer.device={device}: GPU checks are for CUDA only; not checked")
        return
    check_gpus(cfg, report)
    check_engines(cfg, kind, report)
