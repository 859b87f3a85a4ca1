"""The `medgrpo.reward` config block (YAML / Hydra) as validated dataclasses.

    medgrpo:
      reward:
        tasks: {CVS: true, NAP: false, SA: true, STG: true, TAG: true, DVC: true, VS: true, RC: true}
        normalization: {enabled: true, stats_path: stats.json, k: 2.0, eps: 0.001, missing: error, method: logistic}
        judge: {enabled: true, base_url: null, model: gpt-4.1, api_key_env: OPENAI_API_KEY, ...}
        similarity: {model_path: null, max_batch: 256, max_wait_ms: 5.0}
        check_data: true   # at start-up, read data_source/ability of the train/val parquet files

A task switched off scores 0 (raw and normalized) with `task_enabled = 0` in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from reward_fns.judge.client import JudgeConfig
from reward_fns.normalize import DEFAULT_EPS, DEFAULT_MIN_N, NORMALIZERS, check_settings
from reward_fns.registry import TASK_NAMES


class RewardConfigError(ValueError):
    """The medgrpo.reward block is invalid; the message names the key."""


def _plain(data: Any) -> Any:
    """OmegaConf containers -> plain Python (without importing omegaconf when not needed)."""
    if type(data).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(data, resolve=True)
    return data


def _checked(cls: type, data: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    data = dict(_plain(data) or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RewardConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    return data


@dataclass(frozen=True)
class NormalizationConfig:
    enabled: bool = True
    stats_path: str | None = None
    k: float | None = 2.0
    eps: float = DEFAULT_EPS
    missing: str = "error"  # or "identity": raw reward where a pair has no stats
    min_n: int = DEFAULT_MIN_N  # fewer rollouts behind a pair's quartiles log a warning at start-up
    method: str = "logistic"  # or "zscore" (ablation): reward_fns.normalize.NORMALIZERS

    def __post_init__(self) -> None:
        if self.method not in NORMALIZERS:
            raise RewardConfigError(f"medgrpo.reward.normalization.method: one of {sorted(NORMALIZERS)}, "
                                    f"got {self.method!r}")
        if self.missing not in ("error", "identity"):
            raise RewardConfigError(
                f"medgrpo.reward.normalization.missing: 'error' or 'identity', got {self.missing!r}")
        if self.enabled and not self.stats_path and self.missing == "error":
            raise RewardConfigError("medgrpo.reward.normalization.stats_path is required when normalization is "
                                    "enabled (or set missing: identity, or enabled: false)")
        try:
            check_settings(self.k, self.eps, self.min_n)
        except ValueError as err:
            raise RewardConfigError(f"medgrpo.reward.normalization: {err}") from None


@dataclass(frozen=True)
class SimilarityConfig:
    model_path: str | None = None  # None: the packaged all-MiniLM-L6-v2
    max_batch: int = 256
    max_wait_ms: float = 5.0


@dataclass(frozen=True)
class MedGRPORewardConfig:
    tasks: Mapping[str, bool] = field(default_factory=lambda: dict.fromkeys(TASK_NAMES, True))
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(enabled=False))
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    check_data: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> MedGRPORewardConfig:
        """Validate a (possibly OmegaConf) mapping; unknown keys are errors naming the key."""
        data = _checked(cls, data, "medgrpo.reward")
        tasks = dict(dict.fromkeys(TASK_NAMES, True), **dict(data.get("tasks") or {}))
        unknown = sorted(set(tasks) - set(TASK_NAMES))
        if unknown:
            raise RewardConfigError(f"medgrpo.reward.tasks: unknown task(s) {unknown}; known: {list(TASK_NAMES)}")
        judge = dict(_plain(data.get("judge")) or {"enabled": False})
        try:
            judge_config = JudgeConfig.from_dict(judge)
        except (TypeError, ValueError) as err:
            raise RewardConfigError(f"medgrpo.reward.judge: {err}") from None
        return cls(
            tasks={k: bool(v) for k, v in tasks.items()},
            normalization=NormalizationConfig(**_checked(NormalizationConfig, data.get("normalization"),
                                                         "medgrpo.reward.normalization")),
            judge=judge_config,
            similarity=SimilarityConfig(**_checked(SimilarityConfig, data.get("similarity"),
                                                   "medgrpo.reward.similarity")),
            check_data=bool(data.get("check_data", True)),
        )

    @classmethod
    def from_trainer_config(cls, config: Any) -> MedGRPORewardConfig:
        """The block at `medgrpo.reward` of a composed verl trainer config (defaults when absent)."""
        block = config.get("medgrpo") if hasattr(config, "get") else None
        reward = block.get("reward") if block is not None and hasattr(block, "get") else None
        return cls.from_mapping(reward)
