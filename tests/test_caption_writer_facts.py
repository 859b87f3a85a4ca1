"""Caption stage: reading and checking facts records, and filling finished records."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess.caption_writer.facts import FactsError, load_items, parse_item
from data_preprocess.caption_writer.records import dvc_answer, finished_record
from reward_fns.tasks.dvc_parse import parse_segments
from testbed.toy_caption_facts import facts_record, mixed_records, write_facts


@pytest.fixture()
def records(tmp_path: Path) -> list[dict]:
    return mixed_records(tmp_path)


def test_mixed_records_load_with_their_facts(tmp_path: Path, records: list[dict]) -> None:
    items = load_items(write_facts(tmp_path, records))
    assert [(i.facts.task, i.facts.source) for i in items] == [
        ("dvc", "CholecT50"), ("dvc", "NurViD"), ("dvc", "AVOS"), ("vs", "CoPESD"), ("vs", "EgoSurgery"),
        ("rc", "CholecTrack20"), ("rc", "CoPESD")]
    assert items[0].facts.segments[0].details["instruments"] == ["grasper", "hook"]
    assert items[5].facts.region is not None and items[5].facts.region.bbox == (10.0, 8.0, 40.0, 30.0)
    assert items[0].question.startswith("Describe every event")
    assert len({i.digest for i in items}) == len(items)


def _break(record: dict, path: str, value: object) -> dict:
    broken = copy.deepcopy(record)
    target = broken
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return broken


@pytest.mark.parametrize(("position", "path", "value", "field"), [
    (0, "caption_facts", KeyError, "caption_facts"),
    (0, "caption_facts.task", "tal", "caption_facts.task"),
    (0, "qa_type", "dense_captioning_gpt", "qa_type"),
    (0, "data_source", "AVOS", "data_source"),
    (0, "caption_facts.segments", [], "caption_facts.segments"),
    (0, "caption_facts.clip", {"start": 5.0, "end": 1.0, "fps": 1.0}, "caption_facts.clip"),
    (0, "caption_facts.clip", {"start": 0.0, "end": 4.0, "fps": 1.0}, "caption_facts.segments[1]"),
    (3, "caption_facts.source", "", "caption_facts.source"),
    (5, "caption_facts.region", KeyError, "caption_facts.region"),
    (5, "caption_facts.region.bbox", [1, 2, 3], "caption_facts.region.bbox"),
    (0, "conversations", [], "conversations"),
    (0, "struc_info", [{"action": "x", "spans": [{"start": 99.0, "end": 100.0, "caption": ""}]}], "struc_info"),
])
def test_bad_input_names_file_record_and_field(tmp_path: Path, records: list[dict], position: int, path: str,
                                               value: object, field: str) -> None:
    records[position] = _break(records[position], path, value)
    facts = write_facts(tmp_path, records)
    with pytest.raises(FactsError) as err:
        load_items(facts)
    assert f"{facts}: record {position}: field '{field}'" in str(err.value)


def test_segment_details_must_be_string_lists(records: list[dict]) -> None:
    records[0]["caption_facts"]["segments"][1]["details"]["instruments"] = "clipper"
    with pytest.raises(FactsError, match=r"record 0: field 'caption_facts.segments\[1\].details.instruments'"):
        parse_item(records[0], 0, "f.json")


def test_not_a_list_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(FactsError, match="expected a JSON list"):
        load_items(path)


def test_dvc_record_filled_in_spans_layout(records: list[dict]) -> None:
    item = parse_item(records[0], 0)
    done = finished_record(item, "gpt", ["The grasper retracts the gallbladder.", "Clips go on the artery."])
    assert done["qa_type"] == "dense_captioning_gpt" and "caption_facts" not in done
    assert done["conversations"][1]["value"] == (
        "0.0-3.0 seconds: carlot-triangle-dissection: The grasper retracts the gallbladder.\n"
        "3.0-7.0 seconds: clipping-and-cutting: Clips go on the artery.")
    spans = [span for action in done["struc_info"] for span in action["spans"]]
    assert [s["caption"] for s in spans] == ["carlot-triangle-dissection: The grasper retracts the gallbladder.",
                                             "clipping-and-cutting: Clips go on the artery."]
    parsed = parse_segments(done["conversations"][1]["value"])
    assert [(s.start, s.end, s.caption) for s in parsed.value] == [(s["start"], s["end"], s["caption"]) for s in spans]
    assert records[0]["conversations"][1]["value"] == ""  # the input is not modified


def test_nurvid_dc_segments_and_rc_filled(records: list[dict]) -> None:
    nurvid = finished_record(parse_item(records[1], 1), "gemini", ["Hands are washed.", "The site is swabbed."])
    assert nurvid["qa_type"] == "dense_captioning_gemini"
    assert [s["caption"] for s in nurvid["struc_info"][0]["dc_segments"]] == [
        "Hand hygiene: Hands are washed.", "Disinfect the injection site: The site is swabbed."]
    rc = finished_record(parse_item(records[5], 5), "gpt", ["The grasper holds the gallbladder."])
    assert rc["qa_type"] == "region_caption_gpt"
    assert rc["conversations"][1]["value"] == "The grasper holds the gallbladder."
    assert rc["RC_info"]["start_frame"] == rc["video"][0]


def test_dvc_answer_has_one_line_per_segment(records: list[dict]) -> None:
    item = parse_item(records[2], 2)
    assert dvc_answer(item, ["a", "b"]).splitlines() == ["0.0-5.0 seconds: cutting: a", "5.0-7.0 seconds: suturing: b"]
    with pytest.raises(ValueError):
        finished_record(item, "claude", ["a", "b"])


_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz -", min_size=1, max_size=20).filter(lambda t: t.strip(" -"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), _WORDS, _WORDS), min_size=1, max_size=6))
def test_filled_dvc_answer_parses_back_to_its_struc_info(tmp_path_factory: pytest.TempPathFactory,
                                                         events: list[tuple[int, str, str]]) -> None:
    """Whatever the segments and captions, the DVC parser reads the answer back as the struc_info events."""
    from data_preprocess.caption_writer.validate import parse_captions

    t, segments, captions = 0.0, [], []
    for length, label, caption in events:
        segments.append({"start": t, "end": t + length / 2, "label": label.strip(), "kind": "action"})
        captions.append(caption)
        t += length / 2
    root = tmp_path_factory.mktemp("prop")
    record = facts_record(root, "dvc", "AVOS", "v", segments, n_frames=int(t) + 2)
    texts = parse_captions(json.dumps({"captions": captions}), len(captions)).texts
    assert texts is not None
    done = finished_record(parse_item(record, 0), "gpt", texts)
    spans = sorted((s["start"], s["end"], s["caption"]) for a in done["struc_info"] for s in a["spans"])
    parsed = parse_segments(done["conversations"][1]["value"])
    assert sorted((s.start, s.end, s.caption) for s in parsed.value) == spans
