"""Logistic reward normalization per (data_source, task) and the stats file."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_fns.normalize import (
    MAX_K,
    TASK_NAMES,
    LogisticNormalizer,
    MissingStatsError,
    RewardStats,
    StatsError,
    TaskStats,
    logistic,
    quantile_stats,
    stats_warnings,
)


def make_stats() -> RewardStats:
    stats = RewardStats()
    stats.set("CoPESD", "STG", [0.3, 0.45, 0.5, 0.55, 0.7])
    stats.set("EgoSurgery", "STG", [0.0, 0.05, 0.12, 0.2, 0.4])
    stats.set("CholecT50", "CVS", [1 / 3, 2 / 3, 2 / 3, 1.0])
    stats.set("AVOS", "VS", [0.5, 0.5, 0.5])  # IQR 0: the eps floor applies
    return stats


def test_quantile_stats_are_numpy_linear_percentiles() -> None:
    values = [0.0, 0.1, 0.4, 0.5, 0.9, 1.0]
    got = quantile_stats(values)
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    assert got == {"p25": pytest.approx(p25), "p50": pytest.approx(p50), "p75": pytest.approx(p75), "n": 6}
    with pytest.raises(ValueError, match="at least one"):
        quantile_stats([])
    with pytest.raises(ValueError, match="non-finite"):
        quantile_stats([0.1, math.nan])


def test_median_maps_to_one_half_for_every_pair() -> None:
    stats = make_stats()
    norm = LogisticNormalizer(stats)
    for source, tasks in stats.stats.items():
        for task, entry in tasks.items():
            assert norm.normalize(source, task, entry.p50) == 0.5


def test_the_formula() -> None:
    norm = LogisticNormalizer(make_stats(), k=2.0)
    s = make_stats().get("CoPESD", "STG")
    assert s is not None
    x = 0.65
    assert norm.normalize("CoPESD", "STG", x) == pytest.approx(1 / (1 + math.exp(-2.0 * (x - s.p50) / s.iqr)))


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.sampled_from(["CoPESD", "EgoSurgery", "CholecT50", "AVOS"]))
def test_monotone_and_bounded(a: float, b: float, source: str) -> None:
    norm = LogisticNormalizer(make_stats(), k=2.0)
    task = next(iter(make_stats().stats[source]))
    ra, rb = norm.normalize(source, task, a), norm.normalize(source, task, b)
    assert 0.0 <= ra <= 1.0 and 0.0 <= rb <= 1.0
    if a <= b:
        assert ra <= rb


def test_extremes_are_safe() -> None:
    norm = LogisticNormalizer(make_stats())
    assert norm.normalize("AVOS", "VS", math.inf) == 1.0
    assert norm.normalize("AVOS", "VS", -math.inf) == 0.0
    assert norm.normalize("AVOS", "VS", math.nan) == 0.0
    assert logistic(1e308) == 1.0 and logistic(-1e308) == 0.0


def test_iqr_floor() -> None:
    norm = LogisticNormalizer(make_stats(), k=2.0, eps=0.01)  # AVOS VS has IQR 0
    assert norm.normalize("AVOS", "VS", 0.51) == pytest.approx(1 / (1 + math.exp(-2.0 * 0.01 / 0.01)))
    assert norm.normalize("AVOS", "VS", 0.49) == pytest.approx(1 - norm.normalize("AVOS", "VS", 0.51))


def test_missing_pairs_error_lists_all_of_them() -> None:
    norm = LogisticNormalizer(make_stats())
    pairs = [("CoPESD", "STG"), ("CoPESD", "TAG"), ("NurViD", "VS"), ("CoPESD", "TAG")]
    assert norm.missing_pairs(pairs) == [("CoPESD", "TAG"), ("NurViD", "VS")]
    with pytest.raises(MissingStatsError) as err:
        norm.check_pairs(pairs)
    assert "2 (data_source, task) pair(s): (CoPESD, TAG), (NurViD, VS)" in str(err.value)
    with pytest.raises(MissingStatsError, match=r"\(NurViD, VS\)"):
        norm.normalize("NurViD", "VS", 0.3)
    norm.check_pairs([("CoPESD", "STG")])


def test_identity_mode_passes_raw_rewards_through() -> None:
    norm = LogisticNormalizer(make_stats(), missing="identity")
    norm.check_pairs([("NurViD", "VS")])
    assert norm.normalize("NurViD", "VS", 0.37) == 0.37
    assert norm.normalize("CoPESD", "STG", 0.5) == 0.5


def test_save_load_round_trip(tmp_path: Path) -> None:
    stats = make_stats()
    stats.k = 3.0
    path = tmp_path / "sub" / "reward_stats.json"
    stats.save(path)
    loaded = RewardStats.load(path)
    assert loaded == stats
    assert json.loads(path.read_text())["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["reward_stats.json"]  # no temp file left
    assert LogisticNormalizer(loaded, k=None).k == 3.0
    assert LogisticNormalizer(RewardStats(), k=None).k == 2.0


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(data))
    return path


GOOD = {"p25": 0.1, "p50": 0.2, "p75": 0.3, "n": 10}


@pytest.mark.parametrize(("stats", "message"), [
    ({"CoPESD": {"STG": {**GOOD, "p50": "x"}}}, "source 'CoPESD' task 'STG': field 'p50' must be a finite"),
    ({"CoPESD": {"STG": {k: v for k, v in GOOD.items() if k != "p75"}}}, "task 'STG': field 'p75' is missing"),
    ({"CoPESD": {"STG": {**GOOD, "p25": 0.5}}}, "p25 <= p50 <= p75"),
    ({"CoPESD": {"STG": {**GOOD, "n": -1}}}, "field 'n' must be an integer >= 1"),
    ({"CoPESD": {"STGX": GOOD}}, "task 'STGX': unknown task"),
    ({"CoPESD": [1, 2]}, "source 'CoPESD': must be an object"),
    # issue 11 item 5: each of these passed start-up before
    ({"CoPESD": {"STG": {**GOOD, "p75": 1.5}}}, r"field 'p75' must be within \[0, 1\]"),
    ({"CoPESD": {"STG": {**GOOD, "p25": -0.1}}}, r"field 'p25' must be within \[0, 1\]"),
    ({"CoPESD": {"STG": {**GOOD, "p25": 2.0, "p50": 3.0, "p75": 4.0}}}, r"field 'p25' must be within \[0, 1\]"),
    ({"CoPESD": {"STG": {**GOOD, "n": 0}}}, "field 'n' must be an integer >= 1"),
    ({"CoPESD": {"STG": {**GOOD, "n": 10.0}}}, "field 'n' must be an integer >= 1"),
    ({"CoPESD": {"STG": {**GOOD, "n": True}}}, "field 'n' must be an integer >= 1"),
    ({"CoPESD": {"STG": {**GOOD, "p50": True}}}, "field 'p50' must be a finite number"),
    ({"CoPESD": {"STG": {**GOOD, "iqr": 0.2}}}, r"unknown field\(s\) \['iqr'\]"),
    ({"CoPESD": {"STG": GOOD}, "Cholec80CVS": {"CVS": GOOD}, "MyHospital": {"TAG": GOOD}},
     r"unknown data_source\(s\) \['Cholec80CVS', 'MyHospital'\]"),
])
def test_validation_errors_name_source_task_field(tmp_path: Path, stats: object, message: str) -> None:
    path = write(tmp_path, {"version": 1, "k": 2.0, "stats": stats})
    with pytest.raises(StatsError, match=message) as err:
        RewardStats.load(path)
    assert str(path) in str(err.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(StatsError, match="'version' must be 1"):
        RewardStats.load(write(tmp_path, {"version": 2, "stats": {}}))
    for k in (-1, 0, 1e308, MAX_K * 1.01, True, "2"):
        with pytest.raises(StatsError, match=r"'k' must be a number in \(0, 20\] or null"):
            RewardStats.load(write(tmp_path, {"version": 1, "k": k, "stats": {}}))
    assert RewardStats.load(write(tmp_path, {"version": 1, "k": MAX_K, "stats": {}})).k == MAX_K
    with pytest.raises(StatsError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        RewardStats.load(tmp_path / "bad.json")


def test_unknown_sources_can_be_allowed_explicitly(tmp_path: Path) -> None:
    path = write(tmp_path, {"version": 1, "stats": {"MyHospital": {"TAG": GOOD}}})
    assert RewardStats.load(path, sources=("MyHospital",)).get("MyHospital", "TAG") == TaskStats(0.1, 0.2, 0.3, 10)


def test_save_refuses_what_load_would_refuse(tmp_path: Path) -> None:
    stats = make_stats()
    stats.k = 1e308
    with pytest.raises(StatsError, match="'k' must be a number"):
        stats.save(tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(ValueError, match=r"raw rewards in \[0, 1\]"):
        RewardStats().set("AVOS", "TAG", [0.2, 1.5])


def test_small_n_and_zero_iqr_warn_naming_the_pair(caplog: pytest.LogCaptureFixture) -> None:
    stats = RewardStats()
    stats.set("AVOS", "VS", [0.5])  # n = 1, IQR 0
    stats.set("CoPESD", "STG", [i / 40 for i in range(40)])  # healthy
    with caplog.at_level(logging.WARNING, logger="reward_fns.normalize"):
        norm = LogisticNormalizer(stats, eps=0.01, min_n=20)
    assert len(norm.warnings) == 2 and all(line.startswith("(AVOS, VS)") for line in norm.warnings)
    assert "n=1 rollout(s) (< min_n=20)" in norm.warnings[0]
    assert "IQR 0 (p25=0.5, p75=0.5) is below eps=0.01" in norm.warnings[1]
    assert [r.getMessage() for r in caplog.records] == [f"reward stats: {w}" for w in norm.warnings]
    assert stats_warnings(stats, min_n=1, eps=0.01) == norm.warnings[1:]
    assert len(stats_warnings(stats, min_n=1, eps=1e-12)) == 1  # IQR 0 is below any positive eps
    assert stats_warnings(stats, min_n=1, eps=0.0) == []
    assert stats_warnings(stats, min_n=40, eps=0.01)[-1].startswith("(AVOS, VS)")
    # the eps floor, not a division by zero, is what the normalizer uses
    assert norm.normalize("AVOS", "VS", 0.51) == pytest.approx(logistic(2.0 * 0.01 / 0.01))


def test_settings_are_validated() -> None:
    for k in (0, -1.0, math.inf, math.nan, 1e308, MAX_K + 1):
        with pytest.raises(ValueError, match=r"k must be a number in \(0, 20\]"):
            LogisticNormalizer(RewardStats(), k=k)
    for eps in (0, -1e-3, math.nan, 2.0):
        with pytest.raises(ValueError, match="eps must be"):
            LogisticNormalizer(RewardStats(), eps=eps)
    with pytest.raises(ValueError, match="min_n must be"):
        LogisticNormalizer(RewardStats(), min_n=0)
    with pytest.raises(ValueError, match="k must be"):
        LogisticNormalizer(RewardStats(), k=0)
    with pytest.raises(ValueError, match="missing must be"):
        LogisticNormalizer(RewardStats(), missing="skip")  # type: ignore[arg-type]
    assert set(TASK_NAMES) == {"CVS", "NAP", "SA", "STG", "TAG", "DVC", "VS", "RC"}
    assert TaskStats(0.1, 0.2, 0.4, 3).iqr == pytest.approx(0.3)


@pytest.mark.parametrize(("block", "message"), [
    ({"k": 1e308}, r"normalization: k must be a number in \(0, 20\]"),
    ({"k": 0}, "k must be a number"),
    ({"eps": 0}, r"eps must be a number in \(0, 1\]"),
    ({"min_n": 0}, "min_n must be an integer >= 1"),
    ({"min_n": "20"}, "'min_n' must be int, got str"),
])
def test_reward_config_refuses_bad_normalization_settings(block: dict, message: str) -> None:
    from reward_fns.config import MedGRPORewardConfig, RewardConfigError

    with pytest.raises(RewardConfigError, match=message):
        MedGRPORewardConfig.from_mapping({"normalization": {"stats_path": "s.json", **block}})
    assert MedGRPORewardConfig.from_mapping({"normalization": {"stats_path": "s.json", "k": None}})
