"""Caption stage: defensive parsing of writer and reviewer replies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess.captions.validate import parse_captions, parse_verdict


@pytest.mark.parametrize(("reply", "accept", "problems"), [
    ('{"accept": true, "problems": []}', True, ()),
    ('{"accept": false, "problems": ["invents a clip", "wrong phase"]}', False, ("invents a clip", "wrong phase")),
    ('```json\n{"accept": false, "problems": "names scissors"}\n```', False, ("names scissors",)),
    ('Here is my review: {"Accept": "yes", "Problems": []} Thanks.', True, ()),
    ('{"accept": false}', False, ("rejected without a stated problem",)),
    ('{"accept": "false", "problems": [null, "", "too vague\\nand long"]}', False, ("too vague and long",)),
    ('"accept": false, "problems": ["broken json', False, ("rejected without a stated problem",)),
    ("accepted = true", True, ()),
    ('{"accept": true, "problems": ["ignored when accepting"]}', True, ()),
])
def test_verdicts_read_defensively(reply: str, accept: bool, problems: tuple[str, ...]) -> None:
    verdict = parse_verdict(reply)
    assert verdict.ok and verdict.accept is accept and verdict.problems == problems


@pytest.mark.parametrize("reply", ["", "   ", None, 42, "Looks fine to me.", '{"accept": "maybe"}', "[true]",
                                   '{"verdict": "accept"}'])
def test_unreadable_verdicts_say_why(reply: object) -> None:
    verdict = parse_verdict(reply)
    assert not verdict.ok and verdict.accept is None and verdict.reason


def test_problems_are_bounded() -> None:
    verdict = parse_verdict(json.dumps({"accept": False, "problems": ["x" * 1000] * 50}))
    assert len(verdict.problems) == 10 and all(len(p) <= 303 for p in verdict.problems)


@pytest.mark.parametrize(("reply", "n", "texts"), [
    ('{"captions": ["One.", "Two."]}', 2, ("One.", "Two.")),
    ('```json\n{"captions": ["A  line\\nbreak"]}\n```', 1, ("A line break",)),
    ('{"caption": "Single."}', 1, ("Single.",)),
    ("A plain paragraph about the clip.", 1, ("A plain paragraph about the clip.",)),
])
def test_captions_read(reply: str, n: int, texts: tuple[str, ...]) -> None:
    assert parse_captions(reply, n).texts == texts


@pytest.mark.parametrize(("reply", "n", "why"), [
    ('{"captions": ["One."]}', 2, "expected 2 caption(s), got 1"),
    ('{"captions": ["One.", "  "]}', 2, "a caption is empty"),
    ('{"captions": [1, 2]}', 2, "not a list of strings"),
    ("two lines of prose", 2, "not a JSON object"),
    ("", 1, "empty reply"),
    ('{"captions": ["Cutting, then 12.0-15.0 seconds: tying."]}', 1, "time header"),
    ("From 3 - 5 seconds: the knife cuts.", 1, "time header"),
])
def test_bad_captions_say_why(reply: str, n: int, why: str) -> None:
    parsed = parse_captions(reply, n)
    assert not parsed.ok and why in parsed.reason


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet='{}[]":,truefalsyn acepROBLMS\n`').map(str)))
def test_parsers_never_raise(text: str) -> None:
    verdict = parse_verdict(text)
    assert verdict.ok == (verdict.accept is not None)
    for n in (1, 3):
        parsed = parse_captions(text, n)
        assert parsed.ok == (parsed.texts is not None)
        if parsed.texts is not None:
            assert len(parsed.texts) == n and all(t and "\n" not in t for t in parsed.texts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="0123456789")).filter(str.strip),
                min_size=1, max_size=5))
def test_written_captions_round_trip(texts: list[str]) -> None:
    parsed = parse_captions(json.dumps({"captions": texts}), len(texts))
    assert parsed.texts == tuple(" ".join(t.split()) for t in texts)
