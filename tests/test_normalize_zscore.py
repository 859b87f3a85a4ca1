"""The zscore normalization (learn-smoke's ablation): (x - p50) / max(IQR, eps) per (data_source, task)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reward_fns.build import build_normalizer
from reward_fns.config import MedGRPORewardConfig, RewardConfigError
from reward_fns.normalize import LogisticNormalizer, MissingStatsError, RewardStats, ZScoreNormalizer

STATS = RewardStats.from_dict({"version": 1, "stats": {
    "CoPESD": {"STG": {"p25": 0.2, "p50": 0.4, "p75": 0.6, "n": 40}},
    "AVOS": {"TAG": {"p25": 0.5, "p50": 0.5, "p75": 0.5, "n": 40}}}})
Z, LOGISTIC = ZScoreNormalizer(STATS), LogisticNormalizer(STATS, k=2.0)


def test_zscore_is_the_logistic_argument_without_k_or_squashing() -> None:
    z = ZScoreNormalizer(STATS)
    assert z.normalize("CoPESD", "STG", 0.8) == pytest.approx(1.0)  # (0.8 - 0.4) / 0.4
    assert z.normalize("CoPESD", "STG", 0.0) == pytest.approx(-1.0)
    assert z.normalize("AVOS", "TAG", 0.6) == pytest.approx(100.0)  # IQR 0: divided by eps (1e-3)
    assert z.normalize("CoPESD", "STG", math.nan) == 0.0
    logistic = LogisticNormalizer(STATS, k=2.0)
    assert logistic.normalize("CoPESD", "STG", 0.8) == pytest.approx(1 / (1 + math.exp(-2.0)))
    with pytest.raises(MissingStatsError):
        z.normalize("NurViD", "TAG", 0.5)
    assert ZScoreNormalizer(STATS, missing="identity").normalize("NurViD", "TAG", 0.3) == 0.3


def test_config_method_selects_the_normalizer_and_rejects_unknown_ones(tmp_path) -> None:
    path = tmp_path / "stats.json"
    STATS.save(path)
    block = {"normalization": {"stats_path": str(path), "method": "zscore"}}
    assert type(build_normalizer(MedGRPORewardConfig.from_mapping(block))) is ZScoreNormalizer
    block["normalization"]["method"] = "logistic"
    assert type(build_normalizer(MedGRPORewardConfig.from_mapping(block))) is LogisticNormalizer
    block["normalization"]["method"] = "rank"
    with pytest.raises(RewardConfigError, match=r"normalization.method: one of \['logistic', 'zscore'\], got 'rank'"):
        MedGRPORewardConfig.from_mapping(block)


def _grpo_advantages(scores: list[float]) -> np.ndarray:
    """verl's GRPO outcome advantage of one group (norm_adv_by_std_in_grpo: true, epsilon 1e-6)."""
    arr = np.asarray(scores, dtype=np.float64)
    return (arr - arr.mean()) / (arr.std(ddof=1) + 1e-6)


@given(st.lists(st.floats(0, 1), min_size=2, max_size=16).filter(lambda v: np.std(v) > 1e-2))
def test_zscore_gives_the_same_grpo_advantages_as_raw_rewards(raw: list[float]) -> None:
    """A group's answers share one (data_source, task): zscore is a positive affine map there, so the
    std-normalized GRPO advantages equal the raw rewards' (up to verl's 1e-6 epsilon; logistic, being
    non-linear, changes them)."""
    normalized = [Z.normalize("CoPESD", "STG", x) for x in raw]
    assert np.allclose(_grpo_advantages(normalized), _grpo_advantages(raw), atol=1e-3)


def test_logistic_changes_the_grpo_advantages() -> None:
    raw = [0.0, 0.1, 0.4, 1.0]
    squashed = [LOGISTIC.normalize("CoPESD", "STG", x) for x in raw]
    assert not np.allclose(_grpo_advantages(squashed), _grpo_advantages(raw), atol=1e-2)
