"""Whole records built from the synthetic native releases, compared field by field with hand-made ones."""

from __future__ import annotations

import json

import pytest

from data_preprocess.builder.cli import main
from data_preprocess.builder.config import load_config
from testbed import toy_sources as fx


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    base = tmp_path_factory.mktemp("records")
    sources = fx.write_all(base, with_videos=False)
    config = fx.small_config(base / "config.yaml")
    assert main(["--all", str(sources), "--out", str(base / "out.json"), "--config", str(config),
                 "--captions", "facts"]) == 0
    return json.loads((base / "out.json").read_text())


def first(records: list[dict], source: str, qa_type: str) -> dict:
    return next(r for r in records if r["data_source"] == source and r["qa_type"] == qa_type)


def without_question(rec: dict, task: str) -> dict:
    """The record minus its drawn question, which must come from the task's bank."""
    rec = json.loads(json.dumps(rec))
    question = rec["conversations"][0]["value"]
    assert question.startswith("<video>\n")
    bank = load_config().bank(task, rec["data_source"])
    stems = [t.split("{")[0] for t in bank]
    assert any(question[len("<video>\n"):].startswith(stem) for stem in stems), question
    rec["conversations"][0]["value"] = "Q"
    if rec["qa_type"] == "region_caption":
        rec["struc_info"][0]["question"] = "Q"
    return rec


def frames(prefix: str, numbers: range, width: int, ext: str) -> list[str]:
    return [f"{prefix}/{n:0{width}d}.{ext}" for n in numbers]


def turns(answer: str) -> list[dict]:
    return [{"from": "human", "value": "Q"}, {"from": "gpt", "value": answer}]


def test_cholect50_tag(records: list[dict]) -> None:
    assert without_question(first(records, "CholecT50", "tal"), "TAG") == {
        "conversations": turns("0.0-20.0 seconds."),
        "video": frames("CholecT50/videos/VID01", range(0, 30, 2), 6, "png"),
        "metadata": {"video_id": "VID01", "fps": "0.5", "input_video_start_frame": "0",
                     "input_video_end_frame": "30"},
        "qa_type": "tal", "data_source": "CholecT50",
        "struc_info": [{"action": "preparation", "spans": [{"start": 0.0, "end": 20.0}]}], "is_RC": False}


def test_cholec80_cvs(records: list[dict]) -> None:
    assert without_question(first(records, "Cholec80-CVS", "cvs_assessment"), "CVS") == {
        "conversations": turns("Two structures: 2, Cystic plate: 1, Hepatocystic triangle: 0"),
        "video": frames("Cholec80-CVS/frames_1fps/video01", range(2, 12), 6, "jpg"),
        "metadata": {"video_id": "video01", "fps": "1.0", "input_video_start_frame": "50",
                     "input_video_end_frame": "300", "start_frame": "50", "end_frame": "300"},
        "qa_type": "cvs_assessment", "data_source": "Cholec80-CVS",
        "struc_info": [{"cvs_scores": {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0,
                                       "total": 3, "critical_view_achieved": False}}], "is_RC": False}


def test_jigsaws_sa(records: list[dict]) -> None:
    scores = {"Respect for tissue": 2, "Suture/needle handling": 2, "Time and motion": 2, "Flow of operation": 2,
              "Overall performance": 2, "Quality of final product": 3}
    assert without_question(first(records, "JIGSAWS", "skill_assessment"), "SA") == {
        "conversations": turns("Respect for tissue: 2/5, Suture/needle handling: 2/5, Time and motion: 2/5, "
                               "Flow of operation: 2/5, Overall performance: 2/5, Quality of final product: 3/5"),
        "video": frames("JIGSAWS/frames_0.5fps/Suturing_B001", range(5), 6, "jpg"),
        "metadata": {"video_id": "Suturing_B001", "fps": "0.5", "input_video_start_frame": "0",
                     "input_video_end_frame": "300"},
        "qa_type": "skill_assessment", "data_source": "JIGSAWS",
        "struc_info": [{"skill_level": "N", "skill_scores": scores}], "is_RC": False}


def test_nurvid_nap_names_the_procedure(records: list[dict]) -> None:
    rec = first(records, "NurViD", "next_action")
    assert "Bed Shampoo" in rec["conversations"][0]["value"]
    assert without_question(rec, "NAP") == {
        "conversations": turns("Apply shampoo"),
        "video": frames(f"NurViD/frames_1fps/{fx.NURVID_ID}", range(10, 20), 6, "jpg"),
        "metadata": {"video_id": fx.NURVID_ID, "fps": "1.0", "input_video_start_frame": "300",
                     "input_video_end_frame": "600", "input_video_start_time": "10.0",
                     "input_video_end_time": "20.0"},
        "qa_type": "next_action", "data_source": "NurViD", "struc_info": [{"next_action": "Apply shampoo"}],
        "is_RC": False}


def test_egosurgery_stg_on_the_released_frames(records: list[dict]) -> None:
    rec = next(r for r in records if r["data_source"] == "EgoSurgery" and r["qa_type"] == "stg"
               and r["struc_info"][0]["object"] == "scissors")
    boxes = {f"{t}.0": [10, 20, 30, 40] for t in range(0, 10, 2)}
    assert without_question(rec, "STG") == {
        "conversations": turns(" ".join(f"{t}.0 seconds: [10, 20, 30, 40]" for t in range(0, 10, 2))),
        "video": [f"EgoSurgery/images/01/{fx.EGO_TAKE}_{f:06d}.jpg" for f in range(0, 300, 60)],
        "metadata": {"video_id": fx.EGO_TAKE, "fps": "0.5", "input_video_start_frame": "0",
                     "input_video_end_frame": "300"},
        "qa_type": "stg", "data_source": "EgoSurgery",
        "struc_info": [{"start": 0.0, "end": 8.0, "stride": 2.0, "object": "scissors", "bbox_dict": boxes}],
        "is_RC": False}


def test_copesd_rc_with_facts(records: list[dict]) -> None:
    video = frames("CoPESD/high_light_images/023521", range(1, 11), 4, "jpg")
    assert without_question(first(records, "CoPESD", "region_caption"), "RC") == {
        "conversations": turns(""), "video": video,
        "metadata": {"video_id": fx.COPESD_FOLDER, "fps": "1.0", "input_video_start_frame": "0",
                     "input_video_end_frame": "10"},
        "qa_type": "region_caption", "data_source": "CoPESD",
        "struc_info": [{"struc_info": {"start": 0.0, "end": 10.0, "object": "Forceps"}, "question": "Q"}],
        "is_RC": True, "RC_info": {"start_frame": video[0], "start_frame_bbox": [19, 11, 58, 54]},
        "caption_facts": {"task": "rc", "source": "CoPESD", "procedure": "endoscopic submucosal dissection",
                          "clip": {"start": 0.0, "end": 10.0, "fps": 1.0},
                          "region": {"object": "Forceps", "bbox": [19, 11, 58, 54], "time": 0.0,
                                     "image_size": [192, 108], "frame": video[0]},
                          "keyframes": [video[0], video[3], video[6], video[9]]}}


def test_nurvid_dvc_facts_item(records: list[dict]) -> None:
    video = frames(f"NurViD/frames_0.5fps/{fx.NURVID_ID}", range(20), 6, "jpg")
    segments = [(2.0, 14.0, "Moisten hair"), (20.0, 30.0, "Apply shampoo"), (35.0, 40.0, "Rinse shampoo")]
    assert without_question(first(records, "NurViD", "dense_captioning"), "DVC") == {
        "conversations": turns(""), "video": video,
        "metadata": {"video_id": fx.NURVID_ID, "fps": "0.5", "input_video_start_frame": "0",
                     "input_video_end_frame": "1200", "input_video_start_time": "0.0",
                     "input_video_end_time": "40.0"},
        "qa_type": "dense_captioning", "data_source": "NurViD",
        "struc_info": [{"dc_segments": [{"start": s, "end": e, "caption": ""} for s, e, _ in segments]}],
        "is_RC": False,
        "caption_facts": {"task": "dvc", "source": "NurViD", "procedure": "Bed Shampoo",
                          "clip": {"start": 0.0, "end": 40.0, "fps": 0.5},
                          "segments": [{"start": s, "end": e, "label": label, "kind": "action"}
                                       for s, e, label in segments],
                          "keyframes": [video[0], video[6], video[13], video[19]]}}


def test_avos_vs_facts_item(records: list[dict]) -> None:
    rec = without_question(first(records, "AVOS", "video_summary"), "VS")
    assert rec["struc_info"] == [] and rec["conversations"] == turns("")
    assert rec["caption_facts"]["segments"] == [
        {"start": 5.0, "end": 20.0, "label": "cutting", "kind": "action"},
        {"start": 20.0, "end": 30.0, "label": "tying", "kind": "action"},
        {"start": 35.0, "end": 40.0, "label": "suturing", "kind": "action"}]
    assert rec["metadata"] == {"video_id": fx.AVOS_ID, "fps": "0.5", "input_video_start_frame": "0",
                               "input_video_end_frame": "600"}


def test_questions_follow_the_released_style(records: list[dict]) -> None:
    """Persona, then the source's setting, then (TAG, NAP, DVC) the class list, then the ask."""
    import re

    from data_preprocess.builder.phrasing import PERSONAS, SETTINGS
    from reward_fns.tasks.nap import class_table

    for rec in records:
        q = rec["conversations"][0]["value"].removeprefix("<video>\n")
        source = rec["data_source"]
        assert any(q.startswith(p + " ") for p in PERSONAS.get(source, PERSONAS["default"])), q
        settings = SETTINGS.get(source, SETTINGS["default"])
        assert any(re.escape(s).replace(r"\{procedure\}", ".+") for s in settings
                   if re.search(re.escape(s).replace(r"\{procedure\}", ".+"), q)), q
        if rec["qa_type"] in ("tal", "next_action", "dense_captioning"):
            listed = class_table().get(source) or []
            if source == "NurViD":
                listed = class_table()["NurViD_by_procedure"]["Bed Shampoo"]
            if source == "EgoSurgery":  # no leaderboard list: the video's own phases
                listed = sorted(p for _, _, p in fx.EGO_PHASES)
            assert listed and ", ".join(listed) in q, q
        if rec["qa_type"] == "region_caption":
            end = rec["struc_info"][0]["struc_info"]["end"]
            assert "0.0 seconds" in q and f"{end:.1f}" in q, q
        if rec["qa_type"] == "stg":
            info = rec["struc_info"][0]
            assert f"{info['stride']:g} seconds" in q and f"{info['start']:g}" in q and f"{info['end']:g}" in q, q
