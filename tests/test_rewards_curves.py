"""reward_fns.curves: the per-(data_source, task) table from verl's dumps and log, its alarms, the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reward_fns import curves
from reward_fns.curves import Inputs, Sample, Thresholds
from reward_fns.reference import Reference

TAG_GT = Reference("tal", "AVOS", "1.0-3.0 seconds.", [{"action": "cutting", "spans": [{"start": 1.0, "end": 3.0}]}])
CVS_GT = Reference("cvs_assessment", "Cholec80-CVS", "Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0",
                   [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}}])
CONFIG = """actor_rollout_ref:
  rollout: {n: 2}
medgrpo:
  reward:
    normalization: {enabled: false}
    judge: {enabled: false}
"""


def _train_row(ref: Reference, output: str, score: float, uid: str, step: int) -> dict:
    """A row as verl 0.9.1's v1 trainer dumps training rollouts (no reward_extra_info)."""
    return {"input": "prompt", "output": output, "gts": ref.to_json(), "score": score, "step": step, "uid": uid}


def _val_row(ref: Reference, output: str, raw: float, normalized: float, task: str, step: int, uid: str) -> dict:
    """A validation dump row: verl adds the reward manager's reward_extra_info keys."""
    return {"input": "prompt", "output": output, "gts": ref.to_json(), "score": normalized, "step": step,
            "reward": normalized, "raw": raw, "normalized": normalized, "parse_ok": 1, "judge_ok": 0,
            "caption_pairs": 0, "task": task, "source": ref.data_source, "uid": uid}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _run_dir(root: Path, steps: int = 2) -> Path:
    """A learn-smoke-shaped run: rollout and validation dumps, the file log, the saved config, stats."""
    for step in range(1, steps + 1):
        rows = [  # group g1 (TAG): one right, one wrong answer; group g2 (CVS): two equally wrong answers
            _train_row(TAG_GT, "1.0-3.0 seconds.", 0.9, f"g1-{step}_0_0", step),
            _train_row(TAG_GT, "garbage", 0.1, f"g1-{step}_1_0", step),
            _train_row(CVS_GT, "Two structures: 0, Cystic plate: 0, Hepatocystic triangle: 0", 0.5,
                       f"g2-{step}_0_0", step),
            _train_row(CVS_GT, "Two structures: 0, Cystic plate: 0, Hepatocystic triangle: 0", 0.5,
                       f"g2-{step}_1_0", step),
        ]
        _write_jsonl(root / "grpo_rollouts" / f"{step}.jsonl", rows)
    for step in (0, steps):
        _write_jsonl(root / "grpo_val" / f"{step}.jsonl", [
            _val_row(TAG_GT, "0.0-2.0 seconds.", 0.1 * step, 0.5, "TAG", step, "v1_0_0"),
            _val_row(CVS_GT, "x", 0.3, 0.4, "CVS", step, "v2_0_0")])
    log = [{"step": s, "data": {"critic/score/mean": 0.5, "response_length/mean": 20.0 + s}}
           for s in range(1, steps + 1)]
    _write_jsonl(root / "logs" / "grpo_metrics.jsonl", log)
    config = root / "runs" / "grpo" / "hydra" / ".hydra" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG, encoding="utf-8")
    return root


def _row(run: curves.Run, split: str, step: int, source: str) -> dict:
    (row,) = [r for r in run.rows if (r["split"], r["step"], r["data_source"]) == (split, step, source)]
    return row


def test_reads_dumps_rescores_training_answers_and_counts_zero_advantage_groups(tmp_path: Path) -> None:
    run = curves.read_run(_run_dir(tmp_path))
    tag = _row(run, "train", 1, "AVOS")
    assert (tag["task"], tag["n"], tag["groups"]) == ("TAG", 2, 1)
    # TAG reward = mean of matched mIoU at 0.3 and 0.5: the right answer 1, the garbage 0 -> 0.5
    assert tag["raw"] == pytest.approx(0.5) and tag["normalized"] == pytest.approx(0.5)
    assert tag["zero_adv_share"] == 0.0 and tag["parse_failures"] == 1
    cvs = _row(run, "train", 1, "Cholec80-CVS")
    assert cvs["raw"] == pytest.approx(1 / 3) and cvs["zero_adv_share"] == 1.0  # both answers scored 0.5
    val = _row(run, "val", 2, "AVOS")
    assert val["raw"] == pytest.approx(0.2) and math.isnan(val["zero_adv_share"])  # one answer per prompt
    assert [s["response_length"] for s in run.log] == [21.0, 22.0]
    assert run.inputs.config is not None and run.notes == []


def test_without_a_config_training_raw_rewards_are_nan_and_said_so(tmp_path: Path) -> None:
    root = _run_dir(tmp_path)
    (root / "runs" / "grpo" / "hydra" / ".hydra" / "config.yaml").unlink()
    run = curves.read_run(root)
    assert math.isnan(_row(run, "train", 1, "AVOS")["raw"])
    assert _row(run, "val", 0, "AVOS")["raw"] == 0.0  # validation dumps carry their raw reward
    assert run.notes and "not rescored" in run.notes[0]


def test_a_config_this_version_cannot_read_is_a_note_not_a_failure(tmp_path: Path) -> None:
    root = _run_dir(tmp_path)
    config = root / "runs" / "grpo" / "hydra" / ".hydra" / "config.yaml"
    config.write_text(CONFIG.replace("judge: {enabled: false}", "judge: {enabled: false, new_key: 1}"))
    run = curves.read_run(root)
    assert math.isnan(_row(run, "train", 1, "AVOS")["raw"]) and _row(run, "val", 2, "AVOS")["raw"] == 0.2
    assert "cannot rebuild the run's reward settings" in run.notes[0] and "new_key" in run.notes[0]
    assert "not rescored" in run.notes[1]


def test_cli_writes_csv_and_png_and_prints_alarms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _run_dir(tmp_path / "run", steps=3)
    out, table = tmp_path / "c.png", tmp_path / "c.csv"
    assert curves.main(["--run", str(root), "--out", str(out), "--csv", str(table), "--window", "2"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert tuple(rows[0]) == curves.COLUMNS and len(rows) == 3 * 2 + 2 * 2
    printed = capsys.readouterr().out
    assert "ALARM zero-advantage: train Cholec80-CVS/CVS" in printed  # its groups never differ
    assert "AVOS/TAG" not in printed.split("alarms:")[1]


def test_cli_bad_input_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _run_dir(tmp_path)
    with (root / "grpo_rollouts" / "2.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    assert curves.main(["--run", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "2.jsonl:5" in err and "\n" not in err
    _write_jsonl(root / "grpo_rollouts" / "2.jsonl", [{"output": "x", "score": 1.0, "gts": "{}"}])
    assert curves.main(["--run", str(root)]) == 2
    assert "2.jsonl:1: unreadable dump row" in capsys.readouterr().err
    assert curves.main(["--run", str(tmp_path / "empty")]) == 2
    assert "no rollout dumps" in capsys.readouterr().err
    assert curves.main(["--run", str(root), "--log", str(tmp_path / "missing.jsonl")]) == 2
    assert "--log" in capsys.readouterr().err


def test_a_synthetic_gpu_run_given_by_its_paths(tmp_path: Path) -> None:
    """A real run's files live anywhere: VERL_FILE_LOGGER_PATH, rollout_data_dir, its hydra config."""
    src = _run_dir(tmp_path / "src")
    given = Inputs(rollouts=src / "grpo_rollouts", log=src / "logs" / "grpo_metrics.jsonl",
                   config=src / "runs" / "grpo" / "hydra" / ".hydra" / "config.yaml")
    run = curves.read_run(tmp_path / "elsewhere", given)
    assert {r["split"] for r in run.rows} == {"train"} and len(run.log) == 2
    assert _row(run, "train", 2, "AVOS")["raw"] == pytest.approx(0.5)


def _rows(pair: tuple[str, str], key: str, values: list[float], split: str = "train") -> list[dict]:
    return [{"split": split, "step": i + 1, "data_source": pair[0], "task": pair[1], key: v}
            for i, v in enumerate(values)]


def test_reward_drop_alarm_needs_a_fall_larger_than_the_calibration_iqr() -> None:
    pair, t = ("CoPESD", "STG"), Thresholds(window=2, min_drop=0.05)
    falling = _rows(pair, "raw", [0.8, 0.8, 0.8, 0.3, 0.3])
    (alarm,) = curves.drop_alarms(falling, {pair: 0.2}, t)
    assert alarm.kind == "reward-drop" and "fell 0.500 > 0.200" in alarm.message
    assert curves.drop_alarms(falling, {pair: 0.6}, t) == []  # within the pair's spread
    assert curves.drop_alarms(_rows(pair, "raw", [0.3, 0.3, 0.5, 0.8, 0.8]), {pair: 0.0}, t) == []  # rising
    assert curves.drop_alarms(_rows(pair, "raw", [0.8, 0.8, 0.76, 0.76]), {}, t) == []  # below --min-drop
    assert len(curves.drop_alarms(_rows(pair, "raw", [0.8, 0.8, 0.7, 0.7]), {}, t)) == 1


def test_zero_advantage_alarm_needs_the_whole_last_window_above_the_threshold() -> None:
    pair, t = ("AVOS", "TAG"), Thresholds(window=3, zero_adv=0.9)
    (alarm,) = curves.zero_adv_alarms(_rows(pair, "zero_adv_share", [0.1, 1.0, 0.95, 0.9]), t)
    assert alarm.where == "train AVOS/TAG" and "steps 2-4" in alarm.message
    assert curves.zero_adv_alarms(_rows(pair, "zero_adv_share", [1.0, 1.0, 0.5, 1.0]), t) == []
    assert curves.zero_adv_alarms(_rows(pair, "zero_adv_share", [1.0, 1.0]), t) == []  # too few points


def test_length_alarms_collapse_and_growth_from_the_log_and_per_pair() -> None:
    t = Thresholds(window=2, collapse=0.5, growth=2.0)
    log = [{"step": i + 1, "response_length": v} for i, v in enumerate([40.0, 38.0, 30.0, 12.0, 10.0])]
    (alarm,) = curves.length_alarms([], log, t)
    assert alarm.kind == "length-collapse" and alarm.where == "train all answers (tokens)"
    assert "39.0" in alarm.message and "11.0" in alarm.message
    steady = [{"step": i + 1, "response_length": 40.0 - i} for i in range(5)]
    assert curves.length_alarms([], steady, t) == []
    rows = _rows(("NurViD", "TAG"), "response_chars", [20.0, 20.0, 20.0, 4.0, 4.0])
    assert [a.where for a in curves.length_alarms(rows, steady, t)] == ["train NurViD/TAG (characters)"]
    padded = _rows(("AVOS", "TAG"), "response_chars", [16.0, 16.0, 30.0, 40.0, 45.0])
    (alarm,) = curves.length_alarms(padded, [], t)
    assert alarm.kind == "length-growth" and "above 2x" in alarm.message
    assert curves.length_alarms(padded, [], Thresholds(window=2, growth=3.0)) == []


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 1), st.booleans()), min_size=1, max_size=30))
def test_pair_rows_counts_are_consistent(samples: list[tuple[str, float, bool]]) -> None:
    rows = curves.pair_rows("train", 1, [Sample("AVOS", "TAG", g, "out", s, raw=s, parse_ok=ok)
                                         for g, s, ok in samples])
    (row,) = rows
    assert row["n"] == len(samples) and row["parse_failures"] == sum(not ok for *_, ok in samples)
    assert row["groups"] == sum(1 for g in "abc" if sum(x[0] == g for x in samples) > 1)
    assert math.isnan(row["zero_adv_share"]) if row["groups"] == 0 else 0 <= row["zero_adv_share"] <= 1
    assert row["raw"] == pytest.approx(sum(s for _, s, _ in samples) / len(samples))


@given(st.text(min_size=1, max_size=40))
def test_group_of_takes_the_uid_before_rollout_and_output_indices(uid: str) -> None:
    assert curves.group_of({"uid": f"{uid}_3_0"}) == uid
    assert curves.group_of({"input": "p"}) == "p"
