"""NAP class lists (fixed, NurViD per procedure, file-derived), aliases and MiniLM snapping."""

import asyncio

import pytest

from reward_fns.reference import Reference
from reward_fns.registry import Parsed
from reward_fns.similarity import SimilarityService
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


class CountingSimilarity:
    """A similarity service that always picks the first class and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def nearest(self, text: str, candidates) -> int:
        self.calls.append(text)
        return 0


def _resolved(answer: str, ref: Reference, similarity) -> Parsed:
    return asyncio.run(nap.snap(nap.parse_action(answer), ref, similarity))


def test_exact_membership_is_case_sensitive_and_decides_without_snapping():
    similarity = CountingSimilarity()
    assert nap.evaluate(_resolved(" tying ", _ref("AVOS", "tying"), similarity), _ref("AVOS", "tying")).checks == {
        "action": True}
    assert nap.evaluate(_resolved("cutting", _ref("AVOS", "tying"), similarity), _ref("AVOS", "tying")).checks == {
        "action": False}
    assert similarity.calls == []
    assert nap.reward(_resolved("Tying", _ref("AVOS", "tying"), similarity), _ref("AVOS", "tying")) == 0.0
    assert similarity.calls == ["Tying"]  # snapped to classes[0] = 'cutting'


def test_gt_off_the_list_needs_no_snapping():
    similarity = CountingSimilarity()
    parsed = _resolved("whatever", _ref("AVOS", "dissecting"), similarity)
    assert similarity.calls == [] and parsed.value.snapped is None


def test_unsnapped_off_list_answer_is_a_programming_error():
    with pytest.raises(RuntimeError, match="resolve"):
        nap.evaluate(nap.parse_action("Tying"), _ref("AVOS", "tying"))


def test_gt_off_the_list_is_left_out():
    result = nap.evaluate(nap.parse_action("cutting"), _ref("AVOS", "dissecting"))
    assert not result.counted and "not in the class list" in result.reason


@pytest.mark.parametrize("answer, expected", [("Tying", "tying"), ("the surgeon is tying a knot", "tying"),
                                              ("cut", "cutting")])
def test_minilm_snapping(embedder, answer, expected):
    parsed = _resolved(answer, _ref("AVOS", expected), SimilarityService(embedder))
    assert parsed.value.snapped == expected


def test_empty_answer_still_snaps_and_scores(embedder):
    ref = _ref("AVOS", "tying")
    result = nap.evaluate(_resolved("", ref, SimilarityService(embedder)), ref)
    assert result.counted and set(result.checks) == {"action"}
