"""The `medgrpo_sync` trainer: verl 0.9.1's synchronous PPO trainer plus per-step MedGRPO metrics.

verl's v1 trainer logs only the global reward per training step; the reward manager's per-sample
`reward_extra_info` (raw / normalized reward, judge calls, cache hits, tokens, cost) reaches only the
validation metrics. This subclass of `PPOTrainerSync` adds, after verl's own step metrics, the
``medgrpo/*`` metrics of recipes/ext/reward_metrics.py, read from the step's TransferQueue rows
(``data_source`` and ``extra_fields["reward_extra_info"]``, where verl's agent loop stores them) before
verl clears them. Every logger verl is configured with (console, file, wandb, ...) gets them.

Plugged in through verl's public hooks: `register_trainer` (verl.trainer.ppo.v1) under the name
``medgrpo_sync``, selected by ``trainer.v1.trainer_mode: medgrpo_sync`` (recipes/config/medgrpo_grpo.yaml).
verl looks the name up in its TaskRunner, a Ray actor, so this module must be imported there: it is
listed in ``VERL_USE_EXTERNAL_MODULES``, which ``verl/__init__.py`` imports in every process (the
launchers export it and put it in the Ray runtime_env; the recipe config carries it too). It must come
after a platform plug-in such as recipes.ext.cpu_platform: importing verl's trainer looks the platform up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import transfer_queue as tq
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer

from recipes.ext.reward_metrics import step_reward_metrics

TRAINER_MODE = "medgrpo_sync"
_VERL_MODE = "sync"


def _as_list(values: Any) -> list[Any]:
    """A TransferQueue non-tensor field (numpy array, NonTensorStack or list subclass) as a plain list."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


@register_trainer(TRAINER_MODE)
class MedGRPOTrainerSync(PPOTrainerSync):
    """verl's synchronous trainer; its step metrics also carry the ``medgrpo/*`` reward and judge metrics."""

    # verl branches on `trainer_mode == "sync"` (replay buffer, prompt refill, TransferQueue checkpoints):
    # this trainer is the sync trainer under another registry name, so it reports verl's "sync" mode.
    @property
    def trainer_mode(self) -> str:
        return _VERL_MODE

    @trainer_mode.setter
    def trainer_mode(self, name: str) -> None:
        if name not in (TRAINER_MODE, _VERL_MODE):
            raise ValueError(f"{type(self).__name__} runs as trainer.v1.trainer_mode={TRAINER_MODE}, got {name!r}")

    def _compute_metrics(self, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
        super()._compute_metrics(batch, metrics, timing_raw, global_steps=global_steps, epoch=epoch)
        keep = np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["data_source", "extra_fields"])
        sources = _as_list(data["data_source"])
        infos = [field.get("reward_extra_info") or {} if isinstance(field, dict) else {}
                 for field in _as_list(data["extra_fields"])]
        kept = [i for i in range(len(sources)) if keep[i]] if keep.any() else list(range(len(sources)))
        metrics.update(step_reward_metrics([infos[i] for i in kept], [sources[i] for i in kept]))
