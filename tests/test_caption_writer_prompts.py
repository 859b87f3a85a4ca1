"""Caption stage: expert-guided prompts built from the facts, glossary and judged dimensions."""

from __future__ import annotations

from pathlib import Path

from data_preprocess.caption_writer.facts import parse_item
from data_preprocess.caption_writer.frames import KeyframeLoader
from data_preprocess.caption_writer.glossary import GLOSSARIES, glossary_for
from data_preprocess.caption_writer.prompts import (
    DIMENSIONS,
    PROMPT_VERSION,
    facts_block,
    generator_messages,
    revision_messages,
    validator_messages,
)
from testbed.toy_caption_facts import mixed_records

SOURCES = ("AVOS", "CholecT50", "CholecTrack20", "Cholec80-CVS", "CoPESD", "EgoSurgery", "JIGSAWS", "NurViD")


def test_every_source_has_a_glossary() -> None:
    assert set(SOURCES) <= set(GLOSSARIES)
    assert glossary_for("CholecT50").readable("carlot-triangle-dissection") == "Calot's triangle dissection"
    assert glossary_for("Unknown").readable("some_label-x") == "some label x"


def test_writer_prompt_carries_facts_glossary_and_dimensions(tmp_path: Path) -> None:
    item = parse_item(mixed_records(tmp_path)[0], 0)
    system, user = generator_messages(item)
    assert "laparoscopic hepatobiliary surgeon" in system["content"]
    assert all(d in system["content"] for d in DIMENSIONS)
    assert "State only what the facts support" in system["content"]
    text = user["content"]
    assert "(instrument, verb, target) triplets: (grasper, retract, gallbladder), (hook, dissect, cystic duct)" in text
    for fact in ("Calot's triangle dissection", "0.0-3.0 s", "grasper, hook", "cystic duct", "clipping and cutting",
                 "laparoscopic cholecystectomy", "exactly 2 caption(s)"):
        assert fact in text, fact
    assert "clipper: clip applier" in text and "irrigator" not in text  # only the relevant glossary terms
    assert "calot: Calot's (hepatocystic) triangle" in text  # matched through the readable label


def test_reviewer_sees_same_facts_and_the_captions(tmp_path: Path) -> None:
    item = parse_item(mixed_records(tmp_path)[5], 5)
    system, user = validator_messages(item, ["The grasper retracts the gallbladder."])
    assert '"accept": true|false' in system["content"] and "reviewing captions" in system["content"]
    assert facts_block(item) in user["content"]
    assert "Boxed object: grasper, box [10, 8, 40, 30]" in user["content"]
    assert "1. The grasper retracts the gallbladder." in user["content"]


def test_revision_quotes_the_rejected_reply_and_problems(tmp_path: Path) -> None:
    item = parse_item(mixed_records(tmp_path)[3], 3)
    first = generator_messages(item)
    again = revision_messages(first, '{"captions": ["x"]}', ["mentions a clip that is not in the facts"])
    assert again[:2] == first and again[2] == {"role": "assistant", "content": '{"captions": ["x"]}'}
    assert "mentions a clip that is not in the facts" in again[3]["content"]
    assert PROMPT_VERSION.startswith("captions-v")


def test_keyframes_sent_as_images(tmp_path: Path) -> None:
    records = mixed_records(tmp_path)
    rc = parse_item(records[5], 5)
    urls = KeyframeLoader(tmp_path)(rc)
    assert 1 < len(urls) <= 4 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    _, user = generator_messages(rc, urls)
    parts = user["content"]
    assert parts[0]["type"] == "text" and [p["type"] for p in parts[1:]] == ["image_url"] * len(urls)
