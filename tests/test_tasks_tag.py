"""TAG parsing branches and greedy matching, hand-computed."""

import pytest

from reward_fns.reference import Reference
from reward_fns.tasks import tag


def ref(spans, fps=1.0):
    struc = [{"action": "a", "spans": [{"start": s, "end": e} for s, e in spans]}]
    return Reference("tal", "AVOS", "", struc, fps)


@pytest.mark.parametrize("text, expected", [
    ("22.0-78.0, 89.0-94.0 seconds.", [(22.0, 78.0), (89.0, 94.0)]),
    ("Steps 1-2: 22-78", [(1.0, 2.0), (22.0, 78.0)]),
    ("from 12 to 30 seconds, and 40-50 seconds", [(40.0, 50.0)]),  # step 1 wins
    ("12 - 30", [(12.0, 30.0)]),
    ("The action takes place from 12.5 to 30 seconds.", [(12.5, 30.0)]),
    ("from 12s to 30s", [(12.0, 30.0)]),
    ("12 seconds to 30 seconds", [(12.0, 30.0)]),
    ("12TO30", [(12.0, 30.0)]),  # case-insensitive, spaces optional
    ("from 1.2345 to 2.3456", [(1.23, 2.35)]),  # round(x, 2)
    ("12 sec to 30 sec", []),
    ("12.0 s to 30.0 s", []),
    ("between 12 and 30", []),
    ("00:00:02 to 00:00:10", [(2.0, 0.0), (2, 10)]),  # (a) then (b)
    ("00:01:00 to 00:01:30", [(0.0, 0.0), (60, 90)]),
    ("00:01:00to00:01:30", [(0.0, 0.0)]),  # (b) needs whitespace around `to`
])
def test_parse_spans(text, expected):
    parsed = tag.parse_spans(text)
    assert parsed.value == expected
    assert parsed.ok == bool(expected)
    if not expected:
        assert parsed.reason


def test_iou_and_zero_denominator():
    assert tag.span_iou((10, 20), (15, 25)) == pytest.approx(5 / 15)
    assert tag.span_iou((5, 5), (5, 5)) == 0.0
    assert tag.span_iou((0, 1), (2, 3)) == 0.0


def test_greedy_matching_in_gt_order_uses_predictions_once():
    # GT1 takes the best prediction (0-10); GT2's best would be the same one, so it gets 0-8 (0.8).
    gt = [(0, 10), (0, 10)]
    pred = [(0, 10), (0, 8)]
    assert tag.matched_miou(pred, gt, 0.3) == pytest.approx((1.0 + 0.8) / 2)
    # a matched mean, not a recall: unmatched GT spans do not lower the score
    assert tag.matched_miou([(0, 10)], [(0, 10), (50, 60)], 0.5) == 1.0


def test_ties_take_the_first_prediction_and_zero_iou_is_never_matched():
    assert tag.matched_miou([(0, 5), (5, 10)], [(0, 10)], 0.0) == pytest.approx(0.5)
    assert tag.matched_miou([(20, 30)], [(0, 10)], 0.0) == 0.0


def test_threshold_is_inclusive():
    assert tag.matched_miou([(0, 5)], [(0, 10)], 0.5) == pytest.approx(0.5)


def test_evaluate_scales_by_fps_and_scores_both_thresholds():
    result = tag.evaluate(tag.parse_spans("10.0-20.0, 35.0-45.0"), ref([(10, 20), (30, 40)], fps=2.0))
    assert result.counted
    assert result.scores["miou@0.3"] == pytest.approx((1 + 1 / 3) / 2)
    assert result.scores["miou@0.5"] == pytest.approx(1.0)


def test_gt_without_spans_scores_zero_and_is_counted():
    result = tag.evaluate(tag.parse_spans("1-2"), ref([]))
    assert result.counted and result.scores == {"miou@0.3": 0.0, "miou@0.5": 0.0}


def test_reward_averages_thresholds():
    r = tag.reward(tag.parse_spans("10-20, 35-45"), ref([(10, 20), (30, 40)]))
    assert r == pytest.approx(((1 + 1 / 3) / 2 + 1.0) / 2)
    assert tag.reward(tag.parse_spans("no idea"), ref([(1, 2)])) == 0.0
