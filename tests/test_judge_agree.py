"""The judge agreement tool against two local servers with scripted scores of known correlations."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from evaluation import judge_agree
from evaluation.judge_agreement import agreement_matrix, compare, correlations
from reward_fns.judge.prompt import extract_captions
from testbed.judge_server import JudgeTestServer

DIMS = ("R2", "R3", "R8", "R5", "R4")
# Judge A scores p1..p5 as 1..5 on every dimension. Judge B, per dimension:
B = {
    "R2": [1, 2, 3, 4, 5],   # identical: rho = tau = 1, MAD 0
    "R3": [5, 4, 3, 2, 1],   # reversed: rho = tau = -1, MAD (4+2+0+2+4)/5 = 2.4
    "R8": [2, 3, 4, 5, 5],   # ranks 1,2,3,4.5,4.5: rho = sqrt(0.95), tau_b = 9/sqrt(90), MAD 0.8
    "R5": [3, 3, 3, 3, 3],   # constant: correlations undefined
    "R4": [1, 2, 3, 4, 5],
}
# B's mean per pair: 2.4, 2.8, 3.2, 3.6, 3.8 (increasing: rho = tau = 1); MAD (1.4+0.8+0.2+0.4+1.2)/5 = 0.8


def reply_a(body: Mapping[str, Any]) -> str:
    _, pred = extract_captions(body["messages"])  # type: ignore[misc]
    i = int(pred[1:])
    return "\n".join(f"{d}: {min(i, 5)}" for d in DIMS)


def reply_b(body: Mapping[str, Any]) -> str:
    _, pred = extract_captions(body["messages"])  # type: ignore[misc]
    i = int(pred[1:])
    if i == 6:
        return "I would rather not score this."  # B fails on p6
    return "\n".join(f"{d}: {B[d][i - 1]}" for d in DIMS)


def write_pairs(path: Path) -> Path:
    lines = [{"task": "VS" if i % 2 else "RC", "reference": f"reference {i}", "prediction": f"p{i}"}
             for i in range(1, 7)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def judge_yaml(path: Path, url: str, model: str) -> Path:
    path.write_text(f"judge:\n  base_url: {url}\n  model: {model}\n  max_retries: 0\n  concurrency: 4\n"
                    "  prompt_price_per_mtok: 2.0\n  completion_price_per_mtok: 8.0\n")
    return path


def test_agreement_report_has_the_known_correlations(tmp_path: Path) -> None:
    with JudgeTestServer(replies=reply_a).run_in_thread() as a, \
            JudgeTestServer(replies=reply_b).run_in_thread() as b:
        out, plot = tmp_path / "report.json", tmp_path / "agree.png"
        judge_agree.main(["--pairs", str(write_pairs(tmp_path / "pairs.jsonl")),
                          "--judge-a", str(judge_yaml(tmp_path / "a.yaml", a.base_url, "gpt-4.1")),
                          "--judge-b", str(judge_yaml(tmp_path / "b.yaml", b.base_url, "local-med")),
                          "--out", str(out), "--plot", str(plot)])
    report = json.loads(out.read_text())
    assert plot.stat().st_size > 10_000 and report["pairs"] == 6 and report["both_scored"] == 5
    dims = report["dimensions"]
    assert (dims["R2"]["spearman"], dims["R2"]["kendall"], dims["R2"]["mean_abs_diff"]) == pytest.approx((1, 1, 0))
    assert dims["R3"]["spearman"] == pytest.approx(-1) and dims["R3"]["kendall"] == pytest.approx(-1)
    assert dims["R3"]["mean_abs_diff"] == pytest.approx(2.4)
    assert dims["R8"]["spearman"] == pytest.approx(math.sqrt(0.95))
    assert dims["R8"]["kendall"] == pytest.approx(9 / math.sqrt(90))
    assert dims["R8"]["mean_abs_diff"] == pytest.approx(0.8) and dims["R8"]["within_1"] == 1.0
    assert dims["R5"]["spearman"] is None and dims["R5"]["kendall"] is None
    assert dims["mean"]["spearman"] == pytest.approx(1) and dims["mean"]["mean_abs_diff"] == pytest.approx(0.8)
    assert dims["R2"]["matrix"] == [[int(i == j) for j in range(5)] for i in range(5)]
    assert dims["R3"]["matrix"][0][4] == 1 and dims["R5"]["matrix"][4][2] == 1
    judge_a, judge_b = report["judges"]["a"], report["judges"]["b"]
    assert (judge_a["model"], judge_a["failure_rate"]) == ("gpt-4.1", 0.0)
    assert (judge_b["model"], judge_b["failures"]) == ("local-med", 1)
    assert judge_b["failure_rate"] == pytest.approx(1 / 6)
    for judge in (judge_a, judge_b):
        assert judge["prompt_tokens"] > 0 and judge["completion_tokens"] > 0
        assert judge["cost_usd"] == pytest.approx((judge["prompt_tokens"] * 2 + judge["completion_tokens"] * 8) / 1e6)
        assert 0 <= judge["latency_s"]["p50"] <= judge["latency_s"]["p95"]
    assert set(report["per_task_mean"]) == {"RC", "VS"} and report["per_task_mean"]["VS"]["n"] == 3


def test_statistics_by_hand() -> None:
    assert correlations([1, 2], [2, 1]) == (pytest.approx(-1), pytest.approx(-1))
    assert correlations([1], [1]) == (None, None)
    assert agreement_matrix([1.0, 2.5, 9], [0, 5, 3])[0][0] == 1  # 0 clamps to 1, 2.5 rounds up to 3
    assert agreement_matrix([2.5], [5])[2][4] == 1 and agreement_matrix([9], [3])[4][2] == 1
    empty = compare([], [])
    assert empty["n"] == 0 and empty["mean_abs_diff"] is None and empty["spearman"] is None


@pytest.mark.parametrize(("line", "message"), [
    ('{"task": "VS", "reference": "r"}', "field 'prediction' is missing"),
    ('{"task": "VS", "reference": 3, "prediction": "p"}', "field 'reference' must be a JSON string, got 3"),
    ('{"task": "XX", "reference": "r", "prediction": "p"}', "field 'task': unknown task 'XX'"),
    ('["VS", "r", "p"]', "expected an object"),
    ('{"task": "VS", ', "not valid JSON"),
])
def test_bad_pairs_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"task": "RC", "reference": "r", "prediction": "p"}) + "\n" + line + "\n")
    with pytest.raises(judge_agree.AgreementError, match=r"pairs\.jsonl:2: ") as err:
        judge_agree.load_pairs(path)
    assert message in str(err.value)


def test_bad_judge_config_and_empty_pairs_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(judge_agree.AgreementError, match=r"empty\.jsonl: no pairs"):
        judge_agree.load_pairs(tmp_path / "empty.jsonl")
    (tmp_path / "bad.yaml").write_text("judge:\n  modle: x\n")
    with pytest.raises(SystemExit, match=r"bad.yaml: .*unknown key\(s\) \['modle'\]"):
        judge_agree.main(["--pairs", str(write_pairs(tmp_path / "p.jsonl")), "--judge-a", str(tmp_path / "bad.yaml"),
                          "--judge-b", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "r.json")])
    assert not (tmp_path / "r.json").exists()


def test_export_from_a_submission(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[1] / "evaluation" / "examples"
    out = tmp_path / "pairs.jsonl"
    pairs = judge_agree.main(["export", "--gt", str(examples / "gt_small.json"),
                              "--pred", str(examples / "pred_small.json"), "--out", str(out)])
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines == pairs and {p["task"] for p in pairs} <= {"VS", "RC", "DVC"} and len(pairs) >= 2
    assert len({(p["task"], p["reference"], p["prediction"]) for p in pairs}) == len(pairs)  # de-duplicated
    assert judge_agree.load_pairs(out)  # the export is valid input for the tool
    sample = judge_agree.main(["export", "--gt", str(examples / "gt_small.json"), "--pred",
                               str(examples / "pred_small.json"), "--out", str(out), "--limit", "1"])
    assert len(sample) == 1 and sample[0] in pairs
    with pytest.raises(SystemExit):
        judge_agree.main(["export", "--gt", str(examples / "gt_small.json"), "--out", str(out)])


def test_export_from_calibration_rollouts(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reward_fns.reference import Reference

    vs = Reference("video_summary_gpt", "AVOS", "The surgeon dissects the triangle.")
    dvc = Reference("dense_captioning_gpt", "AVOS", "", [[{"start": 0, "end": 10, "caption": "cut the duct"}]])
    tag = Reference("tal", "AVOS", "1.0-2.0 seconds.", [{"action": "cut", "spans": [{"start": 1, "end": 2}]}])
    data = tmp_path / "rl.parquet"
    pq.write_table(pa.table({
        "reward_model": [{"style": "rule", "ground_truth": r.to_json()} for r in (vs, dvc, tag)],
        "extra_info": [{"index": 3}, {"index": 4}, {"index": 5}]}), data)
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text("".join(json.dumps(x) + "\n" for x in (
        {"index": 3, "response": "A dissection."}, {"index": 3, "response": "A dissection."},  # repeated
        {"index": 3, "response": ""},                                                        # nothing to judge
        {"index": 4, "response": "0.0-9.0 seconds: clipping"}, {"index": 5, "response": "1-2"})))
    pairs = judge_agree.main(["export", "--data", str(data), "--rollouts", str(rollouts),
                              "--out", str(tmp_path / "pairs.jsonl")])
    assert pairs == [
        {"task": "VS", "reference": "The surgeon dissects the triangle.", "prediction": "A dissection."},
        {"task": "DVC", "reference": "cut the duct", "prediction": "clipping"},
    ]
