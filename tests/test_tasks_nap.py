"""NAP class lists (fixed, NurViD per procedure, file-derived), aliases and MiniLM snapping."""

import pytest

from reward_fns.reference import Reference
from reward_fns.tasks import nap


def test_fixed_lists_and_copesd_aliases():
    assert nap.resolve_nap_classes("AVOS", "") == ("cutting", "tying", "suturing")
    assert nap.canonical("CoPESD", " hold flap with forceps ") == "stabilize flap with forceps"
    assert nap.canonical("AVOS", "hold flap with forceps") == "hold flap with forceps"


def test_nurvid_first_procedure_in_file_order_wins():
    classes = nap.resolve_nap_classes("NurViD", "<video>\nIn this subcutaneous injection insulin video ...")
    assert "Aspirate medication" in classes  # 'Subcutaneous Injection' precedes '... Insulin'
    assert "Prepare medication solution" not in classes


def test_nurvid_without_procedure_uses_sorted_union():
    classes = nap.resolve_nap_classes("NurViD", "What happens next?")
    assert list(classes) == sorted(classes) and len(classes) == len(set(classes)) > 50


def test_other_sources_use_sorted_nonempty_gt_answers():
    assert nap.resolve_nap_classes("EgoSurgery", "", ["suturing", " incision", "", "suturing"]) == (
        "incision", "suturing")


def _ref(source, answer, question="", classes=None):
    return Reference("next_action", source, answer, [{"next_action": answer}], 1.0, question, classes)


def test_exact_membership_is_case_sensitive_and_decides_without_snapping():
    calls = []
    nap.set_snapper(lambda text, classes: calls.append(text) or classes[0])
    try:
        assert nap.evaluate(nap.parse_action(" tying "), _ref("AVOS", "tying")).checks == {"action": True}
        assert nap.evaluate(nap.parse_action("cutting"), _ref("AVOS", "tying")).checks == {"action": False}
        assert calls == []
        assert nap.reward(nap.parse_action("Tying"), _ref("AVOS", "tying")) == 0.0  # snapped to classes[0]
        assert calls == ["Tying"]
    finally:
        nap.set_snapper(None)


def test_gt_off_the_list_is_left_out():
    result = nap.evaluate(nap.parse_action("cutting"), _ref("AVOS", "dissecting"))
    assert not result.counted and "not in the class list" in result.reason


@pytest.mark.parametrize("answer, expected", [("Tying", "tying"), ("the surgeon is tying a knot", "tying"),
                                              ("cut", "cutting")])
def test_minilm_snapping(embedder, answer, expected):
    from reward_fns.nap_snap import BatchedSnapper

    snapper = BatchedSnapper(embedder)
    assert snapper(answer, ("cutting", "tying", "suturing")) == expected
    assert nap.default_snapper(answer, ("cutting", "tying", "suturing")) == expected


def test_empty_answer_still_snaps_and_scores(embedder):
    ref = _ref("AVOS", "tying")
    result = nap.evaluate(nap.parse_action(""), ref)
    assert result.counted and set(result.checks) == {"action"}
