"""Joining predictions to GT (position / id) and the submission export."""

import json

import pytest

from evaluation import submission
from evaluation.join import JoinError, join_by_id, join_by_position


def rec(vid, qa="tal"):
    return {"metadata": {"video_id": vid, "input_video_start_frame": "0", "input_video_end_frame": "9", "fps": "1.0"},
            "qa_type": qa}


GT = [rec("a"), rec("a"), rec("b", "stg")]  # two questions on one clip: duplicate ids
IDS = ["a&&0&&9&&1.0", "a&&0&&9&&1.0", "b&&0&&9&&1.0"]


def test_position_join_checks_id_and_qa_type_where_given():
    preds = [{"id": IDS[0], "prediction": "x"}, {"prediction": "y"},
             {"id": IDS[2], "qa_type": "stg", "prediction": None}]
    with pytest.raises(JoinError, match="prediction 2: field 'prediction' is a null, not a string"):
        join_by_position(GT, preds)
    assert join_by_position(GT, preds, lenient=True) == ["x", "y", ""]
    with pytest.raises(JoinError, match="2 predictions for 3"):
        join_by_position(GT, preds[:2])
    bad = [{"id": IDS[2], "prediction": "x"}, {"qa_type": "stg", "prediction": "y"}, preds[2]]
    with pytest.raises(JoinError, match=r"positions: 0 \(id .*1 \(qa_type 'stg' != 'tal'\)"):
        join_by_position(GT, bad)


def test_id_join_uses_occurrence_order_and_names_missing_and_unknown_keys():
    preds = [{"id": IDS[2], "qa_type": "stg", "prediction": "s"},
             {"id": IDS[0], "qa_type": "tal", "prediction": "first"},
             {"id": IDS[0], "qa_type": "tal", "prediction": "second"}]
    assert join_by_id(GT, preds) == ["first", "second", "s"]
    with pytest.raises(JoinError, match=r"missing predictions for \('a&&0&&9&&1.0', 'tal', 1\).*unknown keys \('z'"):
        join_by_id(GT, [preds[0], preds[1], {"id": "z", "qa_type": "tal", "prediction": ""}])


def test_submission_orders_by_index_and_validates(tmp_path):
    rows = [{"index": 1, "id": IDS[1], "qa_type": "tal", "prediction": "b", "extra": 1},
            {"index": 0, "id": IDS[0], "qa_type": "tal", "prediction": "a"},
            {"index": 2, "id": IDS[2], "qa_type": "stg", "prediction": ""}]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GT))
    out = tmp_path / "sub.json"
    submission.main(["--pred", str(pred), "--out", str(out), "--gt", str(gt)])
    assert json.loads(out.read_text()) == [
        {"id": IDS[0], "qa_type": "tal", "prediction": "a"}, {"id": IDS[1], "qa_type": "tal", "prediction": "b"},
        {"id": IDS[2], "qa_type": "stg", "prediction": ""}]
    with pytest.raises(ValueError, match="row 0: missing field"):
        submission.to_submission([{"id": "x", "qa_type": "tal"}])
    with pytest.raises(ValueError, match="each exactly once"):
        submission.to_submission([{**rows[0], "index": 3}])
