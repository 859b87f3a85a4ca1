"""STG parsing (entries, failures, fallback) and the previous-box / key-format quirks."""

import pytest

from reward_fns.reference import Reference
from reward_fns.tasks import stg


def ref(bbox):
    return Reference("stg", "CoPESD", "", [{"start": 0, "end": 1, "stride": 1, "object": "k", "bbox_dict": bbox}])


def test_entries_are_keyed_by_float_string():
    parsed = stg.parse_boxes("1 seconds: [1, 2, 3, 4] 2.50 seconds: [5,6,7,8]")
    assert parsed.value.boxes == {"1.0": [1, 2, 3, 4], "2.5": [5, 6, 7, 8]}


@pytest.mark.parametrize("text", ["1.0s: [1, 2, 3, 4]", "1.0 seconds : [1, 2, 3, 4]", "1.0 seconds: []"])
def test_malformed_entries_are_not_entries(text):
    assert not stg.parse_boxes(text).ok


def test_double_brackets_inside_an_entry_parse():
    assert stg.parse_boxes("1.0 seconds: [[1, 2, 3, 4]]").value.boxes == {"1.0": [1, 2, 3, 4]}


def test_bad_entry_takes_last_good_box_even_off_grid():
    text = "0.3 seconds: [9, 9, 19, 19] 1.0 seconds: [1, 2] 2.0 seconds: [a, b, c, d]"
    boxes = stg.parse_boxes(text).value.boxes
    assert boxes == {"0.3": [9, 9, 19, 19], "1.0": [9, 9, 19, 19], "2.0": [9, 9, 19, 19]}


def test_bad_entry_before_any_good_box_is_dropped_and_all_bad_gives_empty():
    assert stg.parse_boxes("1.0 seconds: [1, 2] 2.0 seconds: [1, 2, 3, 4]").value.boxes == {"2.0": [1, 2, 3, 4]}
    parsed = stg.parse_boxes("1.0 seconds: [1, 2] [[1, 2, 3, 4]]")  # entries matched: no fallback
    assert not parsed.ok and parsed.value == stg.BoxPrediction()


def test_fallback_integer_double_bracket_boxes_only():
    assert stg.parse_boxes("[[1, 2, 3, 4]] then [[5,6,7,8]]").value.fallback == ([1, 2, 3, 4], [5, 6, 7, 8])
    assert not stg.parse_boxes("[[1,2,3,4],[5,6,7,8]]").ok
    assert not stg.parse_boxes("[[1.0, 2.0, 3.0, 4.0]]").ok


def test_box_iou():
    assert stg.box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert stg.box_iou([0, 0, 10, 20], [0, 0, 10, 10]) == pytest.approx(0.5)
    assert stg.box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    assert stg.box_iou([0, 0, 5, 5], [6, 6, 9, 9]) == 0.0


def test_missing_and_zero_boxes_reuse_the_previous_box():
    gt = {"1.0": [0, 0, 10, 10], "2.0": [0, 0, 10, 10], "3.0": [0, 0, 10, 10], "4.0": [10, 10, 20, 20]}
    text = "1.0 seconds: [0, 0, 10, 10] 2.0 seconds: [0.0, 0.0, 0.0, 0.0] 4.0 seconds: [10, 10, 20, 20]"
    assert stg.evaluate(stg.parse_boxes(text), ref(gt)).scores["miou"] == 1.0


def test_first_key_missing_stays_zero_box():
    gt = {"1.0": [0, 0, 10, 10], "2.0": [0, 0, 10, 10]}
    assert stg.evaluate(stg.parse_boxes("2.0 seconds: [0, 0, 10, 10]"), ref(gt)).scores["miou"] == 0.5


def test_fallback_key_quirk_integer_gt_keys_are_not_found():
    # fallback boxes are stored under the GT keys as written ("4"), but looked up as "4.0"
    gt = {"4": [0, 0, 10, 10], "5": [0, 0, 10, 10]}
    assert stg.evaluate(stg.parse_boxes("[[0, 0, 10, 10]] [[0, 0, 10, 10]]"), ref(gt)).scores["miou"] == 0.0
    gt = {"4.0": [0, 0, 10, 10], "5.0": [0, 0, 5, 10]}
    assert stg.evaluate(stg.parse_boxes("[[0, 0, 10, 10]] [[0, 0, 10, 10]]"), ref(gt)).scores["miou"] == 0.75


def test_gt_key_two_point_two_five_is_looked_up_as_two_point_two():
    gt = {"2.25": [0, 0, 10, 10]}
    assert stg.evaluate(stg.parse_boxes("2.25 seconds: [0, 0, 10, 10]"), ref(gt)).scores["miou"] == 0.0
    assert stg.evaluate(stg.parse_boxes("2.2 seconds: [0, 0, 10, 10]"), ref(gt)).scores["miou"] == 1.0


def test_empty_bbox_dict_is_left_out():
    assert not stg.evaluate(stg.parse_boxes("1.0 seconds: [0, 0, 1, 1]"), ref({})).counted
