"""A CPU rollout backend for verl 0.9.1: transformers `generate` behind verl's rollout interfaces.

verl registers only vLLM, SGLang and TensorRT-LLM replicas, none of which runs without a GPU. This
module registers the rollout name ``hf_cpu`` with verl's two rollout registries:

- ``RolloutReplicaRegistry`` -> :class:`CPURolloutReplica`: one :class:`CPUGenerateServer` Ray actor
  per replica (hybrid mode: next to the trainer ranks), serving verl's agent loop token-in/token-out
  like the vLLM server: prompt ids already expanded by the agent loop, the frames and their metadata
  (fps) from the same qwen-vl-utils call, and the data config's ``mm_processor_kwargs`` (the VideoSpec
  pixel bounds) go through the model's HF processor, then ``model.generate``.
- the rollout-class registry (``rollout.base._ROLLOUT_REGISTRY``) -> :class:`CPUServerAdapter`: the
  trainer-side adapter; ``update_weights`` streams the actor's full tensors to the server after every
  step (verl's naive checkpoint engine), so each rollout samples from the current policy.

Loaded in every process through ``VERL_USE_EXTERNAL_MODULES`` (recipes/config/medgrpo_engine/cpu.yaml).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any

import ray
import torch
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import HFModelConfig
from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, RolloutReplicaRegistry, TokenOutput

from recipes.ext.cpu_generate import GenerateRequest, HFGenerator

ROLLOUT_NAME = "hf_cpu"
WEIGHT_BUCKET_BYTES = 256 << 20
logger = logging.getLogger(__name__)


def server_name(replica_rank: int) -> str:
    """Ray actor name of a replica's generate server (the adapter finds it by this name)."""
    return f"{ROLLOUT_NAME}_server_{replica_rank}"


class CPUGenerateServer:
    """The rollout server of one replica: an HF model answering verl's ``generate`` calls on CPU."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int):
        config = omega_conf_to_dataclass(config)
        model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        self.generator = HFGenerator(
            model_path=model_config.local_path, prompt_length=config.prompt_length,
            response_length=config.response_length, trust_remote_code=model_config.trust_remote_code)
        self.global_steps: int | None = None
        self._lock = asyncio.Lock()  # one generate or weight load at a time (the CPU is the bottleneck)

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data: list[Any] | None = None, video_data: list[Any] | None = None,
                       audio_data: list[Any] | None = None, mm_processor_kwargs: dict[str, Any] | None = None,
                       **_: Any) -> TokenOutput:
        if audio_data is not None:
            raise ValueError(f"{ROLLOUT_NAME} rollout: audio inputs are not supported")
        request = GenerateRequest(prompt_ids=list(prompt_ids), sampling_params=dict(sampling_params),
                                  images=image_data, videos=video_data,
                                  mm_processor_kwargs=dict(mm_processor_kwargs or {}))
        async with self._lock:
            token_ids, log_probs, stop = await asyncio.to_thread(self.generator.generate, request)
        return TokenOutput(token_ids=token_ids, log_probs=log_probs, stop_reason=stop,
                           extra_fields={"global_steps": self.global_steps})

    async def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: int | None) -> int:
        async with self._lock:
            loaded = await asyncio.to_thread(self.generator.load_weights, named_tensors)
        self.global_steps = global_steps
        return loaded

    def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # Memory and scheduling controls of the GPU servers: nothing to release or pause on CPU.
    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False, **_: Any) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **_: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class CPURolloutReplica(RolloutReplica):
    """One generate server per replica (tensor/pipeline parallel 1); colocated with its trainer ranks."""

    async def launch_servers(self) -> None:
        if self.world_size != 1:
            raise ValueError(f"{ROLLOUT_NAME} rollout: tensor/data/pipeline parallel sizes must be 1 "
                             f"(got a replica of {self.world_size} ranks)")
        server_cls = ray.remote(CPUGenerateServer)
        node = ray.get_runtime_context().get_node_id()
        if self.workers:  # hybrid: the node of the replica's trainer rank
            node = await self.workers[0].__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())
        server = server_cls.options(
            name=server_name(self.replica_rank), num_cpus=0, max_concurrency=self.max_concurrency,
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id=node, soft=False),
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.set_global_steps.remote(0)  # wait until the model is loaded
        self.servers = [server]
        self._server_handle = server
        self._server_address = server_name(self.replica_rank)


class CPUServerAdapter(BaseRollout):
    """Trainer-side half of the ``hf_cpu`` rollout: hands the actor's weights to the replica's server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank if replica_rank == -1 else replica_rank  # one rank per replica
        self.sleep_level = 1
        self._server: ray.actor.ActorHandle | None = None

    def _server_handle(self) -> ray.actor.ActorHandle:
        if self._server is None:
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    async def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]], wire_format: str = "named_tensors",
                             global_steps: int | None = None, **kwargs: Any) -> None:
        if wire_format != "named_tensors":
            raise ValueError(f"{ROLLOUT_NAME} rollout: weight format {wire_format!r} is not supported "
                             "(use rollout.checkpoint_engine.backend=naive)")
        if kwargs.get("peft_config") is not None:
            raise ValueError(f"{ROLLOUT_NAME} rollout: LoRA adapters are not supported (merge them)")
        # Every rank iterates (each tensor is gathered from the FSDP shards collectively); tensors go to
        # the server in buckets, so a larger model is never held twice in full in the object store.
        server, loaded, bucket, size = self._server_handle(), 0, [], 0
        for name, tensor in weights:
            copy = tensor.detach().to("cpu", copy=True)
            bucket.append((name, copy))
            size += copy.numel() * copy.element_size()
            if size >= WEIGHT_BUCKET_BYTES:
                loaded += await server.load_weights.remote(bucket, global_steps)
                bucket, size = [], 0
        if bucket:
            loaded += await server.load_weights.remote(bucket, global_steps)
        logger.info("%s replica %d: loaded %d tensors (step %s)", ROLLOUT_NAME, self.replica_rank, loaded, global_steps)


RolloutReplicaRegistry.register(ROLLOUT_NAME, lambda: CPURolloutReplica)
rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = f"{__name__}.CPUServerAdapter"
