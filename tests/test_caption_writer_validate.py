"""Caption stage: defensive parsing of writer and reviewer replies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess.caption_writer.validate import parse_captions, parse_verdict


@pytest.mark.parametrize(("reply", "accept", "problems"), [
    ('{"accept": true, "problems": []}', True, ()),
    ('{"accept": false, "problems": ["invents a clip", "wrong phase"]}', False, ("invents a clip", "wrong phase")),
    ('```json\n{"accept": false, "problems": "names scissors"}\n```', False, ("names scissors",)),
    ('```json\n{"Accept": "yes", "Problems": []}\n```', True, ()),
    ('Here is my review: {"accept": false, "problems": ["wrong"]} Thanks.', False, ("wrong",)),
    ('{"accept": false}', False, ("rejected without a stated problem",)),
    ('{"accept": "false", "problems": [null, "", "too vague\\nand long"]}', False, ("too vague and long",)),
    ('"accept": false, "problems": ["broken json', False, ("rejected without a stated problem",)),
    ("I cannot say accept: yes... reject. accept: false", False, ("rejected without a stated problem",)),
    ('{"accept": true, "problems": ["ignored when accepting"]}', True, ()),
])
def test_verdicts_read_defensively(reply: str, accept: bool, problems: tuple[str, ...]) -> None:
    verdict = parse_verdict(reply)
    assert verdict.ok and verdict.accept is accept and verdict.problems == problems


@pytest.mark.parametrize("reply", ["", "   ", None, 42, "Looks fine to me.", '{"accept": "maybe"}', "[true]",
                                   '{"verdict": "accept"}',
                                   # acceptance only from a well-formed reply (issue 21)
                                   "I cannot say accept: yes... reject.", "accepted = true", '"accept": true',
                                   'Here is my review: {"Accept": "yes", "Problems": []} Thanks.',
                                   '{"accept": true} but the caption invents a clip',
                                   '{"accept": true, "accept": false}', '{"accept": true, "Accept": true}',
                                   '{"accept": 1}', '```json\n{"accept": true}\n``` wait, no', "x" * 200_000])
def test_unreadable_verdicts_say_why(reply: object) -> None:
    verdict = parse_verdict(reply)
    assert not verdict.ok and verdict.accept is None and verdict.reason


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*'{}":, acetrufalsyno\n`', '"accept"', "true", "yes", "```json", "accept"]),
                max_size=40).map("".join))
def test_acceptance_needs_exactly_one_well_formed_object(text: str) -> None:
    verdict = parse_verdict(text)
    if verdict.accept:
        body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
        assert isinstance(json.loads(body), dict)


@pytest.mark.parametrize("reply", ['{"accept": true, "accepted": false}', 'accept: true, accept: false',
                                   '{"accept": true}\n{"accept": false}'])
def test_contradictory_replies_never_accept(reply: str) -> None:
    assert parse_verdict(reply).accept is not True


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
    ('{"captions": ["One.", "  "]}', 2, "caption 2 is empty"),
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


_VISIBLE = st.characters(whitelist_categories=("L", "P", "Zs", "Sm", "So"), blacklist_characters="0123456789")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=_VISIBLE, max_size=400).filter(lambda t: any(c.isalnum() for c in t)),
                min_size=2, max_size=5))
def test_written_captions_round_trip(texts: list[str]) -> None:
    parsed = parse_captions(json.dumps({"captions": texts}), len(texts))
    assert parsed.texts == tuple(" ".join(t.split()) for t in texts)


@pytest.mark.parametrize(("reply", "why"), [
    ('{"captions": ["\u200b\u200b\u200c"]}', "caption 1 is empty"),
    ('{"captions": ["\u200b . \u2060 , \u00a0"]}', "caption 1 has no visible text"),
    ('{"captions": ["\u202e\u202d"]}', "caption 1 is empty"),
    (json.dumps({"captions": ["word " * 400_000]}), "characters long (limit 100000)"),
    (json.dumps({"captions": ["The grasper retracts. " * 200]}), "caption 1 is 4399 characters long (limit 3000)"),
    ('{"captions": ["Cutting, then 1\u200b2.0-15.0 sec\u200bonds: tying."]}', "time header"),
    ('{"captions": ["Cutting, then \uff11\uff12-\uff11\uff15 seconds: tying."]}', "time header"),
])
def test_invisible_or_oversized_captions_are_rejected_with_a_reason(reply: str, why: str) -> None:
    parsed = parse_captions(reply, 1)
    assert not parsed.ok and why in parsed.reason, parsed.reason


def test_zero_width_characters_are_removed_from_kept_captions() -> None:
    parsed = parse_captions('{"captions": ["The gras\u200bper re\u00adtracts\u2060 the fundus."]}', 1)
    assert parsed.texts == ("The grasper retracts the fundus.",)


@pytest.mark.parametrize("reply", [
    '{"captions": ["The surgeon dissects Calot\'s triangle.", "Clips are applied.", "The duct is divided."]}',
    '```json\n{"captions": ["The surgeon dissects Calot\'s triangle.", "Clips are applied.", '
    '"The duct is divided."]}\n```',
])
def test_one_caption_task_reads_a_list_of_sentences_as_one_paragraph(reply: str) -> None:
    parsed = parse_captions(reply, 1)
    assert parsed.texts == ("The surgeon dissects Calot's triangle. Clips are applied. The duct is divided.",)
    assert not parse_captions(reply, 2).ok  # a DVC item of two segments still needs exactly two


def test_writer_schema_fixes_the_count() -> None:
    from data_preprocess.caption_writer.prompts import generator_schema

    for n in (1, 4):
        schema = generator_schema(n)["json_schema"]["schema"]["properties"]["captions"]
        assert schema["minItems"] == schema["maxItems"] == n and schema["items"]["type"] == "string"
