"""Build the reward pipeline (embedder, judge, normalizer, scorer) from a MedGRPORewardConfig."""

from __future__ import annotations

from collections.abc import Iterable

from reward_fns.answer_reward import RewardScorer
from reward_fns.caption_reward import CaptionScorer
from reward_fns.config import MedGRPORewardConfig, RewardConfigError
from reward_fns.judge.cache import JudgeCache
from reward_fns.judge.client import MedicalJudge
from reward_fns.normalize import NORMALIZERS, LogisticNormalizer, RewardStats
from reward_fns.registry import SOURCES, get_task
from reward_fns.similarity import Embedder, SimilarityService


def build_normalizer(config: MedGRPORewardConfig) -> LogisticNormalizer | None:
    norm = config.normalization
    if not norm.enabled:
        return None
    stats = RewardStats.load(norm.stats_path) if norm.stats_path else RewardStats()
    return NORMALIZERS[norm.method](stats, k=norm.k, eps=norm.eps, missing=norm.missing,  # type: ignore[arg-type]
                                    min_n=norm.min_n)


def build_judge(config: MedGRPORewardConfig) -> MedicalJudge | None:
    if not config.judge.enabled:
        return None
    cache = JudgeCache(config.judge.cache_path) if config.judge.cache_path else None
    return MedicalJudge(config.judge, cache)


def build_scorer(config: MedGRPORewardConfig, with_captions: bool = True) -> RewardScorer:
    """The RewardScorer with ONE similarity service shared by NAP snapping and the caption scorer."""
    similarity = build_similarity(config)
    captions = None
    if with_captions:
        captions = CaptionScorer(build_judge(config), similarity, config.similarity.model_path or "all-MiniLM-L6-v2")
    return RewardScorer(dict(config.tasks), build_normalizer(config), captions, similarity)


def build_similarity(config: MedGRPORewardConfig) -> SimilarityService:
    """The similarity service (MiniLM loads lazily, on the first text it has to embed)."""
    settings = config.similarity
    return SimilarityService(Embedder(settings.model_path), settings.max_batch, settings.max_wait_ms)


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
