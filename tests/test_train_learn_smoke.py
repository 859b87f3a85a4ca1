"""learn-smoke, short: its stages run through the launchers, learning.json has its shape, the curves tool
reads the run. (Its target, docs/training.md, is not asserted here; measured runs: docs/benchmarks.md.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_fns import curves
from reward_fns.reference import reference_from_record
from reward_fns.registry import task_for_qa_type
from testbed import learn_smoke, toy_learn


def test_toy_learn_answers_are_drawn_in_the_frames(tmp_path: Path) -> None:
    """Each scene shows its answer: CVS as the bands' hues, the STG box as the bright tool head,
    the TAG span as the green frames; and each record's own answer earns the full reward."""
    import asyncio

    import numpy as np
    from PIL import Image

    from reward_fns.build import build_scorer
    from reward_fns.config import MedGRPORewardConfig

    path = toy_learn.generate(tmp_path, per_pair=3, seed=1)
    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == 3 * len(toy_learn.PAIRS)
    assert toy_learn.generate(tmp_path / "again", per_pair=3, seed=1).read_text() == path.read_text()
    scorer = build_scorer(MedGRPORewardConfig.from_mapping({"normalization": {"enabled": False}}), with_captions=False)
    for record in records:
        frames = [np.asarray(Image.open(tmp_path / f)).astype(int) for f in record["video"]]
        struc = record["struc_info"][0]
        task = task_for_qa_type(record["qa_type"]).name
        if task == "CVS":
            for row, key in enumerate(("two_structures", "cystic_plate", "hepatocystic_triangle")):
                band = frames[0][row * toy_learn.BAND + 4:(row + 1) * toy_learn.BAND - 4]
                assert np.abs(band.mean(axis=(0, 1)) - toy_learn.HUES[struc["cvs_scores"][key]]).max() < 4
        elif task == "STG":
            x1, y1, x2, y2 = struc["bbox_dict"]["0.0"]
            bright = np.argwhere(frames[0].mean(axis=2) > 180)
            assert (bright.min(axis=0).tolist(), (bright.max(axis=0) + 1).tolist()) == ([y1, x1], [y2, x2])
        else:
            span = struc["spans"][0]
            marked = [k for k, f in enumerate(frames) if f[:, :, 1].mean() > 150]  # the field turns green
            assert marked == list(range(int(span["start"]), int(span["end"])))
        ref = reference_from_record(record)
        assert asyncio.run(scorer.score(ref.answer, ref)).raw == pytest.approx(1.0)
    from data_preprocess import medvidbench

    assert medvidbench.main(["--input", str(path), "--out-dir", str(tmp_path / "data"), "--workers", "1"]) == 0


@pytest.mark.slow  # SFT, calibration and 2 GRPO steps through the launchers: about 4-6 min on 2 shared cores
@pytest.mark.timeout(1200)
def test_short_learn_smoke_writes_learning_json_and_curves(tmp_path: Path) -> None:
    out = tmp_path / "learn"
    code = learn_smoke.main(["--out", str(out), "--steps", "2", "--val-every", "1", "--sft-steps", "4",
                             "--per-pair", "6", "--n", "2"])
    assert code == 0, (out / "logs").iterdir()
    learning = json.loads((out / "learning.json").read_text(encoding="utf-8"))
    assert learning["settings"]["steps"] == 2 and learning["settings"]["normalization"] == "logistic"
    assert [s["step"] for s in learning["steps"]] == [0, 1, 2]
    for point in learning["steps"]:
        assert point["val"], point
        for rewards in (*point["val"].values(), *point["train"].values()):
            assert set(rewards) == {"raw", "normalized", "n"} and rewards["n"] >= 1
            assert 0.0 <= rewards["raw"] <= 1.0 and 0.0 <= rewards["normalized"] <= 1.0
    assert learning["steps"][0]["train"] == {} and learning["steps"][2]["train"]
    assert set(learning["target"]) >= {"met", "gain", "sources_higher"}
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    run = curves.read_run(out)
    assert {r["split"] for r in run.rows} == {"train", "val"} and not run.notes
    assert curves.main(["--run", str(out)]) == 0


def _curve_row(split: str, step: int, source: str, task: str, n: int, raw: float) -> dict:
    return {"split": split, "step": step, "data_source": source, "task": task, "n": n, "raw": raw,
            "normalized": raw / 2}


def test_learning_steps_weigh_tasks_by_answers_and_pair_val_points_with_train_steps() -> None:
    rows = [_curve_row("val", 0, "CoPESD", "STG", 1, 0.0), _curve_row("val", 0, "CoPESD", "TAG", 3, 0.8),
            _curve_row("val", 5, "CoPESD", "STG", 1, 1.0), _curve_row("val", 5, "CoPESD", "TAG", 3, 0.8),
            _curve_row("train", 5, "CoPESD", "TAG", 8, 0.5), _curve_row("train", 4, "AVOS", "TAG", 8, 0.9)]
    steps = learn_smoke.learning_steps(rows)
    assert [s["step"] for s in steps] == [0, 5]
    assert steps[0]["val"]["CoPESD"] == {"raw": pytest.approx(0.6), "normalized": pytest.approx(0.3), "n": 4}
    assert steps[0]["train"] == {} and steps[1]["train"] == {"CoPESD": {"raw": 0.5, "normalized": 0.25, "n": 8}}
    assert learn_smoke.table(steps)[-1].split() == ["mean", "0.600", "0.850"]


def test_target_needs_the_gain_and_three_higher_sources_and_flags_padded_answers() -> None:
    def point(step: int, *raws: float) -> dict:
        return {"step": step, "val": {src: {"raw": r} for src, r in zip("ABCD", raws, strict=False)}}

    met = learn_smoke.target([point(0, 0.2, 0.2, 0.2, 0.2), point(40, 0.4, 0.3, 0.35, 0.2)], ["length-growth: x"])
    assert met["met"] and met["gain"] == pytest.approx(0.1125) and met["sources_higher"] == ["A", "B", "C"]
    assert met["suspect"] == ["length-growth: x"]
    assert not learn_smoke.target([point(0, 0.2, 0.2, 0.2, 0.2), point(40, 0.3, 0.3, 0.3, 0.2)])["met"]  # +0.075
    assert not learn_smoke.target([point(0, 0.2, 0.2, 0.2, 0.2), point(40, 0.8, 0.6, 0.1, 0.1)])["met"]  # 2 higher
    assert learn_smoke.target([point(0, 0.2)])["why"].startswith("1 validation point")
    same = learn_smoke.target([point(0, 0.3, 0.2), point(5, 0.1 + 0.2, 0.2)])  # 0.30000000000000004
    assert same["sources_higher"] == []
