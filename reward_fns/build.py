"""Build the reward pipeline (embedder, judge, normalizer, scorer) from a MedGRPORewardConfig, and the one
validation of a composed trainer config's `medgrpo.reward` (`load_reward`), shared by the reward manager
and the recipe dry run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from reward_fns.answer_reward import RewardScorer
from reward_fns.caption_reward import CaptionScorer
from reward_fns.config import MedGRPORewardConfig, RewardConfigError
from reward_fns.judge.cache import JudgeCache
from reward_fns.judge.client import MedicalJudge
from reward_fns.judge.verl_backend import check_verl_judge
from reward_fns.normalize import NORMALIZERS, LogisticNormalizer, MissingStatsError, RewardStats
from reward_fns.registry import SOURCES, get_task
from reward_fns.similarity import Embedder, SimilarityService


def build_normalizer(config: MedGRPORewardConfig) -> LogisticNormalizer | None:
    norm = config.normalization
    if not norm.enabled:
        return None
    stats = RewardStats.load(norm.stats_path) if norm.stats_path else RewardStats()
    return NORMALIZERS[norm.method](stats, k=norm.k, eps=norm.eps, missing=norm.missing, min_n=norm.min_n)


def build_judge(config: MedGRPORewardConfig) -> MedicalJudge | None:
    if not config.judge.enabled:
        return None
    cache = JudgeCache(config.judge.cache_path) if config.judge.cache_path else None
    return MedicalJudge(config.judge, cache)


def build_scorer(config: MedGRPORewardConfig, with_captions: bool = True,
                 normalizer: LogisticNormalizer | None = None) -> RewardScorer:
    """The RewardScorer with ONE similarity service shared by NAP snapping and the caption scorer;
    `normalizer`: one already built from `config` (`load_reward`), else built here."""
    similarity = build_similarity(config)
    captions = CaptionScorer(build_judge(config), similarity) if with_captions else None
    normalizer = normalizer if normalizer is not None else build_normalizer(config)
    return RewardScorer(dict(config.tasks), normalizer, captions, similarity)


def build_similarity(config: MedGRPORewardConfig) -> SimilarityService:
    """The similarity service (MiniLM loads lazily, on the first text it has to embed)."""
    settings = config.similarity
    return SimilarityService(Embedder(settings.model_path), settings.max_batch, settings.max_wait_ms)


def data_pairs(files: Iterable[str]) -> list[tuple[str, str]]:
    """(data_source, task) pairs of RL parquet files, reading only two columns."""
    import pyarrow.parquet as pq

    pairs: dict[tuple[str, str], None] = {}
    for path in files:
        table = pq.read_table(path, columns=["data_source", "ability"])
        for source, task in zip(table["data_source"].to_pylist(), table["ability"].to_pylist(), strict=True):
            pairs[(str(source), str(task))] = None
    return list(pairs)


def check_pairs(pairs: Iterable[tuple[str, str]], normalizer: LogisticNormalizer | None) -> None:
    """Start-up check of the (data_source, task) pairs the data holds: known source, known task, stats."""
    pairs = list(dict.fromkeys(pairs))
    problems = []
    for source, task in pairs:
        if source not in SOURCES:
            problems.append(f"unknown data_source {source!r} (known: {', '.join(SOURCES)})")
        try:
            get_task(task)
        except KeyError as err:
            problems.append(str(err.args[0]))
    if problems:
        raise RewardConfigError("reward data check failed: " + "; ".join(dict.fromkeys(problems)))
    if normalizer is not None:
        normalizer.check_pairs(pairs)


def _files(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def load_reward(trainer_config: Any, data_files: Sequence[str] | None = None
                ) -> tuple[MedGRPORewardConfig, LogisticNormalizer | None]:
    """The validated `medgrpo.reward` of a composed trainer config and its normalizer (stats loaded and
    checked), with the (data_source, task) pairs of `data_files` (default: `data.train_files` and
    `data.val_files`) checked while `check_data` is on. Every problem is a RewardConfigError naming the
    key. The reward manager builds from it; the dry run reports its error."""
    block = "medgrpo.reward"
    try:
        settings = MedGRPORewardConfig.from_trainer_config(trainer_config)
    except RewardConfigError:
        raise
    except Exception as err:  # OmegaConf: an unresolvable interpolation, a `???` value
        raise RewardConfigError(f"{block}: {err}") from None
    errors, _ = check_verl_judge(trainer_config)  # medgrpo_judge=verl: verl's reward-model servers
    if errors:
        raise RewardConfigError(f"{block}.judge: " + "; ".join(errors))
    try:
        normalizer = build_normalizer(settings)  # loads and validates the stats file
    except FileNotFoundError:
        raise RewardConfigError(f"{block}.normalization.stats_path: file not found: "
                                f"{settings.normalization.stats_path} (write it with "
                                f"recipes/calibrate_reward_stats.sh)") from None
    except Exception as err:  # StatsError, ValueError: the message names the field
        raise RewardConfigError(f"{block}.normalization.stats_path: {err}") from None
    if settings.check_data:
        if data_files is None:
            data = trainer_config.get("data") or {}
            data_files = _files(data.get("train_files")) + _files(data.get("val_files"))
        try:
            check_pairs(data_pairs(data_files), normalizer)
        except (RewardConfigError, MissingStatsError, OSError) as err:
            raise RewardConfigError(f"{block} vs data: {err}") from None
    return settings, normalizer
