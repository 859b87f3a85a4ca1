"""train-smoke's per-step metrics (testbed/smoke_metrics.py, testbed/train_smoke.check) on files shaped
like verl's file logger and rollout dump, with the real reward scorer (similarity only, no judge)."""

from __future__ import annotations

import asyncio
import json

import pytest

from data_preprocess import medvidbench
from reward_fns.build import build_scorer
from reward_fns.config import MedGRPORewardConfig
from reward_fns.reference import Reference
from reward_fns.train_log import read_file_log
from testbed import smoke_metrics, toy, train_smoke
from testbed.policy import UNREADABLE, reference_answer
from testbed.rollouts import read_rl_rows

SETTINGS = MedGRPORewardConfig.from_mapping({"judge": {"enabled": False}, "normalization": {"enabled": False}})


def test_file_log_steps_pick_the_named_metrics(tmp_path):
    log = tmp_path / "m.jsonl"
    log.write_text("\n".join(json.dumps(x) for x in [
        {"step": 1, "data": {"train/loss": 6.2, "train/lr": 1e-5, "other": 3}},
        {"step": 2, "data": {"train/loss": 6.1}},
        {"step": 2, "data": {"val/loss": None}},  # a validation line of the same step: merged, nothing picked
    ]) + "\n")
    steps = read_file_log(log, smoke_metrics.SFT_KEYS)
    assert steps == [{"step": 1, "loss": 6.2, "lr": 1e-5}, {"step": 2, "loss": 6.1}]
    log.write_text('{"oops": 1}\n')
    with pytest.raises(ValueError, match=r"m\.jsonl:1: not a verl file-logger line"):
        read_file_log(log, smoke_metrics.SFT_KEYS)


@pytest.fixture(scope="module")
def rl_rows(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke_metrics")
    toy.main(["--out", str(root / "toy"), "--per-qa-type", "1"])
    medvidbench.main(["--input", str(root / "toy" / toy.TOY_FILE), "--data-root", str(root / "toy"),
                      "--out-dir", str(root / "data"), "--val-fraction", "0"])
    return read_rl_rows(str(root / "data" / "rl_train.parquet"))


def _dump(path, pairs, scores):
    """A verl rollout dump (<step>.jsonl): decoded output, ground truth, the trainer's reward."""
    lines = [json.dumps({"output": text, "gts": row["reward_model"]["ground_truth"], "score": score,
                         "step": int(path.stem)}) for (row, text), score in zip(pairs, scores, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_rewards_per_source_rescore_the_dump_and_flag_a_mismatch(tmp_path, rl_rows):
    firsts = list({row["data_source"]: row for row in rl_rows}.values())[:4]  # 4 sources, one row each
    pairs = [(row, reference_answer(row)) for row in firsts] + [(row, UNREADABLE) for row in firsts]
    (tmp_path / "dump").mkdir()
    scorer = build_scorer(SETTINGS)  # the trainer's rewards for step 1 (normalization off)
    truth = [asyncio.run(scorer.score(text, Reference.from_json(row["reward_model"]["ground_truth"]))).normalized
             for row, text in pairs]
    _dump(tmp_path / "dump" / "1.jsonl", pairs, truth)
    _dump(tmp_path / "dump" / "2.jsonl", pairs, [t + 0.5 for t in truth])  # a trainer that disagrees
    steps = smoke_metrics.rewards_per_source(tmp_path / "dump", SETTINGS)
    assert [s["step"] for s in steps] == [1, 2]
    sources = {row["data_source"] for row, _ in pairs}
    assert set(steps[0]["sources"]) == sources
    assert steps[0]["max_rescore_diff"] < 1e-9 and steps[1]["max_rescore_diff"] == pytest.approx(0.5)
    assert all(steps[0]["sources"][src]["n"] == 2 for src in sources)  # reference + unreadable per source
    judge = {name: 0 for name in smoke_metrics.JUDGE_COUNTERS} | {"http_calls": 3}
    logged = [{"sources": {src: dict(v) for src, v in s["sources"].items()}, "judge": judge} for s in steps]
    grpo = [{**s, "score": 0.1, "kl": 0.0, "entropy": 1.0, "rollout_probs_diff_max": 2e-5, "logged": log}
            for s, log in zip(steps, logged, strict=True)]
    sft = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.9}]
    probes = train_smoke.JUDGE_STARTUP_PROBES  # the server also answers the start-up probes
    problems = train_smoke.check({"sft": sft, "grpo": grpo, "grpo_judge_server_calls": 6 + probes})
    assert problems == [f"GRPO step 2: rescored rewards differ from the trainer's by {0.5:.2e}"]
    grpo[0]["logged"]["sources"][sorted(sources)[0]]["raw"] += 0.25  # the trainer's logged metric disagrees
    problems = train_smoke.check({"sft": sft, "grpo": grpo, "grpo_judge_server_calls": 7 + probes})
    assert problems[0].startswith(f"GRPO step 1: {sorted(sources)[0]} raw: logged ")
    assert problems[-1] == (f"GRPO logged 6 judge HTTP calls (+ {probes} start-up probes); "
                            f"the judge server answered {7 + probes}")


def test_check_names_every_missing_piece():
    problems = train_smoke.check({"sft": [{"step": 1, "loss": 1.0}],
                                  "grpo": [{"step": 1, "score": 0.1, "sources": {"A": {}, "B": {}}}]})
    judge = ",".join(smoke_metrics.JUDGE_COUNTERS)
    assert problems == ["SFT logged 1 steps with a loss (want 2)", "GRPO logged 1 steps (want 2)",
                        "GRPO step 1: no kl metric", "GRPO step 1: no entropy metric",
                        "GRPO step 1: no rollout_probs_diff_max metric",
                        "GRPO step 1: batch covers 2 data sources (want >= 3)",
                        "GRPO step 1: logged data sources [] != rollout dump's ['A', 'B']",
                        f"GRPO step 1: no medgrpo/judge/{{{judge}}} metrics logged",
                        f"GRPO logged 0 judge HTTP calls (+ {train_smoke.JUDGE_STARTUP_PROBES} start-up probes); "
                        "the judge server answered 0"]


@pytest.mark.parametrize(("diff", "fails"), [(2e-5, False), (1e-4, False), (7e-4, True), (float("nan"), True)])
def test_check_fails_when_rollout_and_actor_disagree(diff: float, fails: bool):
    step = {"step": 1, "score": 0.1, "kl": 0.0, "entropy": 1.0, "rollout_probs_diff_max": diff}
    problems = [p for p in train_smoke.check({"sft": [], "grpo": [step]}) if "rollout_probs_diff_max" in p]
    assert bool(problems) is fails, problems
    if fails:
        assert "stale or wrong weights, or other positions" in problems[0]


def test_rewards_per_source_needs_a_dump(tmp_path):
    with pytest.raises(FileNotFoundError, match="rollout_data_dir"):
        smoke_metrics.rewards_per_source(tmp_path, SETTINGS)


def test_fresh_dir_clears_only_its_own_folder(tmp_path):
    out = tmp_path / "smoke"
    train_smoke.fresh_dir(out)  # new folder: created, marked
    (out / "calibration").mkdir()
    (out / "calibration" / "rollouts.jsonl").write_text("old run\n")
    train_smoke.fresh_dir(out)  # its own folder: emptied (no resumed outputs of an older run)
    assert sorted(p.name for p in out.iterdir()) == [train_smoke.MARKER]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(train_smoke.SmokeError, match="not made by train-smoke"):
        train_smoke.fresh_dir(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
