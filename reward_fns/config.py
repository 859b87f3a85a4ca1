"""The `medgrpo.reward` config block (YAML / Hydra) as validated dataclasses.

    medgrpo:
      reward:
        tasks: {CVS: true, NAP: false, SA: true, STG: true, TAG: true, DVC: true, VS: true, RC: true}
        normalization: {enabled: true, stats_path: stats.json, k: 2.0, eps: 0.001, missing: error, method: logistic}
        judge: {enabled: true, base_url: null, model: gpt-4.1, api_key_env: OPENAI_API_KEY, ...}
        similarity: {model_path: null, max_batch: 256, max_wait_ms: 5.0}
        check_data: true   # at start-up, read data_source/ability of the train/val parquet files

Every key and its default is written once, in reward_fns/medgrpo_reward.yaml; `from_mapping` fills a
mapping from it (a mapping without a `judge` block has no judge). A task switched off scores 0 (raw and
normalized) with `task_enabled = 0` in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reward_fns.defaults import reward_defaults, type_problem
from reward_fns.judge.client import JudgeConfig
from reward_fns.normalize import NORMALIZERS, check_settings
from reward_fns.registry import TASK_NAMES


class RewardConfigError(ValueError):
    """The medgrpo.reward block is invalid; the message names the key."""


def _plain(data: Any) -> Any:
    """OmegaConf containers -> plain Python (without importing omegaconf when not needed)."""
    if type(data).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(data, resolve=True)
    return data


def _merged(data: Any, defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`data` over `defaults`; a key the defaults lack is an error naming it."""
    data = dict(_plain(data) or {})
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise RewardConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **data}


@dataclass(frozen=True)
class NormalizationConfig:
    enabled: bool
    stats_path: str | None
    k: float | None
    eps: float
    missing: str  # or "identity": raw reward where a pair has no stats
    min_n: int  # fewer rollouts behind a pair's quartiles log a warning at start-up
    method: str  # or "zscore" (ablation): reward_fns.normalize.NORMALIZERS

    def __post_init__(self) -> None:
        if problem := type_problem(self):
            raise RewardConfigError(f"medgrpo.reward.normalization: {problem}")
        if self.method not in NORMALIZERS:
            raise RewardConfigError(f"medgrpo.reward.normalization.method: one of {sorted(NORMALIZERS)}, "
                                    f"got {self.method!r}")
        if self.enabled and not self.stats_path and self.missing == "error":
            raise RewardConfigError("medgrpo.reward.normalization.stats_path is required when normalization is "
                                    "enabled (or set missing: identity, or enabled: false)")
        try:
            check_settings(self.k, self.eps, self.min_n, self.missing)
        except ValueError as err:
            raise RewardConfigError(f"medgrpo.reward.normalization: {err}") from None


@dataclass(frozen=True)
class SimilarityConfig:
    model_path: str | None  # None: the packaged all-MiniLM-L6-v2
    max_batch: int
    max_wait_ms: float

    def __post_init__(self) -> None:
        if problem := type_problem(self):
            raise RewardConfigError(f"medgrpo.reward.similarity: {problem}")


@dataclass(frozen=True)
class MedGRPORewardConfig:
    tasks: Mapping[str, bool]
    normalization: NormalizationConfig
    judge: JudgeConfig
    similarity: SimilarityConfig
    check_data: bool

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> MedGRPORewardConfig:
        """Validate a (possibly OmegaConf) mapping filled from the defaults; unknown keys are errors naming
        the key. Without a `judge` block there is no judge."""
        defaults = reward_defaults()
        data = _merged(data, {**defaults, "judge": None}, "medgrpo.reward")
        tasks = {**defaults["tasks"], **dict(_plain(data["tasks"]) or {})}
        unknown = sorted(set(tasks) - set(TASK_NAMES))
        if unknown:
            raise RewardConfigError(f"medgrpo.reward.tasks: unknown task(s) {unknown}; known: {list(TASK_NAMES)}")
        try:
            judge = JudgeConfig.from_dict(data["judge"]) if data["judge"] is not None else JudgeConfig.off()
        except (TypeError, ValueError) as err:
            raise RewardConfigError(f"medgrpo.reward.judge: {err}") from None
        return cls(
            tasks={k: bool(v) for k, v in tasks.items()},
            normalization=NormalizationConfig(**_merged(data["normalization"], defaults["normalization"],
                                                        "medgrpo.reward.normalization")),
            judge=judge,
            similarity=SimilarityConfig(**_merged(data["similarity"], defaults["similarity"],
                                                  "medgrpo.reward.similarity")),
            check_data=bool(data["check_data"]),
        )

    @classmethod
    def from_trainer_config(cls, config: Any) -> MedGRPORewardConfig:
        """The block at `medgrpo.reward` of a composed verl trainer config (defaults when absent)."""
        block = config.get("medgrpo") if hasattr(config, "get") else None
        reward = block.get("reward") if block is not None and hasattr(block, "get") else None
        return cls.from_mapping(reward)
