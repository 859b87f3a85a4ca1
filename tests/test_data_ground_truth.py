"""The ground-truth JSON string of a row, and the frame-path rule (relative, inside the data root)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess.rows import ground_truth_json
from data_preprocess.schema import relative_path_problem
from reward_fns.reference import Reference

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


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


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(["a", "..", ".", "b.jpg", "", "..x", "x.."]), min_size=1, max_size=6),
       lead=st.sampled_from(["", "/", "./"]))
def test_frame_paths_must_stay_inside_the_data_root(parts: list[str], lead: str) -> None:
    path = lead + "/".join(parts)
    root = "/data/root"
    resolved = os.path.normpath(os.path.join(root, path))
    inside = resolved == root or resolved.startswith(root + "/")
    assert (relative_path_problem(path) is None) == (inside and path != "" and not path.startswith("/"))
