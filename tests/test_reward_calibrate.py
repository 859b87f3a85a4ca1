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
