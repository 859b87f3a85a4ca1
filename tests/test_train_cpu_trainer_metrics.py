"""The `medgrpo_sync` trainer: its per-step reward/judge metrics (pure function) and its registration."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recipes.ext.reward_metrics import JUDGE_COUNTERS, split_logged, step_reward_metrics
from reward_fns.judge.tally import JudgeTally, Prices


def _info(raw: float, normalized: float, **judge: int) -> dict:
    tally = JudgeTally(**judge)
    return {"raw": raw, "normalized": normalized, "task_id": 3, "source_id": 1,
            **tally.metrics(Prices(prompt_per_mtok=2.0, completion_per_mtok=8.0))}


def test_means_per_source_and_judge_sums() -> None:
    infos = [_info(0.2, 0.4, requests=1, http_calls=2, prompt_tokens=100, completion_tokens=10),
             _info(0.6, 0.8, cache_hits=1),
             _info(1.0, 0.5, requests=1, http_calls=1, failures=1, injections=1, prompt_tokens=50)]
    metrics = step_reward_metrics(infos, ["CholecT50", "CholecT50", "AVOS"])
    assert metrics["medgrpo/reward_raw/CholecT50"] == pytest.approx(0.4)
    assert metrics["medgrpo/reward_norm/CholecT50"] == pytest.approx(0.6)
    assert metrics["medgrpo/reward_raw/AVOS"] == 1.0 and metrics["medgrpo/reward_norm/AVOS"] == 0.5
    assert metrics["medgrpo/samples/CholecT50"] == 2 and metrics["medgrpo/samples/AVOS"] == 1
    judge = {c: metrics[f"medgrpo/judge/{c}"] for c in JUDGE_COUNTERS}
    assert judge == {"requests": 2, "http_calls": 3, "cache_hits": 1, "failures": 1, "injections": 1,
                     "prompt_tokens": 150, "completion_tokens": 10,
                     "cost_usd": pytest.approx((150 * 2.0 + 10 * 8.0) / 1e6)}


def test_missing_and_non_finite_values_are_left_out() -> None:
    infos = [{"raw": 0.5, "normalized": float("nan"), "judge_requests": 2},
             {"raw": "0.9", "judge_requests": float("inf")},
             {}]
    metrics = step_reward_metrics(infos, ["A", "A", "B"])
    assert metrics["medgrpo/reward_raw/A"] == 0.5  # the text "0.9" is not a reward
    assert "medgrpo/reward_norm/A" not in metrics and "medgrpo/reward_raw/B" not in metrics
    assert metrics["medgrpo/samples/B"] == 1
    assert metrics["medgrpo/judge/requests"] == 2 and metrics["medgrpo/judge/cost_usd"] == 0


def test_empty_step_and_length_mismatch() -> None:
    assert step_reward_metrics([], []) == {}
    with pytest.raises(ValueError, match="2 reward_extra_info entries for 1 data sources"):
        step_reward_metrics([{}, {}], ["A"])


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), finite, finite, st.integers(0, 5)), max_size=30))
def test_logged_metrics_regroup_to_the_per_source_means(rows: list[tuple[str, float, float, int]]) -> None:
    infos = [{"raw": raw, "normalized": norm, "judge_http_calls": calls} for _, raw, norm, calls in rows]
    logged = split_logged({**step_reward_metrics(infos, [s for s, *_ in rows]), "critic/score/mean": 1.0})
    for source in {s for s, *_ in rows}:
        mine = [(raw, norm) for s, raw, norm, _ in rows if s == source]
        got = logged["sources"][source]
        assert got["n"] == len(mine)
        assert math.isclose(got["raw"], sum(r for r, _ in mine) / len(mine), rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(got["normalized"], sum(n for _, n in mine) / len(mine), rel_tol=1e-9, abs_tol=1e-6)
    assert logged["judge"].get("http_calls", 0) == sum(calls for *_, calls in rows)


def test_medgrpo_sync_is_registered_and_runs_as_verls_sync_mode() -> None:
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls

    from recipes.ext import trainer

    cls = get_trainer_cls("medgrpo_sync")
    assert cls is trainer.MedGRPOTrainerSync and issubclass(cls, PPOTrainerSync)
    instance = object.__new__(cls)
    instance.trainer_mode = "medgrpo_sync"  # what PPOTrainer.__init__ assigns from the config
    assert instance.trainer_mode == "sync"  # verl's sync branches (replay buffer, refill) apply
    with pytest.raises(ValueError, match="trainer_mode=medgrpo_sync"):
        instance.trainer_mode = "separate_async"


@pytest.mark.parametrize(("mode", "modules", "expect"), [
    ("medgrpo_sync", "recipes.ext.trainer", "note"),
    ("medgrpo_sync", "recipes.ext.reward_metrics", "which verl's Ray processes do not import"),
    ("sync", None, "note"),
    ("medgrpo_async", "recipes.ext.trainer", "does not resolve: ValueError: Unknown trainer 'medgrpo_async'"),
])
def test_dry_run_checks_the_trainer_mode_resolves_in_ray_processes(mode: str, modules: str | None,
                                                                   expect: str) -> None:
    from omegaconf import OmegaConf

    from recipes.check_report import Report
    from recipes.extension_checks import check_trainer_mode

    env = {"VERL_USE_EXTERNAL_MODULES": modules} if modules else {}
    cfg = OmegaConf.create({"trainer": {"v1": {"trainer_mode": mode}},
                            "ray_kwargs": {"ray_init": {"runtime_env": {"env_vars": env}}}})
    report = Report()
    check_trainer_mode(cfg, report)
    if expect == "note":
        assert not report.errors and report.notes[0].startswith(f"trainer: {mode} (")
    else:
        assert len(report.errors) == 1 and expect in report.errors[0], report.errors


def test_smoke_reads_the_logged_metrics_and_compares_them_with_the_dump(tmp_path) -> None:
    import json

    from testbed import smoke_metrics

    infos = [_info(0.2, 0.4, requests=1, http_calls=1), _info(0.4, 0.6), _info(0.0, 0.5)]
    log = tmp_path / "grpo_metrics.jsonl"  # verl's file logger: one {"step", "data"} line per log call
    log.write_text("\n".join(json.dumps({"step": n, "data": data}) for n, data in [
        (1, {"critic/score/mean": 0.5, **step_reward_metrics(infos, ["A", "A", "B"])}),
        (2, {"critic/score/mean": 0.4})]) + "\n", encoding="utf-8")
    logged = smoke_metrics.read_logged_rewards(log)
    assert list(logged) == [1] and logged[1]["judge"]["http_calls"] == 1
    dump = {"A": {"n": 2, "raw": 0.3, "normalized": 0.5}, "B": {"n": 1, "raw": 0.0, "normalized": 0.5}}
    assert smoke_metrics.logged_mismatches({"step": 1, "sources": dump, "logged": logged[1]}) == []
    off = {**dump, "B": {"n": 1, "raw": 0.0, "normalized": 0.25}}
    (problem,) = smoke_metrics.logged_mismatches({"step": 1, "sources": off, "logged": logged[1]})
    assert problem == "GRPO step 1: B normalized: logged 0.5 != rollout dump's 0.25"
    (problem,) = smoke_metrics.logged_mismatches({"step": 1, "sources": {"A": dump["A"]}, "logged": logged[1]})
    assert "logged data sources ['A', 'B'] != rollout dump's ['A']" in problem
    lines = smoke_metrics.grpo_lines({"step": 1, "score": 0.5, "sources": dump, "logged": logged[1]})
    assert lines[-1].startswith("    judge (logged): requests 1  http_calls 1  cache_hits 0")


@pytest.mark.parametrize(("engine", "expect"), [
    ("", "foo.bar,evaluation.backends.vllm_fixes,recipes.ext.trainer"),
    # the platform plug-ins first (importing verl's trainer looks the platform up), the trainer last
    ("cpu", "recipes.ext.cpu_platform,recipes.ext.cpu_engine,foo.bar,evaluation.backends.vllm_fixes,"
            "recipes.ext.trainer"),
])
def test_grpo_launcher_extends_the_callers_external_modules_for_ray(engine: str, expect: str) -> None:
    import os
    import shlex
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDGRPO", "DRY_RUN", "VERL_"))}
    env.update(MODEL_PATH="/nonexistent/model", DRY_RUN="print", MEDGRPO_ENGINE=engine,
               VERL_USE_EXTERNAL_MODULES="recipes.ext.trainer,foo.bar,")  # a caller's list, holding one
    proc = subprocess.run(["bash", str(repo / "recipes" / "qwen25vl_7b_medgrpo.sh")], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=60, check=True)
    key = "++ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES="
    (arg,) = [a for a in shlex.split(proc.stdout) if a.startswith(key)]
    assert arg.removeprefix(key) == f"'{expect}'"
