"""Task generators on hand-built canonical videos: every expected record field checked by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from data_preprocess.builder.canonical import Box, FrameSource, Scores, Segment, Video
from data_preprocess.builder.config import TaskSettings, load_config
from data_preprocess.builder.generators import GENERATORS, Drop, Item
from data_preprocess.builder.questions import GenContext, QuestionBank

FOLDER = FrameSource("folder", "videos/V1", "{n:06d}.png", 1.0, 0, 1.0)


def video(source: str = "CholecT50", **kw) -> Video:
    segs = [Segment("preparation", 0, 20), Segment("carlot-triangle-dissection", 20, 45),
            Segment("preparation", 45, 50), Segment("clipping-and-cutting", 50, 60)]
    base = dict(source=source, video_id="V1", fps=25.0, duration=60.0, frames=FOLDER, width=100, height=50,
                segments=segs)
    return Video(**{**base, **kw})


@pytest.fixture(scope="module")
def ctx() -> GenContext:
    return GenContext("laparoscopic cholecystectomy", QuestionBank(load_config(), seed=0))


def run(task: str, v: Video, s: TaskSettings, ctx: GenContext) -> tuple[list[Item], list[Drop]]:
    out = list(GENERATORS[task](v, s, ctx))
    return [o for o in out if isinstance(o, Item)], [o for o in out if isinstance(o, Drop)]


def test_tag_one_record_per_label_with_clip_relative_spans(ctx: GenContext) -> None:
    items, drops = run("TAG", video(), TaskSettings(fps=1.0, clip_len=30, stride=30), ctx)
    got = [(i.start, i.end, i.struc_info[0]["action"], i.answer) for i in items]
    assert got == [(0.0, 30.0, "preparation", "0.0-20.0 seconds."),
                   (0.0, 30.0, "carlot-triangle-dissection", "20.0-30.0 seconds."),
                   (30.0, 60.0, "carlot-triangle-dissection", "0.0-15.0 seconds."),
                   (30.0, 60.0, "preparation", "15.0-20.0 seconds."),
                   (30.0, 60.0, "clipping-and-cutting", "20.0-30.0 seconds.")]
    assert items[0].qa_type == "tal" and "preparation" in items[0].question and not drops
    assert items[0].struc_info == [{"action": "preparation", "spans": [{"start": 0.0, "end": 20.0}]}]


def test_tag_merges_touching_spans_and_drops_empty_clips(ctx: GenContext) -> None:
    v = video(segments=[Segment("a", 0, 5), Segment("a", 5, 9), Segment("a", 12, 14)], duration=40)
    items, drops = run("TAG", v, TaskSettings(fps=1.0, clip_len=20, stride=20), ctx)
    assert [i.answer for i in items] == ["0.0-9.0, 12.0-14.0 seconds."]
    assert drops == [Drop("TAG", "no phase segment in the clip")]


def test_nap_clips_end_before_each_new_segment_within_the_horizon(ctx: GenContext) -> None:
    s = TaskSettings(fps=1.0, clip_len=10, stride=5, horizon=5)
    items, drops = run("NAP", video(), s, ctx)
    got = [(i.start, i.end, i.answer) for i in items]
    assert got == [(10.0, 20.0, "carlot-triangle-dissection"), (5.0, 15.0, "carlot-triangle-dissection"),
                   (35.0, 45.0, "preparation"), (30.0, 40.0, "preparation"),
                   (40.0, 50.0, "clipping-and-cutting"), (35.0, 45.0, "clipping-and-cutting")]
    assert items[0].struc_info == [{"next_action": "carlot-triangle-dissection"}]
    assert "carlot-triangle-dissection" in items[0].question  # the class list is offered
    assert [d.reason for d in drops] == ["clip would start before the video"] * 2


def test_nap_drops_labels_outside_the_fixed_class_list(ctx: GenContext) -> None:
    v = video(segments=[Segment("preparation", 0, 20), Segment("not-a-phase", 20, 40)])
    items, drops = run("NAP", v, TaskSettings(fps=1.0, clip_len=10, stride=5, horizon=0), ctx)
    assert items == [] and drops == [Drop("NAP", "clip would start before the video"),
                                     Drop("NAP", "next action not in the leaderboard class list")]


def test_nurvid_nap_question_names_the_procedure_so_the_class_list_resolves(ctx: GenContext) -> None:
    from reward_fns.tasks.nap import resolve_nap_classes

    v = video("NurViD", procedure="Bed Shampoo", segments=[Segment("Moisten hair", 0, 20, "action"),
                                                            Segment("Apply shampoo", 20, 40, "action")])
    items, _ = run("NAP", v, TaskSettings(fps=1.0, clip_len=10, stride=5, horizon=0, kind="action"), ctx)
    assert [i.answer for i in items] == ["Apply shampoo"]
    assert "Apply shampoo" in resolve_nap_classes("NurViD", items[0].question)


def test_stg_boxes_at_the_stride_in_pixels(ctx: GenContext) -> None:
    boxes = [Box(float(t), "grasper", "1", (10.4, 5.6, 40.2, 30.0)) for t in range(0, 6)]
    boxes.append(Box(2.0, "hook", "2", (1, 1, 200, 200)))  # a second track with one box: too few
    v = video(boxes=boxes)
    items, drops = run("STG", v, TaskSettings(fps=1.0, clip_len=4, stride=4, box_stride=2.0, min_boxes=2), ctx)
    assert len(items) == 1
    assert items[0].answer == "0.0 seconds: [10, 6, 40, 30] 2.0 seconds: [10, 6, 40, 30]"
    assert items[0].struc_info == [{"start": 0.0, "end": 2.0, "stride": 2.0, "object": "grasper",
                                    "bbox_dict": {"0.0": [10, 6, 40, 30], "2.0": [10, 6, 40, 30]}}]
    assert "grasper" in items[0].question
    assert drops == [Drop("STG", "track with fewer than 2 boxes in a row in the clip")] * 2  # hook; grasper 4-5 s


def test_stg_asks_for_a_stretch_of_a_longer_clip(ctx: GenContext) -> None:
    import re

    boxes = [Box(float(t), "grasper", "1", (10, 10, 40, 30)) for t in range(66, 79)]
    boxes += [Box(float(t), "grasper", "1", (10, 10, 40, 30)) for t in (90, 94, 98)]  # a second run, after a gap
    v = video(boxes=boxes, duration=120.0)
    s = TaskSettings(fps=1.0, clip_len=120, stride=120, box_stride=4.0, min_boxes=3)
    items, drops = run("STG", v, s, ctx)
    assert [list(i.struc_info[0]["bbox_dict"]) for i in items] == [["66.0", "70.0", "74.0", "78.0"],
                                                                   ["90.0", "94.0", "98.0"]]
    assert (items[0].start, items[0].end, items[0].struc_info[0]["start"], items[0].struc_info[0]["end"]) == (
        0.0, 120.0, 66.0, 78.0)
    assert re.search(r"every 4 seconds (from 66 to 78|between 66 and 78) seconds|from 66 to 78 seconds, one pixel "
                     r"box every 4 seconds", items[0].question), items[0].question
    pieces, _ = run("STG", v, replace(s, max_boxes=2, min_boxes=2), ctx)
    assert [list(i.struc_info[0]["bbox_dict"]) for i in pieces] == [["66.0", "70.0"], ["74.0", "78.0"],
                                                                    ["90.0", "94.0"]]
    assert not drops


def test_rc_box_on_the_clip_start_frame(ctx: GenContext) -> None:
    boxes = [Box(float(t), "grasper", "1", (10, 10, 50, 40)) for t in range(0, 50)]
    boxes.append(Box(55.5, "hook", "2", (0, 0, 10, 10)))
    items, drops = run("RC", video(boxes=boxes), TaskSettings(fps=1.0, clip_len=10, stride=30), ctx)
    assert [(i.start, i.end, i.rc_box) for i in items] == [(0.0, 10.0, (10, 10, 50, 40)),
                                                          (30.0, 40.0, (10, 10, 50, 40))]
    item = items[0]
    assert item.qa_type == "region_caption" and item.answer == ""
    assert item.struc_info == [{"struc_info": {"start": 0.0, "end": 10.0, "object": "grasper"},
                                "question": item.question}]
    assert item.facts["region"] == {"object": "grasper", "bbox": [10, 10, 50, 40], "time": 0.0,
                                    "image_size": [100, 50]}
    assert drops == [Drop("RC", "box time off the frame grid")]


def test_dvc_segments_disjoint_with_empty_captions_and_facts(ctx: GenContext) -> None:
    v = video(segments=[Segment("a", 0, 10, details={"instruments": ["hook"]}), Segment("b", 8, 20),
                        Segment("c", 20, 20.5)])
    items, _ = run("DVC", v, TaskSettings(fps=1.0, clip_len=30, stride=30, min_segments=2, min_span=0.1), ctx)
    item = items[0]
    assert item.qa_type == "dense_captioning" and item.answer == ""
    assert item.struc_info == [{"action": "a", "spans": [{"start": 0.0, "end": 10.0, "caption": ""}]},
                               {"action": "b", "spans": [{"start": 10.0, "end": 20.0, "caption": ""}]}]
    assert item.facts["segments"] == [
        {"start": 0.0, "end": 10.0, "label": "a", "kind": "phase", "details": {"instruments": ["hook"]}},
        {"start": 10.0, "end": 20.0, "label": "b", "kind": "phase"}]
    assert item.facts["clip"] == {"start": 0.0, "end": 30.0, "fps": 1.0} and item.facts["task"] == "dvc"


def test_nurvid_dvc_uses_the_dc_segments_layout(ctx: GenContext) -> None:
    v = video("NurViD", segments=[Segment("x", 0, 10, "action"), Segment("y", 10, 20, "action")])
    items, _ = run("DVC", v, TaskSettings(fps=1.0, clip_len=30, stride=30, kind="action"), ctx)
    assert items[0].struc_info == [{"dc_segments": [{"start": 0.0, "end": 10.0, "caption": ""},
                                                    {"start": 10.0, "end": 20.0, "caption": ""}]}]


def test_vs_facts_list_the_clip_segments(ctx: GenContext) -> None:
    items, drops = run("VS", video(), TaskSettings(fps=0.5, clip_len=40, stride=40, min_segments=2), ctx)
    assert [(i.start, i.end) for i in items] == [(0.0, 40.0), (20.0, 60.0)]  # the last window ends at the end
    assert items[0].qa_type == "video_summary" and items[0].struc_info == []
    assert [s["label"] for s in items[0].facts["segments"]] == ["preparation", "carlot-triangle-dissection"]
    assert [s["label"] for s in items[1].facts["segments"]] == ["carlot-triangle-dissection", "preparation",
                                                               "clipping-and-cutting"]
    assert drops == []


def test_cvs_scores_and_drops(ctx: GenContext) -> None:
    scores = [Scores(2.0, 12.0, "cvs", {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}),
              Scores(20.0, 20.0, "cvs", {"two_structures": 1, "cystic_plate": 1, "hepatocystic_triangle": 1}),
              Scores(30.0, 38.0, "cvs", {"two_structures": 2, "cystic_plate": 2, "hepatocystic_triangle": 2},
                     extra={"critical_view_achieved": True})]
    items, drops = run("CVS", video("Cholec80-CVS", scores=scores), TaskSettings(fps=1.0), ctx)
    assert [(i.start, i.end, i.answer) for i in items] == [
        (2.0, 12.0, "Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0"),
        (30.0, 38.0, "Two structures: 2, Cystic plate: 2, Hepatocystic triangle: 2")]
    assert items[0].struc_info == [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1,
                                                   "hepatocystic_triangle": 0, "total": 3,
                                                   "critical_view_achieved": False}}]
    assert items[1].struc_info[0]["cvs_scores"]["critical_view_achieved"] is True
    assert drops == [Drop("CVS", "segment start >= end (or shorter than one frame)")]


def test_sa_answer_and_level(ctx: GenContext) -> None:
    from reward_fns.tasks.sa import ASPECTS

    values = dict(zip(ASPECTS, (2, 2, 3, 2, 2, 3), strict=True))
    v = video("JIGSAWS", duration=61.0, scores=[Scores(0, 61.0, "skill", values, "N")])
    items, _ = run("SA", v, TaskSettings(fps=0.5), ctx)
    assert (items[0].start, items[0].end) == (0.0, 60.0)
    assert items[0].answer == ("Respect for tissue: 2/5, Suture/needle handling: 2/5, Time and motion: 3/5, "
                               "Flow of operation: 2/5, Overall performance: 2/5, Quality of final product: 3/5")
    assert items[0].struc_info == [{"skill_level": "N", "skill_scores": values}]


def test_questions_are_seeded_per_record(ctx: GenContext) -> None:
    cfg = load_config()
    v = video()
    words = {"classes": "a, b", "unit": "phase", "units": "phases"}
    one = QuestionBank(cfg, 0).ask("TAG", v, 0.0, label="preparation", duration=30.0, **words)
    assert one == QuestionBank(cfg, 0).ask("TAG", v, 0.0, label="preparation", duration=30.0, **words)
    drawn = {QuestionBank(cfg, seed).ask("TAG", v, 0.0, label="preparation", duration=30.0, **words)
             for seed in range(60)}
    templates = cfg.bank("TAG", "CholecT50")
    endings = {q.split("phases")[-1] for q in drawn}  # the ask, past the persona, setting and class list
    assert len(endings) == len(templates) > 1 and len(drawn) > len(templates)


def test_a_template_with_an_unknown_placeholder_names_the_task(ctx: GenContext) -> None:
    from data_preprocess.builder.config import ConfigError

    cfg = load_config()
    bad = replace(cfg, questions={**cfg.questions, "TAG": {"default": ("When is {nothing}?",)}})
    with pytest.raises(ConfigError, match=r"questions.TAG: template 'When is \{nothing\}\?' needs 'nothing'"):
        QuestionBank(bad, 0).ask("TAG", video(), 0.0, label="x")


def test_several_clip_lengths_each_window_once(ctx: GenContext) -> None:
    s = TaskSettings(fps=1.0, lengths=((30.0, 30.0), (60.0, 60.0), (90.0, 90.0)))
    items, _ = run("TAG", video(), s, ctx)
    windows = sorted({(i.start, i.end) for i in items})
    assert windows == [(0.0, 30.0), (0.0, 60.0), (30.0, 60.0)]  # 90 s on a 60 s video = the whole video, once
    nap_items, _ = run("NAP", video(), TaskSettings(fps=1.0, stride=5, horizon=0, lengths=((10.0, 5.0), (20.0, 5.0))),
                       ctx)
    assert [(i.start, i.end) for i in nap_items if i.answer == "carlot-triangle-dissection"] == [(10.0, 20.0),
                                                                                             (0.0, 20.0)]


def test_windowed_cvs_and_sa_keep_the_span_scores(ctx: GenContext) -> None:
    from reward_fns.tasks.sa import ASPECTS

    cvs = Scores(2.0, 32.0, "cvs", {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0})
    s = TaskSettings(fps=1.0, clip_len=20, stride=5, windowed=True)
    items, _ = run("CVS", video("Cholec80-CVS", scores=[cvs]), s, ctx)
    assert [(i.start, i.end) for i in items] == [(2.0, 22.0), (7.0, 27.0), (12.0, 32.0)]
    assert {i.answer for i in items} == {"Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0"}
    values = dict(zip(ASPECTS, (2, 2, 3, 2, 2, 3), strict=True))
    trial = video("JIGSAWS", duration=50.0, scores=[Scores(0, 50.0, "skill", values, "E")])
    sa, _ = run("SA", trial, TaskSettings(fps=0.5, clip_len=20, stride=20, windowed=True), ctx)
    assert [(i.start, i.end) for i in sa] == [(0.0, 20.0), (20.0, 40.0), (30.0, 50.0)]
    assert all(i.struc_info == [{"skill_level": "E", "skill_scores": values}] for i in sa)


@pytest.mark.parametrize(("settings", "message"), [
    ({"lengths": [[60, 30], [7, 2]], "fps": 0.5}, r"lengths: must be a positive multiple of 1/fps"),
    ({"lengths": [[60, 30, 1]]}, r"lengths: \[0\] must be a number or a \[clip_len, stride\] pair"),
    ({"lengths": 60}, r"lengths: must be a non-empty list of \[clip_len, stride\] pairs"),
    ({"lengths": []}, r"lengths: must be a non-empty list"),
    ({"lengths": [[60, -30]]}, r"lengths: \[0\] must be > 0"),
    ({"lengths": [[60, float("inf")]]}, r"lengths: \[0\] must be a finite number"),
    ({"lengths": [[60, float("nan")]]}, r"lengths: \[0\] must be a finite number"),
    ({"lengths": [True]}, r"lengths: \[0\] must be a number"),
    ({"lengths": [["60", 30]]}, r"lengths: \[0\] must be a number"),
    ({"lengths": [60] * 33}, r"lengths: holds 33 pairs"),
    ({"windowed": "yes"}, r"windowed: must be true or false"),
    ({"windowed": 1}, r"windowed: must be true or false"),
    ({"max_boxes": -1}, r"max_boxes: must be >= 0"),
    ({"max_boxes": 2.5}, r"max_boxes: must be a whole number"),
    ({"max_boxes": float("inf")}, r"max_boxes: must be a whole number"),
    ({"max_box": 3}, r"unknown key\(s\) \['max_box'\]"),
])
def test_new_settings_are_checked(tmp_path, settings: dict, message: str) -> None:
    import yaml

    from data_preprocess.builder.config import ConfigError

    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"task_defaults": {"TAG": settings}}))
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"task_defaults": {"TAG": {"lengths": [[60, 30], 120]}}}))
    assert load_config(tmp_path / "ok.yaml") is not None
