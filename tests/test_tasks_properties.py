"""Property tests: parsers never raise on any text and per-sample scores / rewards stay in [0, 1]."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_fns.reference import Reference
from reward_fns.registry import ScoredCaption, all_tasks
from reward_fns.tasks import cvs, dvc, sa, stg, tag

NUM = st.one_of(st.integers(0, 500).map(str), st.floats(0, 500, allow_nan=False).map(lambda f: f"{f:.2f}"))
PIECES = st.sampled_from([
    " seconds: ", " second: ", "-", " - ", " to ", "s", ", ", "\n", "[", "]", "[[", "]]", ": ", "/5", ":",
    "Two structures", "Cystic plate", "hepatocystic triangle", "Respect for tissue", "Time Range:",
    "**Description:**", "from ", "00:01:02", " – ",
])
# numbers of any length (int() refuses > 4,300 digits), NaN/inf spellings, unicode digits, exponents
LONG_NUM = st.integers(4000, 6000).map(lambda n: "9" * n)
ODD_NUM = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "1e-400", "1_000", "٣", "١٢", "１２",
                           "𝟙𝟚", "0.", "11.", str(2**64), str(10**400), "-0", "\ud800", "\x00"])
UNICODE_DIGITS = st.text(st.characters(categories=["Nd"]), min_size=1, max_size=8)
ANSWERS = st.one_of(
    st.text(),
    st.lists(st.one_of(NUM, PIECES, ODD_NUM, UNICODE_DIGITS, st.text(max_size=3)), max_size=30).map("".join),
    st.lists(st.one_of(PIECES, LONG_NUM, ODD_NUM), min_size=1, max_size=8).map("".join),
)

REFS = {
    "TAG": Reference("tal", "AVOS", "", [{"action": "a", "spans": [{"start": 3, "end": 9}, {"start": 20, "end": 30}]}]),
    "STG": Reference("stg", "CoPESD", "", [{"bbox_dict": {"1.0": [0, 0, 10, 10], "2.0": [5, 5, 20, 20]}}]),
    "DVC": Reference("dense_captioning_gpt", "AVOS", "", [[{"start": 0, "end": 10, "caption": "a"},
                                                           {"start": 10, "end": 25, "caption": "b"}]], 2.0),
    "CVS": Reference("cvs_assessment", "Cholec80-CVS", "", [{"cvs_scores": {
        "two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}}]),
    "SA": Reference("skill_assessment", "JIGSAWS", "", [{"skill_level": "E", "skill_scores": {
        "Respect for tissue": 2, "Time and motion": 3}}]),
}
MODULES = {"TAG": tag, "STG": stg, "DVC": dvc, "CVS": cvs, "SA": sa}


def half_scored(module, parsed, name) -> list[ScoredCaption]:
    return [ScoredCaption(p, 0.5) for p in module.TASK.caption_pairs(parsed, REFS[name])]


def in_unit(x: float) -> bool:
    return not math.isnan(x) and 0.0 <= x <= 1.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWERS)
def test_every_parser_never_raises(text):
    for task in all_tasks().values():
        parsed = task.parse(text)
        assert parsed.ok or parsed.reason


@settings(max_examples=300, deadline=None)
@given(ANSWERS, st.booleans())
def test_rule_scores_and_rewards_stay_in_unit_interval(text, strict):
    for name, module in MODULES.items():
        parsed = module.TASK.parse(text)
        result = module.evaluate(parsed, REFS[name], strict)
        assert all(in_unit(v) for v in result.scores.values()), (name, result)
        assert in_unit(module.reward(parsed, REFS[name], half_scored(module, parsed, name))), name


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.binary(), st.text()))
def test_parsers_accept_non_string_output(value):
    for task in all_tasks().values():
        task.parse(value)


def test_overflowing_numbers_score_zero_instead_of_crashing():
    big = "9" * 400  # float() gives inf
    answers = {"TAG": f"{big}-{big}, 1-{big}", "STG": f"1.0 seconds: [{big}, 0, {big}, 5]",
               "DVC": f"0-{big} seconds: a\n{big}-{big} seconds: b"}
    for name, text in answers.items():
        module = MODULES[name]
        parsed = module.TASK.parse(text)
        assert all(in_unit(v) for v in module.evaluate(parsed, REFS[name]).scores.values())
        assert in_unit(module.reward(parsed, REFS[name], half_scored(module, parsed, name)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(NUM, PIECES, ODD_NUM), min_size=1, max_size=40), st.integers(0, 2**32))
def test_100_kb_answers_parse_and_score(pieces, seed):
    import random

    rng = random.Random(seed)
    text = "".join(rng.choice(pieces) for _ in range(60_000))[:100_000]
    for name, module in MODULES.items():
        parsed = module.TASK.parse(text)
        assert parsed.ok or parsed.reason
        assert all(in_unit(v) for v in module.evaluate(parsed, REFS[name], False).scores.values()), name
