"""Spec section 4b, rule by rule, and every listed deviation, each with a hand-computed case."""

import math

import pytest

from reward_fns.reference import Reference
from reward_fns.tasks import cvs, dvc, sa, stg, tag
from reward_fns.tasks.dvc_parse import parse_events, parse_segments

BIG = "9" * 5000  # longer than int() accepts (4,300 digits); float() gives inf


def events(text):
    return [(s.start, s.end, s.caption) for s in parse_events(text)[0]]


# --- TAG step 2(a): the unit is a glued `s` or exactly ONE space + second(s) -------------------------
@pytest.mark.parametrize("text", ["from 15.4seconds to 20.0seconds", "15.4\tseconds to 20.0 seconds",
                                  "15.4\nseconds to 20.0 seconds", "15.4  seconds to 20 seconds"])
def test_tag_unit_other_than_s_or_one_space_gives_no_span(text):
    assert not tag.parse_spans(text).ok


@pytest.mark.parametrize("text, spans", [
    ("12S TO 30 SECONDS", [(12.0, 30.0)]),  # case-insensitive
    ("12 second to30s", [(12.0, 30.0)]),  # whitespace around `to` optional
    ("from 12.345 to 30.999", [(12.35, 31.0)]),  # both ends round(x, 2)
])
def test_tag_unit_forms_that_parse(text, spans):
    assert tag.parse_spans(text).value == spans


# --- DVC primary entries ----------------------------------------------------------------------------
def test_dvc_caption_ends_at_next_header_even_without_space_after_its_colon():
    # "5-9 seconds:b" ends the first caption but, with no space after its colon, starts no entry itself
    assert events("0-5 seconds: a\n5-9 seconds:b\n10-20 seconds: c") == [(0, 5, "a"), (10, 20, "c")]


def test_dvc_caption_keeps_a_newline_not_followed_by_a_header():
    assert events("0-5 seconds: a\n5-9 sec: b") == [(0, 5, "a\n5-9 sec: b")]


# --- DVC fallback -----------------------------------------------------------------------------------
def test_dvc_fallback_lines_are_not_stripped_so_one_space_after_the_dash_is_a_caption():
    # the first line ends in "- " (a space after the final dash): an entry with an empty caption
    assert events("1 - 2 seconds - \n3 - 4 seconds - x") == [(1, 2, ""), (3, 4, "x")]
    assert events("1 - 2 seconds -") == []  # the text is stripped as a whole: nothing after the dash


def test_dvc_fallback_numbers_may_end_in_a_bare_dot():
    assert events("0. - 11. seconds - cut") == [(0.0, 11.0, "cut")]


@pytest.mark.parametrize("marker", ["**Start Time:**", "Start Time", "StartTime", "Start  Time", "Start (Time)",
                                    "Start Time)", "Time Range:", "TimeRange:", "Time  Interval:"])
def test_dvc_fallback_markers(marker):
    assert events(f"Event {marker} 5 – 6 second **Description:** y") == [(5.0, 6.0, "y")]


def test_dvc_fallback_only_without_primary_entries():
    text = "1-2 seconds: primary\nStart Time 5 - 6 seconds - loose"
    assert events(text) == [(1, 2, "primary\nStart Time 5 - 6 seconds - loose")]


# --- CVS ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Two structures / two structure: 2", {"two structures": 2}),  # `two structures?:`
    ("Cystic plate: 1 and two structures: 2", {"two structures": 2}),  # tested in order: two structures first
    ("Cystic plate: 1 hepatocystic triangle: 2", {"cystic plate": 1}),  # a part serves its first name only
    ("Two structures: 2, two structures: 0", {"two structures": 0}),  # a later part overrides
])
def test_cvs_parts(text, expected):
    assert cvs.parse_components(text).value == expected


# --- STG fallback boxes ------------------------------------------------------------------------------
def _stg_ref(bbox):
    return Reference("stg", "CoPESD", "", [{"bbox_dict": bbox}])


def test_stg_fallback_box_that_is_not_an_integer_is_skipped_and_later_boxes_move_up():
    text = f"[[1, 2, 3, 4]] [[{BIG}, 0, 1, 1]] [[1,,2,3]] [[5, 6, 7, 8]]"
    assert stg.parse_boxes(text).value.fallback == ([1, 2, 3, 4], [5, 6, 7, 8])
    # [5, 6, 7, 8] lands on the second GT key: both boxes exact -> mIoU 1
    gt = {"1.0": [1, 2, 3, 4], "2.0": [5, 6, 7, 8]}
    assert stg.evaluate(stg.parse_boxes(text), _stg_ref(gt)).scores["miou"] == 1.0


# --- numbers of any length: "not predicted", never an exception --------------------------------------
def test_long_numbers_are_not_predicted():
    assert not cvs.parse_components(f"Two structures: {BIG}").ok
    assert cvs.parse_components(f"Two structures: {BIG}, Cystic plate: 1").value == {"cystic plate": 1}
    assert sa.parse_aspects(f"Respect for tissue: {BIG}/5, Time and motion: 3/5").value == {"Time and motion": 3}
    # H:M:S with a long hour is dropped; "00 to 00" inside it is still a step-2(a) span, as in the public scorer
    assert tag.parse_spans(f"{BIG}:00:00 to 00:00:10").value == [(0.0, 0.0)]
    assert tag.parse_spans(f"{BIG}-10").value == [(math.inf, 10.0)]


# --- deviations ---------------------------------------------------------------------------------------
def test_deviation_cvs_and_sa_scores_too_large_for_a_float():
    huge = str(10**400)  # int() accepts it, float() overflows (the public scorer crashes averaging errors)
    assert not cvs.parse_components(f"Cystic plate: {huge}").ok
    assert sa.parse_aspects(f"Respect for tissue: {huge}/5, Time and motion: 2/5").value == {"Time and motion": 2}
    assert cvs.parse_components(f"Cystic plate: {10**300}").value == {"cystic plate": 10**300}  # fits: compared


@pytest.mark.parametrize("box", ["nan, 0, 10, 10", "0, 0, inf, 10", "inf, 0, inf, 10", "-inf, 0, 10, 10"])
def test_deviation_stg_nan_or_infinite_coordinate_scores_zero(box):
    gt = {"1.0": [0, 0, 10, 10], "2.0": [0, 0, 10, 10]}
    text = f"1.0 seconds: [{box}] 2.0 seconds: [0, 0, 10, 10]"
    assert stg.evaluate(stg.parse_boxes(text), _stg_ref(gt)).scores["miou"] == 0.5  # (0 + 1) / 2


def test_deviation_stg_integers_beyond_64_bits_are_exact():
    big = 10**30
    result = stg.evaluate(stg.parse_boxes(f"[[0, 0, {big}, {big}]]"), _stg_ref({"1.0": [0, 0, 1e30, 1e30]}))
    assert result.scores["miou"] == pytest.approx(1.0)
    assert stg.box_iou([0, 0, 10**400, 1], [0.0, 0.0, 10.0, 10.0]) == 0.0  # 10 / ~1e400: exact, rounds to 0


def test_deviation_dvc_events_too_large_for_a_float_or_int64_frames_are_dropped():
    assert events(f"0-{BIG} seconds: a\n1-2 seconds: b") == [(1, 2, "b")]
    ref = Reference("dense_captioning_gpt", "AVOS", "", [[{"start": 0, "end": 10, "caption": "c"}]], 1.0)
    huge_frames = parse_segments("0-99999999999999999999 seconds: a")  # 1e20 frames > 2**63 - 1
    assert huge_frames.ok and not dvc.evaluate(huge_frames, ref).counted
    mixed = parse_segments("0-99999999999999999999 seconds: a\n20-30 seconds: b")
    # the pieces after splitting: (0, 20), (20, 30), (30, 1e20); the last one is dropped
    assert dvc.evaluate(mixed, ref).scores["f1"] == pytest.approx(2 * (1 / 6) * (1 / 3) / (1 / 6 + 1 / 3))


def test_deviation_tag_hms_overflowing_a_float_is_dropped():
    huge = str(10**400)
    # the H:M:S span (3600 * 10**400 s) is dropped; "00 to 1" inside it is a step-2(a) span
    assert tag.parse_spans(f"{huge}:00:00 to 1:00:00").value == [(0.0, 1.0)]
    assert tag.parse_spans(f"{huge}:00:00 to 0:00:09").value == [(0.0, 0.0)]
