"""The registry as the one source of truth: task names, sources, benchmark columns and paper rows."""

import pytest

from evaluation.plot import plot_comparison
from evaluation.report import markdown_table, paper_rows
from reward_fns.normalize import TASK_NAMES as NORMALIZE_TASK_NAMES
from reward_fns.reference import Reference
from reward_fns.registry import (
    PAPER_MODELS,
    SOURCES,
    TASK_NAMES,
    Column,
    Task,
    all_columns,
    all_tasks,
    caption_task_names,
    get_task,
    register_task,
)


def test_task_names_and_columns_in_paper_order():
    assert TASK_NAMES == ("CVS", "NAP", "SA", "STG", "TAG", "DVC", "VS", "RC") and NORMALIZE_TASK_NAMES is TASK_NAMES
    assert list(all_tasks()) == list(TASK_NAMES) and len(SOURCES) == 8
    assert [c.key for c in all_columns()] == ["cvs_acc", "nap_acc", "sa_acc", "stg_miou", "tag_miou_03",
                                              "tag_miou_05", "dvc_llm", "dvc_f1", "vs_llm", "rc_llm"]
    assert [c.similarity_key for c in all_columns() if c.judged] == ["dvc_sim", "vs_sim", "rc_sim"]


def test_paper_rows_come_from_the_column_declarations():
    rows = paper_rows()
    assert list(rows) == list(PAPER_MODELS)
    assert list(rows["paper SFT"].values()) == [0.894, 0.442, 0.218, 0.177, 0.142, 0.091, 3.665, 0.165, 3.596, 2.757]
    assert list(rows["paper MedGRPO"].values()) == [0.914, 0.427, 0.244, 0.202, 0.216, 0.156, 3.797, 0.210, 4.184,
                                                    3.442]
    table = markdown_table(rows)
    assert "| model | CVS acc | NAP acc | SA acc | STG mIoU | TAG mIoU@0.3 | TAG mIoU@0.5 | DVC llm |" in table
    assert "| paper SFT | 0.894 | 0.442 |" in table


def test_plot_reads_the_same_columns(tmp_path):
    out = tmp_path / "plot.png"
    plot_comparison({"run": {"cvs_acc": 0.5, "dvc_llm": 3.0}}, out)
    assert out.stat().st_size > 1000


def test_unknown_or_repeated_task_is_refused():
    dummy = Task("XYZ", "xyz", parse=lambda t: None, evaluate=lambda p, r, s: None, reward=lambda p, r, c: 0.0)
    with pytest.raises(ValueError, match="not in TASK_NAMES"):
        register_task(dummy)
    with pytest.raises(ValueError, match="registered twice"):
        register_task(get_task("CVS"))
    assert Column("x_llm", "X", "mean_caption", "pooled", (1.0, 2.0), judged=True).similarity_key == "x_sim"


def test_qa_types_come_from_the_stem_and_the_caption_variants():
    assert get_task("TAG").qa_types == ("tal",) and not get_task("TAG").captioned
    assert get_task("DVC").qa_types == ("dense_captioning_gpt", "dense_captioning_gemini")
    assert caption_task_names() == ("DVC", "VS", "RC")
    # every judged benchmark column belongs to a captioned task, and every captioned task has one
    assert {t.name for t in all_tasks().values() if any(c.judged for c in t.columns)} == set(caption_task_names())


@pytest.mark.parametrize("task, struc, reason", [
    ("STG", [{"bbox_dict": {}}], "empty bbox_dict"),
    ("TAG", [{"spans": []}], "no spans"),
    ("DVC", [[{"start": 0, "end": 1}]], "no event with start, end and caption"),
    ("CVS", [{"cvs_scores": {}}], "no CVS component score"),
    ("SA", [{}], "no skill level"),
])
def test_ground_truth_that_cannot_give_a_reward_says_why(task, struc, reason):
    ref = Reference("x", "AVOS", "", struc)
    assert reason in get_task(task).reward_rejection(ref)


def test_tasks_without_a_check_score_their_reference_answer():
    vs = get_task("VS")
    assert vs.reward_rejection(Reference("video_summary_gpt", "AVOS", "The surgeon dissects.")) is None
    assert "earns no VS reward" in vs.reward_rejection(Reference("video_summary_gpt", "AVOS", "  "))
