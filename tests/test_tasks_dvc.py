"""DVC parsing (headers, loose fallback, overlap splitting) and the F1 definition, hand-computed."""

import pytest

from reward_fns.reference import Reference
from reward_fns.registry import ScoredCaption
from reward_fns.tasks import dvc
from reward_fns.tasks.dvc_parse import Segment, _loose_segments, gt_segments, parse_segments, split_overlaps


def spans(parsed):
    return [(s.start, s.end) for s in parsed.value]


def test_headers_anywhere_and_multiline_captions():
    text = "Events:\n1.0-29.0 seconds: check: the nurse\nchecks\n29.0-40.0 second: wash hands"
    parsed = parse_segments(text)
    assert spans(parsed) == [(1.0, 29.0), (29.0, 40.0)]
    assert parsed.value[0].caption == "check: the nurse\nchecks"


def test_bulleted_list_is_one_segment():
    parsed = parse_segments("- 1.0-5.0 seconds: a\n- 5.0-9.0 seconds: b")
    assert spans(parsed) == [(1.0, 5.0)]
    assert "5.0-9.0" in parsed.value[0].caption


@pytest.mark.parametrize("text", ["1.0 - 5.0 seconds: a", "1.0-5.0 seconds:a", "1.0-5.0: a", "1.0-5.0 seconds : a"])
def test_header_needs_exact_shape(text):
    assert not parse_segments(text).ok


def test_duplicate_headers_keep_the_first():
    parsed = parse_segments("1-5 seconds: a\n1.0-5.0 seconds: b")
    assert [(s.start, s.end, s.caption) for s in parsed.value] == [(1.0, 5.0, "a")]


def test_loose_fallback_needs_a_hyphen_after_seconds():
    parsed = parse_segments("0.0 - 31.0 seconds: carlot-triangle-dissection: x\n1.0 - 29.0 seconds: check: y")
    assert [(s.start, s.end, s.caption) for s in parsed.value] == [(0.0, 31.0, "triangle-dissection: x")]


def test_loose_fallback_markers_en_dash_and_no_dedup():
    text = ("**Start Time:** 0 – 10 seconds **Description:** cutting\n"
            "Time Range: 0-10 seconds - cutting again\nTime Interval: 12 - 20 seconds - tying")
    assert [(s.start, s.end) for s in _loose_segments(text)] == [(0.0, 10.0), (0.0, 10.0), (12.0, 20.0)]
    # the identical pair then overlaps, and splitting leaves one piece
    assert spans(parse_segments(text)) == [(0.0, 10.0), (12.0, 20.0)]


def test_overlaps_split_at_every_boundary_with_longest_caption():
    pieces = split_overlaps([Segment(0, 10, "long"), Segment(5, 8, "short"), Segment(20, 25, "far")])
    assert [(p.start, p.end, p.caption) for p in pieces] == [
        (0, 5, "long"), (5, 8, "long"), (8, 10, "long"), (20, 25, "far")]


def test_no_overlap_keeps_reversed_segments_and_overlap_drops_them():
    assert split_overlaps([Segment(0, 10, "a"), Segment(60, 32, "r")])[1] == Segment(60, 32, "r")
    pieces = split_overlaps([Segment(0, 70, "a"), Segment(60, 32, "r")])
    assert all(p.caption == "a" for p in pieces)
    assert [(p.start, p.end) for p in pieces] == [(0, 32), (32, 60), (60, 70)]


def test_frame_iou_orders_intervals_and_uses_min_of_hull_and_lengths():
    assert dvc.frame_iou((60, 32), (32, 60)) == pytest.approx(1.0)
    assert dvc.frame_iou((10, 14), (10, 20)) == pytest.approx(0.4)
    assert dvc.frame_iou((0, 0), (0, 0)) == 0.0


def test_frames_truncate_and_drop_what_overflows_64_bits():
    assert [f for _, f in dvc.to_frames([Segment(1.9, 3.99, "")], 1.0)] == [(1, 3)]
    assert [f for _, f in dvc.to_frames([Segment(3.0, 7.0, "")], 0.5)] == [(1, 3)]
    assert dvc.to_frames([Segment(0, 1e19, "x"), Segment(0, 2**62, "y")], 1.0) == [(Segment(0, 2**62, "y"), (0, 2**62))]


def test_f1_hand_computed():
    # P_t = R_t = 1, .5, .5  ->  P = R = 2/3  ->  F1 = 2/3
    assert dvc.f1_score([(0, 10), (10, 14)], [(0, 10), (10, 20)]) == pytest.approx(2 / 3)
    # one prediction covering two GT halves: IoU 0.5 each, and IoU must EXCEED t
    # -> P_t = 1, 0, 0 ; R_t = 1, 0, 0 -> F1 = 1/3
    assert dvc.f1_score([(0, 20)], [(0, 10), (10, 20)]) == pytest.approx(1 / 3)
    assert dvc.f1_score([], [(0, 1)]) is None
    assert dvc.f1_score([(0, 1)], []) is None
    assert dvc.f1_score([(50, 60)], [(0, 10)]) == 0.0


def test_gt_layouts_and_incomplete_entries():
    seg = {"start": 0, "end": 5, "caption": "c"}
    assert gt_segments([[seg, seg]]) == [Segment(0, 5, "c")] * 2
    assert gt_segments([seg]) == [Segment(0, 5, "c")]
    assert gt_segments([{"dc_segments": [seg, {"start": 1, "end": 2}]}]) == [Segment(0, 5, "c")]


def _ref(fps=1.0):
    struc = [[{"start": 0, "end": 10, "caption": "cut"}, {"start": 10, "end": 20, "caption": "tie"}]]
    return Reference("dense_captioning_gpt", "AVOS", "", struc, fps)


def test_evaluate_unparsed_has_no_f1_unless_strict():
    parsed = parse_segments("nothing here")
    assert not dvc.evaluate(parsed, _ref()).counted
    assert dvc.evaluate(parsed, _ref(), strict=True).scores == {"f1": 0.0}


def test_caption_pairs_per_threshold_and_reward():
    parsed = parse_segments("0.0-10.0 seconds: cutting\n10.0-14.0 seconds: tying")
    pairs = dvc.caption_pairs(parsed, _ref())
    assert [(p.prediction, p.reference, p.group) for p in pairs] == [
        ("cutting", "cut", "iou@0.3"), ("tying", "tie", "iou@0.3"),
        ("cutting", "cut", "iou@0.5"), ("cutting", "cut", "iou@0.7")]
    reward = dvc.reward(parsed, _ref(), [ScoredCaption(p, s) for p, s in zip(pairs, [1.0, 0.0, 1.0, 1.0], strict=True)])
    assert reward == pytest.approx(0.5 * (2 / 3) + 0.5 * ((0.5 + 1 + 1) / 3))
