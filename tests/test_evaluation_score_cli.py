"""The scorer CLI on the bundled example, with numbers derived by hand (see comments)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import score_submission as score_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "evaluation" / "examples"
GT, PRED = EXAMPLES / "gt_small.json", EXAMPLES / "pred_small.json"

# Hand-derived from gt_small.json / pred_small.json:
EXPECTED = {
    # CVS: two structures 2/2 correct, hepatocystic 0/1, cystic plate never compared -> (1 + 0) / 2
    "cvs_acc": 0.5,
    # NAP: counted 13..18 (19 is off-list): T, T (CoPESD alias), F, T (snapped), F (snapped), T (NurViD) -> 4/6
    "nap_acc": 4 / 6,
    # SA: record 12 skipped (no d/5); 11: RfT T, S/nh F, FoO T, '1. Time and motion' unmatched -> 2/3
    "sa_acc": 2 / 3,
    # STG: (1 + 1 (zero box reuses previous) + 0.5) / 3 and fallback (0.5 + 1) / 2; empty dict left out
    "stg_miou": ((2.5 / 3) + 0.75) / 2,
    # TAG@0.3: (mean(1, 1/3) + 2/3 + 0) / 3 ; TAG@0.5: (1 + 2/3 + 0) / 3
    "tag_miou_03": ((1 + 1 / 3) / 2 + 2 / 3 + 0) / 3,
    "tag_miou_05": (1 + 2 / 3 + 0) / 3,
    # DVC F1: AVOS 2/3 (1 record), NurViD mean over records with F1 = 1.0 (2 records) -> (2/3 + 2) / 3
    "dvc_f1": (2 / 3 * 1 + 1.0 * 2) / 3,
    "dvc_llm": None, "vs_llm": None, "rc_llm": None,
}
STRICT = {"cvs_acc": 1 / 3, "sa_acc": 1 / 6, "dvc_f1": (2 / 3 + 0.5 * 2) / 3}


def _check(metrics, expected):
    for key, value in expected.items():
        if value is None:
            assert metrics[key] is None, key
        else:
            assert metrics[key] == pytest.approx(value, abs=1e-9), key


def test_cli_default_matches_hand_computed_numbers(tmp_path, capsys):
    out = tmp_path / "metrics.json"
    score_cli.run(["--gt", str(GT), "--pred", str(PRED), "--out", str(out)])
    metrics = json.loads(out.read_text())
    _check(metrics, EXPECTED)
    assert metrics["counts"]["SA"] == {"records": 2, "counted": 1, "unparsable": 1, "non_string": 0}
    assert metrics["counts"]["STG"] == {"records": 3, "counted": 2, "unparsable": 1, "non_string": 0}
    assert metrics["per_source"]["EgoSurgery"]["stg_miou"] == pytest.approx(0.75)
    table = capsys.readouterr().out
    assert "| CVS acc | NAP acc | SA acc | STG mIoU | TAG mIoU@0.3 | TAG mIoU@0.5 | DVC llm | DVC F1 |" in table
    assert "| submission | 0.500 | 0.667 | 0.667 | 0.792 | 0.444 | 0.556 | - | 0.889 | - | - |" in table


def test_cli_strict_counts_unparsable_as_zero(tmp_path):
    out = tmp_path / "strict.json"
    score_cli.run(["--gt", str(GT), "--pred", str(PRED), "--out", str(out), "--strict"])
    metrics = json.loads(out.read_text())
    _check(metrics, {**EXPECTED, **STRICT})


def test_join_by_id_accepts_shuffled_predictions(tmp_path):
    preds = json.loads(PRED.read_text())
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps(preds[::-1]))
    out = tmp_path / "m.json"
    score_cli.run(["--gt", str(GT), "--pred", str(shuffled), "--out", str(out), "--join", "id"])
    _check(json.loads(out.read_text()), EXPECTED)
    with pytest.raises(SystemExit, match="disagree with the ground truth at positions: 0 "):
        score_cli.run(["--gt", str(GT), "--pred", str(shuffled)])


def test_similarity_fallback_is_reported_on_its_own_scale(tmp_path):
    out = tmp_path / "sim.json"
    score_cli.run(["--gt", str(GT), "--pred", str(PRED), "--out", str(out), "--judge", "similarity"])
    metrics = json.loads(out.read_text())
    assert metrics["vs_llm"] is None and metrics["caption_scale"] == "cosine_0_1"
    assert 0.3 < metrics["vs_sim"] <= 1.0 and 0.3 < metrics["rc_sim"] <= 1.0 and 0 < metrics["dvc_sim"] <= 1.0


def test_openai_judge_without_config_is_a_clear_error():
    with pytest.raises(SystemExit, match="--judge openai needs --judge-config"):
        score_cli.run(["--gt", str(GT), "--pred", str(PRED), "--judge", "openai"])


def test_openai_judge_columns_from_the_test_server(tmp_path):
    from testbed.judge_server import JudgeTestServer, expected_score

    gt, preds = json.loads(GT.read_text()), json.loads(PRED.read_text())
    with JudgeTestServer().run_in_thread() as server:
        config = tmp_path / "judge.yaml"
        config.write_text(f"judge:\n  base_url: {server.base_url}\n  model: med-judge\n")
        out = tmp_path / "m.json"
        score_cli.run(["--gt", str(GT), "--pred", str(PRED), "--out", str(out), "--judge", "openai",
                       "--judge-config", str(config), "--judge-protocol", "medgrpo"])
    metrics = json.loads(out.read_text())
    vs = next(i for i, r in enumerate(gt) if r["qa_type"].startswith("video_summary"))
    rc = next(i for i, r in enumerate(gt) if r["qa_type"].startswith("region_caption"))
    assert metrics["caption_scale"] == "judge_1_5" and metrics["settings"]["judge_protocol"] == "medgrpo"
    # the project's own judge is reported under its own name, never as the leaderboard's *_llm
    assert metrics["vs_llm"] is None and metrics["rc_llm"] is None and metrics["dvc_llm"] is None
    assert metrics["vs_medjudge"] == expected_score(gt[vs]["conversations"][1]["value"], preds[vs]["prediction"])
    assert metrics["rc_medjudge"] == expected_score(gt[rc]["conversations"][1]["value"], preds[rc]["prediction"])
    assert 1.0 <= metrics["dvc_medjudge"] <= 5.0
    rule = {k: v for k, v in EXPECTED.items() if k not in ("dvc_llm", "vs_llm", "rc_llm")}
    assert {k: metrics[k] for k in rule} == pytest.approx(rule)


def test_module_entry_point_runs(tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "evaluation.score_submission", "--gt", str(GT), "--pred", str(PRED),
                           "--out", str(out)], capture_output=True, text=True, cwd=EXAMPLES.parents[1], check=True)
    assert "| submission |" in proc.stdout
    assert json.loads(out.read_text())["cvs_acc"] == 0.5


def test_bad_gt_record_names_file_index_and_field(tmp_path):
    gt = json.loads(GT.read_text())
    del gt[3]["metadata"]["fps"]
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps(gt))
    with pytest.raises(SystemExit, match=r"gt.json: record 3: field 'metadata.fps': missing"):
        score_cli.run(["--gt", str(bad), "--pred", str(PRED)])
    gt[3]["metadata"]["fps"] = "1.0"
    gt[3]["qa_type"] = "stg_v2"
    bad.write_text(json.dumps(gt))
    with pytest.raises(SystemExit, match=r"record 3: field 'qa_type': unknown qa_type 'stg_v2'"):
        score_cli.run(["--gt", str(bad), "--pred", str(PRED)])
