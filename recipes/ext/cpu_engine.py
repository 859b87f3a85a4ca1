"""verl's FSDP training engine on the "cpu" platform, registered through verl's `EngineRegistry`.

verl registers its FSDP/FSDP2 engine for the device names "cuda" and "npu"; this module registers
the same engine for "cpu" (recipes/ext/cpu_platform.py), with one difference: a forward-only
engine (the reference policy) is built like the actor instead of under FSDP2's
``CPUOffloadPolicy(pin_memory=True)``. Offloading to the host means nothing when the host is the
device, and pinning memory needs a CUDA driver.
"""

from __future__ import annotations

from typing import Any

from verl.workers.engine.base import EngineRegistry
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

from recipes.ext.cpu_platform import PLATFORM_NAME


@EngineRegistry.register(model_type="language_model", backend=["fsdp", "fsdp2"], device=PLATFORM_NAME)
class CPUFSDPEngineWithLMHead(FSDPEngineWithLMHead):
    """FSDP2 language-model engine whose forward-only (reference) copy stays unpinned on the host."""

    def _build_fsdp_module(self, module: Any) -> Any:
        forward_only = self.engine_config.forward_only
        self.engine_config.forward_only = False  # only read here to pick the offload policy
        try:
            return super()._build_fsdp_module(module)
        finally:
            self.engine_config.forward_only = forward_only
