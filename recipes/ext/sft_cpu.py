"""verl's SFT trainer on CPU: `torchrun ... -m recipes.ext.sft_cpu --config-path ... --config-name ...`.

The same steps as ``verl.trainer.sft_trainer.run_sft`` (verl's public ``SFTTrainer``), except that
the default process group is plain gloo (verl's own start-up composes a backend string torch rejects
on a CPU-only host; recipes/ext/cpu_platform.py). Selected by the SFT launchers when
MEDGRPO_ENGINE=cpu (recipes/common.sh).
"""

from __future__ import annotations

import os

os.environ.setdefault("VERL_PLATFORM", "cpu")

import hydra
import torch.distributed as dist
from omegaconf import DictConfig

import recipes.ext.cpu_engine  # noqa: F401  (registers the FSDP engine for "cpu")
import recipes.ext.cpu_platform as cpu_platform  # registers the "cpu" platform


@hydra.main(config_path=None, config_name=None, version_base=None)
def main(config: DictConfig) -> None:
    from verl.trainer.sft_trainer import SFTTrainer

    cpu_platform.init_gloo_process_group()
    try:
        SFTTrainer(config=config).fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
