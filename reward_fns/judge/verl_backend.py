"""`medgrpo.reward.judge.backend: verl`: the judge served by verl's reward-model servers.

verl 0.9.1's reward loop launches the model at `reward.reward_model.model_path` as vLLM/SGLang
replicas (`rollout.tensor_model_parallel_size` GPUs each, on their own resource pool), puts its
naive router in front and hands the router's `host:port` to every reward manager as
`reward_router_address`. The router proxies any path, so the OpenAI-compatible chat endpoint is
`http://<address>/v1`; the served model name is the model path. Our manager then judges exactly as
with the `openai` backend (same prompt, fence, strict parser, flagging, cache, concurrency,
deadlines); only the endpoint and the model name change.

verl sends a sample to the reward manager's `run_single` when a reward model is enabled only if
`reward.custom_reward_function.path` is set (otherwise it scores with the model as a
discriminative RM): the recipe points it at `genrm_route` below, which is never called.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reward_fns.judge.client import JudgeConfig

HOOK_PATH, HOOK_NAME = "pkg://reward_fns.judge.verl_backend", "genrm_route"


def genrm_route(*_: Any, **__: Any) -> float:
    """verl's `custom_reward_function` placeholder (see the module docstring); never called."""
    raise RuntimeError("medgrpo: the MedGRPO reward manager scores samples itself; this hook only tells verl "
                       "to route samples with a reward model to the manager's run_single")


def router_base_url(address: str) -> str:
    """The OpenAI base URL behind verl's router address (`host:port`, `[v6]:port` or a URL)."""
    address = address.strip().rstrip("/")
    if not address.startswith(("http://", "https://")):
        address = f"http://{address}"
    return address if address.endswith("/v1") else f"{address}/v1"


def _get(cfg: Any, dotted: str) -> Any:
    """The value at `dotted`, or None when absent or unset (`???`)."""
    node = cfg
    for part in dotted.split("."):
        if node is None or not hasattr(node, "get"):
            return None
        try:
            node = node.get(part)
        except Exception:  # OmegaConf's MissingMandatoryValue for `???`
            return None
    return None if node == "???" else node


def check_verl_judge(trainer_config: Any) -> tuple[list[str], list[str]]:
    """(errors, notes) about a composed trainer config whose judge backend is `verl` (none otherwise)."""
    if _get(trainer_config, "medgrpo.reward.judge.backend") != "verl" or not _get(
            trainer_config, "medgrpo.reward.judge.enabled"):
        return [], []
    errors: list[str] = []
    rm = "reward.reward_model"
    if _get(trainer_config, f"{rm}.enable") is not True:
        errors.append(f"judge backend 'verl' needs {rm}.enable=true (verl launches the judge servers)")
    if not _get(trainer_config, "reward.custom_reward_function.path"):
        errors.append("judge backend 'verl' needs reward.custom_reward_function.path (else verl scores samples "
                      f"with the model as a discriminative RM); use path={HOOK_PATH} name={HOOK_NAME}")
    model = _get(trainer_config, f"{rm}.model_path")
    if not model:
        errors.append(f"judge backend 'verl' needs {rm}.model_path (the HF chat model that judges)")
    per_replica = _get(trainer_config, f"{rm}.rollout.tensor_model_parallel_size") or 1
    gpus = (_get(trainer_config, f"{rm}.n_gpus_per_node") or 0) * (_get(trainer_config, f"{rm}.nnodes") or 0)
    if _get(trainer_config, f"{rm}.enable_resource_pool") and (gpus <= 0 or gpus % per_replica):
        errors.append(f"judge servers: {rm}.n_gpus_per_node x nnodes = {gpus} GPUs must be a positive multiple "
                      f"of the GPUs per replica ({rm}.rollout.tensor_model_parallel_size = {per_replica})")
    notes = [] if errors else [f"judge: {model} served by verl, {max(gpus // per_replica, 1)} replica(s) of "
                               f"{per_replica} GPU(s), behind verl's reward router"]
    return errors, notes


def judge_config_for(config: JudgeConfig, trainer_config: Any, router_address: str | None) -> JudgeConfig:
    """The judge settings to use: unchanged for `openai`; router URL and served model for `verl` (the
    trainer config checked by `reward_fns.build.load_reward`)."""
    if config.backend != "verl" or not config.enabled:
        return config
    if router_address is None:
        raise ValueError("medgrpo.reward.judge: judge backend 'verl' but verl handed the reward manager no "
                         "reward_router_address")
    model = _get(trainer_config, "reward.reward_model.model_path")
    return dataclasses.replace(config, base_url=router_base_url(str(router_address)), model=str(model))

