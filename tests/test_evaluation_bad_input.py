"""Scorer and submission CLIs on hostile input: one-line errors naming the file/position, never a traceback,
and one bad answer never stops a run."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation import score_submission as score_cli
from evaluation import submission
from evaluation.fidelity import DEVIATIONS

EXAMPLES = Path(__file__).resolve().parents[1] / "evaluation" / "examples"
GT, PRED = EXAMPLES / "gt_small.json", EXAMPLES / "pred_small.json"
CVS, SA = 9, 11  # positions of a CVS and an SA record in gt_small.json
BIG = "9" * 5000  # more digits than int() accepts


def _preds(tmp_path: Path, **replace: object) -> Path:
    preds = json.loads(PRED.read_text())
    for position, value in replace.items():
        preds[int(position.lstrip("p"))]["prediction"] = value
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(preds))
    return path


def _run(tmp_path: Path, pred: Path, *extra: str) -> dict:
    out = tmp_path / "metrics.json"
    score_cli.run(["--gt", str(GT), "--pred", str(pred), "--out", str(out), *extra])
    return json.loads(out.read_text())


def test_a_huge_number_in_one_cvs_or_sa_answer_does_not_stop_the_cli(tmp_path):
    pred = _preds(tmp_path, **{f"p{CVS}": f"Two structures: {BIG}, Cystic plate: 1",
                               f"p{SA}": f"Respect for tissue: {BIG}/5, Time and motion: 2/5"})
    metrics = _run(tmp_path, pred)
    assert metrics["cvs_acc"] is not None and metrics["sa_acc"] is not None
    assert metrics["settings"]["deviations"] == DEVIATIONS and metrics["settings"]["lenient"] is False


@pytest.mark.parametrize("value, kind", [(3, "number"), (None, "null"), (["a"], "list"), ({"a": 1}, "object"),
                                         (True, "boolean")])
def test_non_string_prediction_is_an_error_naming_the_position(tmp_path, value, kind):
    pred = _preds(tmp_path, p4=value)
    with pytest.raises(SystemExit, match=rf"prediction 4: field 'prediction' is a {kind}, not a string"):
        _run(tmp_path, pred)


def test_lenient_reads_non_strings_as_empty_answers_and_counts_them(tmp_path):
    pred = _preds(tmp_path, p4=None, p5=7, p13=["tying"])
    metrics = _run(tmp_path, pred, "--lenient")
    assert metrics["counts"]["STG"]["non_string"] == 2 and metrics["counts"]["NAP"]["non_string"] == 1
    assert metrics["counts"]["TAG"]["non_string"] == 0 and metrics["settings"]["lenient"] is True
    # the same as scoring empty answers
    empty = _run(tmp_path, _preds(tmp_path, p4="", p5="", p13=""))
    assert {k: metrics[k] for k in ("stg_miou", "nap_acc")} == {k: empty[k] for k in ("stg_miou", "nap_acc")}


def test_json_nested_100k_deep_is_a_one_line_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SystemExit, match=r"deep.json is not usable JSON: nested too deeply at line 1, char offset"):
        score_cli.run(["--gt", str(GT), "--pred", str(deep)])


def test_non_utf8_bytes_name_the_file_and_offset(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'[{"prediction": "caf\xe9"}]')
    with pytest.raises(SystemExit, match=r"latin1.json is not UTF-8: byte 0xe9 at byte offset 20 \(line 1\)"):
        score_cli.run(["--gt", str(GT), "--pred", str(bad)])


def test_out_that_is_a_folder_fails_before_scoring(tmp_path):
    with pytest.raises(SystemExit, match=r"--out .* is a folder"):
        score_cli.run(["--gt", str(GT), "--pred", str(PRED), "--out", str(tmp_path)])
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"id": "x", "qa_type": "tal", "prediction": "a"}]))
    with pytest.raises(SystemExit, match=r"--out .* is a folder"):
        submission.main(["--pred", str(rows), "--out", str(tmp_path)])


@pytest.mark.parametrize("row, message", [
    ({"prediction": None}, r"row 1: field 'prediction' is a null, not a string"),
    ({"prediction": 12}, r"row 1: field 'prediction' is a number, not a string"),
    ({"index": "1"}, r"row 1: field 'index' must be an integer, got string '1'"),
    ({"index": 1.0}, r"row 1: field 'index' must be an integer, got number 1.0"),
    ({"index": True}, r"row 1: field 'index' must be an integer, got boolean True"),
])
def test_submission_refuses_non_string_predictions_and_non_integer_indices(tmp_path, row, message):
    rows = [{"index": 0, "id": "a", "qa_type": "tal", "prediction": "x"},
            {"index": 1, "id": "b", "qa_type": "tal", "prediction": "y", **row}]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(SystemExit, match=message):
        submission.main(["--pred", str(pred), "--out", str(tmp_path / "sub.json")])


def test_submission_jsonl_line_errors_name_the_line(tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"id": "a", "qa_type": "tal", "prediction": "x"}\n' + "[" * 100_000 + "\n")
    with pytest.raises(SystemExit, match=r"pred.jsonl:2 is not usable JSON: nested too deeply"):
        submission.main(["--pred", str(pred), "--out", str(tmp_path / "sub.json")])


@pytest.mark.parametrize("position, struc, field", [
    (3, [{"bbox_dict": {"1.0": ["a", 0, 1, 1]}}], "malformed STG ground truth"),
    (0, [{"spans": [{"begin": 1, "end": 2}]}], "malformed TAG ground truth: missing key 'start'"),
    (9, [{"cvs_scores": {"two_structures": "two"}}], "malformed CVS ground truth"),
])
def test_malformed_structured_ground_truth_names_file_record_and_field(tmp_path, position, struc, field):
    gt = json.loads(GT.read_text())
    gt[position]["struc_info"] = struc
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps(gt))
    with pytest.raises(SystemExit, match=rf"gt.json: record {position}: field 'struc_info': {field}"):
        score_cli.run(["--gt", str(bad), "--pred", str(PRED)])


ADVERSARIAL = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from([BIG[:4400], "nan", "-inf", "1e309", "٣", "１２", "\ud800", "0.", "**", "[[", "]]", ",",
                              " seconds: ", "-", "/5", ":", "\n", " to ", "Two structures: ", "00:01:02"]),
             max_size=12).map("".join),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=ADVERSARIAL, position=st.integers(0, 21))
def test_one_adversarial_answer_never_stops_scoring(embedder, answer, position):
    from evaluation.benchmark_metrics import build_references, score
    from reward_fns.similarity import SimilarityService

    gt, preds = json.loads(GT.read_text()), json.loads(PRED.read_text())
    texts = [p["prediction"] for p in preds]
    texts[position] = answer
    report = score(build_references(gt), texts, similarity=SimilarityService(embedder))
    assert all(v is None or math.isfinite(v) for v in report.columns.values())
