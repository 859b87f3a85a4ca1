"""CVS and SA parsing quirks, leaderboard checks, strict mode and rewards."""

import pytest

from reward_fns.reference import Reference
from reward_fns.tasks import cvs, sa

CVS_GT = [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0,
                          "total": 3, "critical_view_achieved": False}}]


@pytest.mark.parametrize("text, expected", [
    ("Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0",
     {"two structures": 2, "cystic plate": 1, "hepatocystic triangle": 0}),
    ("CVS scores - Two structures: 2", {"two structures": 2}),
    ("Cystic plate : 1", {}),
    ("Two structure: 2", {}),
    ("Hepatocystic triangle: 1/2", {"hepatocystic triangle": 1}),
    ("Two structures: 2\nCystic plate: 1\nHepatocystic triangle: 0", {"two structures": 2}),
    ("Two structures: 2; Cystic plate: 1", {"two structures": 2}),
    ("Two structures: 1, two structures: 2", {"two structures": 2}),  # later part overrides
    ("cystic plate absent, hepatocystic triangle near cystic plate: 1", {"cystic plate": 1}),
    ("hepatocystic triangle and cystic plate, two structures and cystic plate: 2", {}),  # listed order
])
def test_cvs_parse(text, expected):
    assert (cvs.parse_components(text).value or {}) == expected


def test_cvs_checks_only_predicted_components_unless_strict():
    ref = Reference("cvs_assessment", "Cholec80-CVS", "", CVS_GT)
    parsed = cvs.parse_components("Two structures: 2, Hepatocystic triangle: 1")
    assert cvs.evaluate(parsed, ref).checks == {"two structures": True, "hepatocystic triangle": False}
    assert cvs.evaluate(parsed, ref, strict=True).checks == {
        "two structures": True, "cystic plate": False, "hepatocystic triangle": False}
    assert cvs.reward(parsed, ref) == pytest.approx(1 / 3)
    assert not cvs.evaluate(cvs.parse_components("no idea"), ref).counted


def test_cvs_gt_falls_back_to_reference_text():
    ref = Reference("cvs_assessment", "Cholec80-CVS", "Two structures: 1, Cystic plate: 1, Hepatocystic triangle: 2")
    assert cvs.gt_components(ref) == {"two structures": 1, "cystic plate": 1, "hepatocystic triangle": 2}


SA_SCORES = {"Respect for tissue": 2, "Suture/needle handling": 1, "Time and motion": 1,
             "Flow of operation": 2, "Overall performance": 1, "Quality of final product": 3}
SA_REF = Reference("skill_assessment", "JIGSAWS", "", [{"skill_level": "I", "skill_scores": SA_SCORES}])


@pytest.mark.parametrize("text, expected", [
    ("Respect for tissue: 2/5, Time and motion: 3/5", {"Respect for tissue": 2, "Time and motion": 3}),
    ("Scores: Respect for tissue: 2/5", {"Respect for tissue": 2}),
    ("1. Respect for tissue: 2/5", {"1. Respect for tissue": 2}),
    ("Respect for tissue: 2/5; Time and motion: 3/5", {"Respect for tissue": 2}),
    ("Suture/needle handling:4/5", {"Suture/needle handling": 4}),
])
def test_sa_parse(text, expected):
    assert sa.parse_aspects(text).value == expected


@pytest.mark.parametrize("text", ["Respect for tissue: 3 / 5", "Respect for tissue: 8/10", "Respect for tissue: 3"])
def test_sa_answers_without_digit_slash_five_are_skipped(text):
    parsed = sa.parse_aspects(text)
    assert not parsed.ok
    assert not sa.evaluate(parsed, SA_REF).counted
    assert sa.evaluate(parsed, SA_REF, strict=True).checks == dict.fromkeys(SA_SCORES, False)
    assert sa.reward(parsed, SA_REF) == 0.0


def test_sa_checks_exact_case_sensitive_aspects():
    parsed = sa.parse_aspects("respect for tissue: 2/5, Time and motion: 1/5, Flow of operation: 3/5")
    assert sa.evaluate(parsed, SA_REF).checks == {"Time and motion": True, "Flow of operation": False}
    assert sa.reward(parsed, SA_REF) == pytest.approx(1 / 6)


def test_sa_needs_a_gt_skill_level_or_reference_scores():
    no_level = Reference("skill_assessment", "JIGSAWS", "")
    assert not sa.evaluate(sa.parse_aspects("Time and motion: 1/5"), no_level).counted
    ref = Reference("skill_assessment", "JIGSAWS", "Time and motion: 1/5, Flow of operation: 2/5")
    assert sa.evaluate(sa.parse_aspects("Time and motion: 1/5"), ref).checks == {"Time and motion": True}
