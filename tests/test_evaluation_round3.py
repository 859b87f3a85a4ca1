"""Hostile inputs round 3 (issue 21), evaluation side: CVS / SA columns where no answer parses match the
public leaderboard (0.0, not null), and every atomically written output follows the user's umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation import score_submission as score_cli
from reward_fns.atomic_io import atomic_path, current_umask, write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "evaluation" / "examples"
GT, PRED = EXAMPLES / "gt_small.json", EXAMPLES / "pred_small.json"


def _score(tmp_path: Path, answers: dict[str, str]) -> dict:
    """Score gt_small with every CVS / SA prediction replaced by `answers[qa_type]`."""
    preds = json.loads(PRED.read_text())
    for pred in preds:
        pred["prediction"] = answers.get(pred["qa_type"], pred["prediction"])
    path, out = tmp_path / "pred.json", tmp_path / "metrics.json"
    path.write_text(json.dumps(preds))
    score_cli.run(["--gt", str(GT), "--pred", str(path), "--out", str(out)])
    return json.loads(out.read_text())


@pytest.mark.parametrize("garbage", ["", "no idea", "Two structures 2; cystic plate 1", "8/10"])
def test_cvs_and_sa_with_no_parsed_answer_print_zero_like_the_leaderboard(tmp_path: Path, garbage: str) -> None:
    metrics = _score(tmp_path, {"cvs_assessment": garbage, "skill_assessment": garbage})
    assert metrics["cvs_acc"] == 0.0 and metrics["sa_acc"] == 0.0
    assert isinstance(metrics["cvs_acc"], float) and isinstance(metrics["sa_acc"], float)
    assert metrics["per_source"]["Cholec80-CVS"]["cvs_acc"] == 0.0
    assert metrics["per_source"]["JIGSAWS"]["sa_acc"] == 0.0


def test_parsed_cvs_and_sa_are_unchanged(tmp_path: Path) -> None:
    metrics = _score(tmp_path, {})
    assert metrics["cvs_acc"] == 0.5 and metrics["sa_acc"] == pytest.approx(2 / 3)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_atomic_outputs_follow_the_umask(tmp_path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    assert current_umask() == mask
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_text_atomic(tmp_path / "b.txt", "x")
    with atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"\0")  # what parquet / PNG writers do: write the temp path
    for name in ("a.json", "b.txt", "c.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.txt", "c.bin"]  # no temp left


def test_failed_atomic_write_leaves_no_temp_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_score_cli_output_follows_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    cmd = f"umask 027 && {sys.executable} -m evaluation.score_submission --gt {GT} --pred {PRED} --out {out}"
    proc = subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
