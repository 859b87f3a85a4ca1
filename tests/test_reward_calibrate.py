"""`reward_fns.calibrate` input errors name the file and the line (or the unknown index)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reward_fns import calibrate
from reward_fns.reference import Reference


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    """Two RL rows (just the columns calibrate reads), extra_info.index 5 and 7."""
    ref = Reference(qa_type="cvs_assessment", data_source="Cholec80-CVS", answer="0 0")
    path = tmp_path / "rl.parquet"
    pq.write_table(pa.table({
        "reward_model": [{"style": "rule", "ground_truth": ref.to_json()}] * 2,
        "extra_info": [{"index": 5}, {"index": 7}]}), path)
    return path


def _run(parquet: Path, rollouts: Path, tmp_path: Path, *lines: str) -> str:
    rollouts.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["--data", str(parquet), "--rollouts", str(rollouts), "--out", str(tmp_path / "s.json")])
    assert not (tmp_path / "s.json").exists()
    return str(exc.value)


def test_bad_json_line_names_file_and_line(parquet: Path, tmp_path: Path) -> None:
    rollouts = tmp_path / "r.jsonl"
    ok = json.dumps({"index": 5, "response": "x"})
    err = _run(parquet, rollouts, tmp_path, ok, "", '{"index": 7, "respo')
    assert err.startswith("error: ") and f"{rollouts}:3:" in err and '"response": str' in err
    err = _run(parquet, rollouts, tmp_path, ok, json.dumps({"index": 7}))
    assert f"{rollouts}:2:" in err


def test_unknown_index_is_named(parquet: Path, tmp_path: Path) -> None:
    rollouts = tmp_path / "r.jsonl"
    err = _run(parquet, rollouts, tmp_path, json.dumps({"index": 7, "response": "x"}),
               json.dumps({"index": 9, "response": "y"}))
    assert f"{rollouts}:2:" in err and "index 9 is not an extra_info.index" in err


def test_empty_rollouts_and_missing_file(parquet: Path, tmp_path: Path) -> None:
    rollouts = tmp_path / "r.jsonl"
    assert f"{rollouts}: no rollouts" in _run(parquet, rollouts, tmp_path, "")
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["--data", str(parquet), "--rollouts", str(tmp_path / "none.jsonl"),
                        "--out", str(tmp_path / "s.json")])
    assert "none.jsonl" in str(exc.value)


@pytest.mark.parametrize(("line", "message"), [
    ('{"index": 1.9, "response": "x"}', "field 'index' must be a JSON integer, got 1.9"),
    ('{"index": true, "response": "x"}', "field 'index' must be a JSON integer, got True"),
    ('{"index": "5", "response": "x"}', "field 'index' must be a JSON integer, got '5'"),
    ('{"index": 5.0, "response": "x"}', "field 'index' must be a JSON integer, got 5.0"),
    ('{"index": 5, "response": 3}', "field 'response' must be a JSON string, got 3"),
    ('{"index": 5, "response": null}', "field 'response' must be a JSON string, got None"),
    ('{"index": 5, "response": ["a"]}', "field 'response' must be a JSON string, got ['a']"),
    ('[5, "x"]', "got a JSON list"),
])
def test_rollout_types_are_never_coerced(parquet: Path, tmp_path: Path, line: str, message: str) -> None:
    rollouts = tmp_path / "r.jsonl"
    err = _run(parquet, rollouts, tmp_path, json.dumps({"index": 7, "response": "ok"}), line)
    assert f"{rollouts}:2:" in err and message in err


def test_bad_k_is_refused_before_scoring(parquet: Path, tmp_path: Path) -> None:
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text(json.dumps({"index": 5, "response": "x"}) + "\n")
    for k in ("1e308", "0", "nan", "-2"):
        with pytest.raises(SystemExit, match=r"--k must be in \(0, 20\]"):
            calibrate.main(["--data", str(parquet), "--rollouts", str(rollouts), "--out", str(tmp_path / "s.json"),
                            "--k", k])


def test_one_rollout_writes_stats_with_warnings_naming_the_pair(parquet: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text(json.dumps({"index": 5, "response": "Two structures: 0, Cystic plate: 0, "
                                                           "Hepatocystic triangle: 1"}) + "\n")
    out = tmp_path / "s.json"
    stats = calibrate.main(["--data", str(parquet), "--rollouts", str(rollouts), "--out", str(out)])
    entry = stats.get("Cholec80-CVS", "CVS")
    assert entry is not None and (entry.n, entry.iqr) == (1, 0.0)
    err = capsys.readouterr().err
    assert "warning: (Cholec80-CVS, CVS): quantiles from only n=1 rollout(s) (< min_n=20)" in err
    assert "warning: (Cholec80-CVS, CVS): IQR 0 (p25=0, p75=0) is below eps=0.001" in err
    assert json.loads(out.read_text())["stats"]["Cholec80-CVS"]["CVS"]["n"] == 1


def test_compute_stats_refuses_rewards_outside_unit_interval() -> None:
    with pytest.raises(calibrate.CalibrationError, match=r"\(AVOS, TAG\): .*\[0, 1\]"):
        calibrate.compute_stats({("AVOS", "TAG"): [0.5, 1.2]}, 2.0)
    with pytest.raises(calibrate.CalibrationError, match="unknown data_source"):
        calibrate.compute_stats({("MyHospital", "TAG"): [0.5]}, 2.0)
