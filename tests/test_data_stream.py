"""Streaming pieces: batch cuts of the JSON list, raw frame lists to Arrow, the ground-truth JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess import frame_arrays
from data_preprocess.ground_truth import ground_truth_json
from data_preprocess.jsonstream import JSONStreamError, RecordStream, read_span
from reward_fns.reference import Reference

ANY = msgspec.json.Decoder(list[dict])

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
records = st.lists(st.fixed_dictionaries({
    "conversations": st.lists(st.fixed_dictionaries({"from": st.sampled_from(["human", "gpt"]), "value": texts}),
                              max_size=2),
    "video": st.lists(texts, min_size=1, max_size=5),
    "struc_info": st.lists(st.dictionaries(texts, st.integers() | texts, max_size=2), max_size=2),
}), max_size=40)


def _write(tmp_path, recs: list, style: str) -> str:
    path = tmp_path / f"{style}.json"
    text = {"indent": lambda r: json.dumps(r, indent=2), "compact": lambda r: json.dumps(r, separators=(",", ":")),
            "spaces": json.dumps, "ascii": lambda r: json.dumps(r, ensure_ascii=True, indent=1)}[style](recs)
    path.write_text(text, encoding="utf-8")
    return str(path)


@settings(max_examples=40, deadline=None)
@given(recs=records, style=st.sampled_from(["indent", "compact", "spaces", "ascii"]), block=st.integers(64, 600))
def test_scan_and_fast_spans_give_back_every_record(tmp_path_factory, recs, style, block) -> None:
    path = _write(tmp_path_factory.mktemp("s"), recs, style)
    stream = RecordStream(path, block_bytes=block)
    assert [r for batch in stream.scan(ANY) for r in batch] == recs
    stream = RecordStream(path, block_bytes=block)
    with open(path, "rb") as fh:
        got = [r for span in stream.fast_spans() for r in ANY.decode(read_span(fh, span))]
    assert got == recs
    assert stream.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_nested_separator_is_caught_by_the_decode(tmp_path) -> None:
    """The separator cannot occur inside a string (its quote would be escaped), but a nested object
    with the same first key can fool `fast_spans`; such a span does not decode."""
    nested = [{"x": 1}, {"conversations": 2}]
    recs = [{"conversations": [], "video": ["a"], "struc_info": nested} for _ in range(50)]
    path = tmp_path / "trap.json"
    path.write_text(json.dumps(recs, separators=(",", ":")))
    stream = RecordStream(str(path), block_bytes=100)
    with open(path, "rb") as fh:
        outcomes = []
        for span in stream.fast_spans():
            try:
                outcomes.append(len(ANY.decode(read_span(fh, span))))
            except msgspec.DecodeError:
                outcomes.append(None)
    assert None in outcomes  # the caller then falls back to `scan`
    assert [r for batch in RecordStream(str(path), block_bytes=100).scan(ANY) for r in batch] == recs


@pytest.mark.parametrize(("text", "match"), [("", "empty file"), ("{}", "expected a JSON list"),
                                              ('[{"a": 1}, {"a": 2}', "not closed"), ('[{"a": }]', "invalid JSON")])
def test_broken_files_name_the_problem(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(JSONStreamError, match=match):
        if text:
            list(RecordStream(str(path)).scan(ANY))
        else:
            list(RecordStream(str(path)).fast_spans())


@settings(max_examples=100, deadline=None)
@given(lists=st.lists(st.lists(texts.filter(bool), min_size=1, max_size=6), min_size=1, max_size=8),
       indent=st.sampled_from([None, 1]))
def test_frames_from_raw_equal_the_decoded_lists(lists, indent) -> None:
    raws = [json.dumps(frames, indent=indent, ensure_ascii=False).encode() for frames in lists]
    array = frame_arrays.from_raw(raws)
    if array is None:  # escapes: the caller decodes record by record instead
        assert any(b"\\" in raw for raw in raws)
        return
    assert array.to_pylist() == lists


@settings(max_examples=100, deadline=None)
@given(lists=st.lists(st.lists(st.text(alphabet="abc/.é", min_size=1, max_size=5), min_size=1, max_size=6),
                      min_size=1, max_size=8), data=st.data())
def test_frames_from_raw_can_select_frames(lists, data) -> None:
    picks = {row: sorted(data.draw(st.sets(st.integers(0, len(lists[row]) - 1), min_size=1)))
             for row in data.draw(st.sets(st.integers(0, len(lists) - 1)))}
    raws = [json.dumps(frames, ensure_ascii=False).encode() for frames in lists]
    seen = []
    array = frame_arrays.from_raw(raws, lambda counts: seen.append(counts.tolist()) or picks)
    assert seen == [[len(frames) for frames in lists]]
    assert array.to_pylist() == frame_arrays.select(frame_arrays.from_lists(lists), picks).to_pylist()


@pytest.mark.parametrize("raw", [b'["a", 1]', b"[]", b'[""]', b'[["a"]]', b'{"a": "b"}', b"null", b'["a\\"b"]'])
def test_frames_from_raw_refuses_anything_else(raw: bytes) -> None:
    assert frame_arrays.from_raw([b'["ok"]', raw]) is None


def test_select_replace_and_absolute() -> None:
    array = frame_arrays.from_lists([["a", "b", "c"], ["/abs/x"], ["d", "e"]])
    picked = frame_arrays.select(array, {0: [0, 2]})
    assert picked.to_pylist() == [["a", "c"], ["/abs/x"], ["d", "e"]]
    assert frame_arrays.replace(picked, {(2, 1): "/o/e.jpg"}).to_pylist() == [["a", "c"], ["/abs/x"], ["d", "/o/e.jpg"]]
    assert frame_arrays.absolute(picked.slice(1), "/root").to_pylist() == [["/abs/x"], ["/root/d", "/root/e"]]


floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e-5, 2.5e-7, 1e16, 1e22, 0.0001, -0.0])
json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | floats | texts,
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(texts, kids, max_size=3),
                           max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(struc=st.lists(json_values, max_size=3), answer=texts, fps=floats.filter(lambda x: x > 0),
       classes=st.none() | st.lists(texts, max_size=3).map(tuple))
def test_ground_truth_json_is_exactly_reference_to_json(struc, answer, fps, classes) -> None:
    ref = Reference("next_action", "EgoSurgery", answer, struc, fps, "<video>\nq", classes)
    text = ground_truth_json(ref)
    assert text == ref.to_json()
    assert Reference.from_json(text) == ref
