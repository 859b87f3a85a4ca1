"""A "cpu" platform for verl 0.9.1, registered through verl's platform plugin hook.

verl has no CPU platform: without a GPU it falls back to "nvidia" and every device call fails.
Importing this module (``VERL_USE_EXTERNAL_MODULES=recipes.ext.cpu_platform`` with
``VERL_PLATFORM=cpu``) registers :class:`PlatformCPU`: device "cpu", collectives over plain gloo,
no profiler, no IPC. Used for tests, laptops and `bash run.sh train-smoke`; never on a GPU cluster.

Process group: verl composes ``cpu:gloo,<device>:<backend>``, which torch rejects when the device is
"cpu" itself (duplicate device type). The CPU platform therefore brings the default group up as plain
gloo from the torch.distributed environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) the first
time verl asks for its collective backend; verl's Ray workers then find it initialised and skip their
own. torchrun SFT uses recipes.ext.sft_cpu, which starts the same group itself.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

import torch
import torch.distributed as dist
from verl.plugin.platform import PlatformBase, PlatformRegistry

PLATFORM_NAME = "cpu"


class _CPUDeviceModule(ModuleType):
    """``torch.cpu`` plus the ``torch.cuda``-style calls verl makes on its device module.

    Memory statistics are 0 (host memory has no caching allocator), cache/IPC calls are no-ops,
    ``mem_get_info`` reports host memory and the RNG state is the CPU generator's.
    """

    def __init__(self) -> None:
        super().__init__("medgrpo_cpu_device")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "cpu"

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return 0

    memory_reserved = max_memory_allocated = max_memory_reserved = memory_allocated

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        return None

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def ipc_collect() -> None:
        return None

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        return None

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_AVPHYS_PAGES") * page_size, pages * page_size

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed


CPU_DEVICE_MODULE = _CPUDeviceModule()
_DIST_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init_gloo_process_group(timeout_s: float = 3600.0) -> bool:
    """Start the default process group as plain gloo from the torch.distributed env; True if started."""
    if dist.is_initialized() or not all(os.environ.get(key) for key in _DIST_ENV):
        return False
    dist.init_process_group(backend="gloo", rank=int(os.environ["RANK"]),
                            world_size=int(os.environ["WORLD_SIZE"]), timeout=timedelta(seconds=timeout_s))
    return True


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """verl's device interface on the host CPU (selected with VERL_PLATFORM=cpu)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return CPU_DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: chosen explicitly with VERL_PLATFORM=cpu.
        return False

    def current_device(self) -> torch.device:  # type: ignore[override]
        # verl passes this straight to `.to(...)`, `to_empty(device=...)` and `torch.device(...)`;
        # an index would mean cuda:<index>.
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        init_gloo_process_group()
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        # Logical GPUs (ray_init num_gpus) stand for the CPU workers, so verl's pools place as usual.
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
