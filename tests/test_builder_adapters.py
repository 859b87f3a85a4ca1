"""Each source adapter on a tiny synthetic release in its published (or documented intermediate) layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_preprocess.builder.adapters import get_adapter
from data_preprocess.builder.canonical import AnnotationError, Box, Segment
from testbed import toy_sources as fx


def read(name: str, root: Path, videos: Path | None = None):
    return get_adapter(name).read(root, videos)


def spans(video, kind: str) -> list[tuple[str, float, float]]:
    return [(s.label, s.start, s.end) for s in video.segments_of(kind)]


def test_cholect50_phases_details_and_boxes(tmp_path: Path) -> None:
    got = read("cholect50", fx.cholect50(tmp_path))
    (v,) = got.videos
    assert (v.source, v.video_id, v.fps, v.duration, v.width, v.height) == ("CholecT50", "VID01", 1.0, 60.0, 100, 50)
    assert spans(v, "phase") == [("preparation", 0, 20), ("carlot-triangle-dissection", 20, 45),
                                 ("clipping-and-cutting", 45, 60)]
    dissection = v.segments_of("phase")[1]
    assert dissection.details == {"instruments": ["grasper", "hook"], "verbs": ["retract", "dissect"],
                                  "targets": ["gallbladder", "cystic_duct"],
                                  "triplets": ["grasper,retract,gallbladder", "hook,dissect,cystic_duct"]}
    assert v.boxes[0] == Box(0.0, "grasper", "grasper", pytest.approx((10.0, 10.0, 40.0, 30.0)))
    assert len(v.boxes) == 30  # boxes only where the vector has them
    assert v.frames.kind == "folder" and v.frames.path == "videos/VID01"
    assert got.files == [tmp_path / "labels" / "VID01.json"]


def test_cholectrack20_tracks_and_frame_numbers(tmp_path: Path) -> None:
    from data_preprocess.builder.frames import clip_frames

    (v,) = read("cholectrack20", fx.cholectrack20(tmp_path)).videos
    assert (v.video_id, v.fps, v.duration, v.width, v.height) == ("vid02", 25.0, 30.0, 854, 480)
    tracks = v.tracks()
    assert sorted(tracks) == ["1", "3"] and len(tracks["1"]) == 30 and len(tracks["3"]) == 20
    assert tracks["3"][0].label == "hook" and tracks["3"][0].time == 10.0
    assert tracks["1"][0].xyxy == pytest.approx((85.4, 48.0, 256.2, 144.0))
    assert clip_frames(v, 2.0, 4.0, 1.0) == ["CholecTrack20/Training/VID02/Frames/000051.png",
                                             "CholecTrack20/Training/VID02/Frames/000076.png"]


def test_cholec80_cvs_spreadsheet_rows(tmp_path: Path) -> None:
    got = read("cholec80_cvs", fx.cholec80_cvs(tmp_path, with_video=False))
    (v,) = got.videos
    assert (v.video_id, v.fps, v.duration, v.frames.kind) == ("video01", 25.0, 38.0, "video")
    assert [(s.start, s.end, dict(s.values)) for s in v.scores] == [
        (2.0, 12.0, {"two_structures": 2, "cystic_plate": 1, "hepatocystic_triangle": 0}),
        (20.0, 20.0, {"two_structures": 1, "cystic_plate": 1, "hepatocystic_triangle": 1}),
        (38.0 - 8.0, 38.0, {"two_structures": 2, "cystic_plate": 2, "hepatocystic_triangle": 2})]
    assert v.scores[2].extra == {"critical_view_achieved": True}


def test_cholec80_cvs_accepts_a_csv_export_and_names_a_bad_cell(tmp_path: Path) -> None:
    rows = [list(r) for r in fx.CVS_ROWS]
    rows[1][5] = 3
    fx.write_csv(tmp_path / "surgeons_annotations.csv", fx.CVS_HEADER, rows)
    with pytest.raises(AnnotationError, match=r"surgeons_annotations.csv: entry 1: field 'criteria'"):
        read("cholec80_cvs", tmp_path)


def test_jigsaws_scores_gestures_and_skipped_trials(tmp_path: Path) -> None:
    got = read("jigsaws", fx.jigsaws(tmp_path, with_video=False))
    b001, e001 = got.videos
    assert (b001.video_id, b001.procedure, b001.duration) == ("Suturing_B001", "robotic suturing", 10.0)
    assert spans(b001, "gesture") == [("G1", 0.0, 3.0), ("G2", 3.0, 10.0)]
    assert b001.scores[0].level == "N" and b001.scores[0].values["Quality of final product"] == 3
    assert e001.scores[0].values["Suture/needle handling"] == 5
    assert got.skipped == {"trial without six aspect scores": 1}


def test_jigsaws_duration_comes_from_the_video_when_present(tmp_path: Path) -> None:
    got = read("jigsaws", fx.jigsaws(tmp_path))
    assert [v.duration for v in got.videos] == pytest.approx([10.0, 12.0], abs=0.6)


def test_nurvid_ids_resolve_to_leaderboard_names(tmp_path: Path) -> None:
    got = read("nurvid", fx.nurvid(tmp_path))
    (v,) = got.videos
    assert (v.video_id, v.procedure, v.fps, v.width, v.height) == (fx.NURVID_ID, "Bed Shampoo", 30.0, 64, 36)
    assert spans(v, "action") == [("Moisten hair", 2.0, 14.0), ("Apply shampoo", 20.0, 30.0),
                                  ("Rinse shampoo", 35.0, 50.0)]
    assert got.skipped == {"segment with end <= start": 1}


def test_avos_labels_merge_and_boxes_scale(tmp_path: Path) -> None:
    (v,) = read("avos", fx.avos(tmp_path)).videos
    assert spans(v, "action") == [("cutting", 5.0, 20.0), ("tying", 20.0, 30.0), ("suturing", 35.0, 55.0),
                                  ("cutting", 55.0, 60.0)]
    assert v.boxes[0] == Box(0.0, "scalpel", "7", (16.0, 18.0, 32.0, 27.0))
    assert (v.fps, v.duration) == (15.0, 60.0)


def test_copesd_intermediate_with_old_motion_names(tmp_path: Path) -> None:
    (v,) = read("copesd", fx.copesd(tmp_path)).videos
    assert v.segments_of("motion")[0] == Segment("dissect flap tissue with knife", 0.0, 15.0, "motion")
    assert v.segments_of("motion")[1].label == "stabilize flap with forceps"
    assert (v.width, v.height) == (192, 108)  # the frames' size wins over the declared 1920x1080
    assert v.boxes[0].xyxy == pytest.approx((19.2, 10.8, 57.6, 54.0))
    from data_preprocess.builder.frames import clip_frames

    assert clip_frames(v, 0.0, 2.0, 1.0) == ["CoPESD/high_light_images/023521/0001.jpg",
                                             "CoPESD/high_light_images/023521/0002.jpg"]


def test_copesd_boxes_from_the_llava_style_file(tmp_path: Path) -> None:
    got = read("copesd", fx.copesd(tmp_path, llava=True))
    knife = got.videos[0].tracks()["knife"]
    assert [(b.time, b.label, b.xyxy) for b in knife] == [(4.0, "Knife", (96.0, 54.0, 144.0, 108.0)),
                                                          (5.0, "Knife", (96.0, 54.0, 144.0, 108.0))]
    assert tmp_path / "copesd_llava_train.json" in got.files


def test_copesd_llava_image_outside_the_known_folders_is_named(tmp_path: Path) -> None:
    fx.copesd(tmp_path, llava=True)
    (tmp_path / "copesd_llava_train.json").write_text(json.dumps([{"image": "x/999999/0001.jpg"}]))
    with pytest.raises(AnnotationError, match=r"copesd_llava_train.json: entry 0: field 'image'"):
        read("copesd", tmp_path)


def test_egosurgery_csvs(tmp_path: Path) -> None:
    (v,) = read("egosurgery", fx.egosurgery(tmp_path)).videos
    assert (v.video_id, v.fps, v.duration, v.procedure) == (fx.EGO_ID, 30.0, 60.0, "skin lesion excision")
    assert spans(v, "phase") == [("disinfection", 0, 16), ("incision", 16, 40), ("closure", 40, 60)]
    assert len(v.boxes) == 30 and v.boxes[0].xyxy == (10, 20, 30, 40)


def test_egosurgery_annotations_of_an_unlisted_video_are_an_error(tmp_path: Path) -> None:
    fx.egosurgery(tmp_path)
    fx.write_csv(tmp_path / "phases.csv", ["video_id", "start", "end", "phase"], [["other", 0, 5, "incision"]])
    with pytest.raises(AnnotationError, match=r"videos.csv: entry -: field 'video_id'.*\['other'\]"):
        read("egosurgery", tmp_path)


@pytest.mark.parametrize(("name", "breaker", "message"), [
    ("cholect50", lambda r: (r / "labels" / "VID01.json").write_text('{"annotations": {"0": [[1, 2]]}, '
                                                                     '"categories": {}}'),
     r"VID01.json: entry 0: field 'annotations': each instance must be a 15-number vector"),
    ("cholectrack20", lambda r: (r / "Training" / "VID02" / "VID02.json").write_text(json.dumps(
        {"video": {}, "annotations": {"1": [{"instrument": 0}]}})),
     r"VID02.json: entry 1: field 'tool_bbox/instrument'"),
    ("jigsaws", lambda r: (r / "Suturing" / "transcriptions" / "Suturing_B001.txt").write_text("0 G1\n"),
     r"Suturing_B001.txt: entry 0: field 'line'"),
    ("copesd", lambda r: (r / "copesd_annotations.json").write_text(json.dumps({"v": {"motions": [{}]}})),
     r"copesd_annotations.json: entry v: field 'frames': missing"),
    ("avos", lambda r: (r / "avos_segments.csv").write_text("video_id,start_seconds,labeler_2\nabc,x,cutting\n"),
     r"avos_segments.csv: entry 0: field 'start_seconds': not a number"),
])
def test_bad_input_names_file_entry_and_field(tmp_path: Path, name: str, breaker, message: str) -> None:
    writer = fx.WRITERS[name]
    root = writer(tmp_path, with_video=False) if name == "jigsaws" else writer(tmp_path)
    breaker(root)
    with pytest.raises(AnnotationError, match=message):
        read(name, root)


def test_a_missing_release_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"NurViD_annotations.json: entry -: field '<file>': missing"):
        read("nurvid", tmp_path)


# ---- the published layouts (issue 22) ---------------------------------------------------------------------
def test_cholectrack20_as_released_all_splits_and_namings(tmp_path: Path) -> None:
    got = read("cholectrack20", fx.cholectrack20(tmp_path, all_splits=True))
    assert [v.video_id for v in got.videos] == ["vid12", "vid02", "vid05"]  # Testing, Training, Validation
    for v in got.videos:
        assert v.duration == 30.0  # num_frames counts the annotated 1-fps frames
        assert {b.label for b in v.boxes} == {"grasper", "hook"}  # names from the {id, name} tool list
    testing, training, _ = got.videos
    assert (testing.frames.kind, testing.frames.path) == ("video", "Testing/VID12/VID12.mp4")
    assert (training.frames.kind, training.frames.path) == ("folder", "Training/VID02/Frames")
    assert tmp_path / "Validation" / "VID05" / "vid05.json" in got.files
    assert not got.warnings


def test_cholectrack20_unknown_tool_id_is_left_out_and_warned(tmp_path: Path) -> None:
    folder = fx.cholectrack20_video(tmp_path / "Training" / "VID03", 3, 5)
    data = json.loads((folder / "VID03.json").read_text())
    data["annotations"]["1"][0]["instrument"] = 9
    (folder / "VID03.json").write_text(json.dumps(data))
    got = read("cholectrack20", tmp_path)
    assert not any(b.label.startswith("tool") or b.label == "9" for b in got.videos[0].boxes)
    assert got.warnings == {"CholecTrack20 tool ids not in categories.tools (box left out)": 1}


def test_cholect50_release2_has_no_boxes_and_no_null_triplets(tmp_path: Path) -> None:
    got = read("cholect50", fx.cholect50(tmp_path, release2=True))
    (v,) = got.videos
    assert v.boxes == []
    details = v.segments_of("phase")[0].details
    assert details["triplets"] == ["grasper,retract,gallbladder"]
    assert not any("null" in n for names in details.values() for n in names)
    assert got.warnings == {
        "CholecT50 triplets with null_verb/null_target left out of caption facts": 10,
        "CholecT50 videos without instrument boxes (all -1, as in the public Release 2.0): no RC/STG records "
        "from them": 1}


def test_nurvid_repository_layout_and_released_id_table(tmp_path: Path) -> None:
    got = read("nurvid", fx.nurvid(tmp_path))
    (v,) = got.videos
    assert v.procedure == "Bed Shampoo"  # the table's 'Bed shampoo' matched to the leaderboard spelling
    assert spans(v, "action") == [("Moisten hair", 2.0, 14.0), ("Apply shampoo", 20.0, 30.0),
                                  ("Rinse shampoo", 35.0, 50.0)]
    assert got.warnings == {"NurViD actionIDs not in the Procedure&Action_ID table (segment left out)": 1}
    assert got.files == [tmp_path / "annotations" / "NurViD_annotations.json",
                         tmp_path / "annotations" / "Procedure&Action_ID.xlsx"]


def test_nurvid_flat_csv_table_in_the_root(tmp_path: Path) -> None:
    (v,) = read("nurvid", fx.nurvid(tmp_path, flat=True)).videos
    assert v.procedure == "Bed Shampoo" and len(v.segments) == 3


def test_nurvid_sheet_without_a_table_is_reported(tmp_path: Path) -> None:
    import openpyxl

    fx.nurvid(tmp_path)
    path = tmp_path / "annotations" / "Procedure&Action_ID.xlsx"
    book = openpyxl.load_workbook(path)
    book.create_sheet("notes").append(["free text", "no header here"])
    book.save(path)
    got = read("nurvid", tmp_path)
    assert got.warnings["NurViD Procedure&Action_ID.xlsx sheet 'notes' not read (no ID / name header)"] == 1


@pytest.mark.parametrize(("remove", "message"), [
    ("annotations/Procedure&Action_ID.xlsx", r"Procedure&Action_ID.xlsx: entry -: field '<file>': missing"),
    ("annotations/NurViD_annotations.json", r"NurViD_annotations.json: entry -: field '<file>': missing"),
])
def test_nurvid_without_its_id_table_or_json_is_an_error(tmp_path: Path, remove: str, message: str) -> None:
    fx.nurvid(tmp_path)
    (tmp_path / remove).unlink()
    with pytest.raises(AnnotationError, match=message):
        read("nurvid", tmp_path)


def test_nurvid_table_without_actions_is_an_error(tmp_path: Path) -> None:
    fx.nurvid(tmp_path)
    (tmp_path / "annotations" / "Procedure&Action_ID.xlsx").unlink()
    fx.write_csv(tmp_path / "annotations" / "Procedure&Action_ID.csv", ["Procedure ID", "Procedure"], [[7, "x"]])
    with pytest.raises(AnnotationError, match=r"Procedure&Action_ID.csv: entry -: field '<header>': no action"):
        read("nurvid", tmp_path)


def test_egosurgery_from_the_released_jpeg_frames(tmp_path: Path) -> None:
    from data_preprocess.builder.frames import clip_frames

    got = read("egosurgery", fx.egosurgery_release(tmp_path))
    (v,) = got.videos
    assert (v.video_id, v.fps, v.duration, v.width, v.height) == (fx.EGO_TAKE, 30.0, 120.0, 192, 108)
    assert (v.frames.path, v.frames.rate) == ("images/01", 0.5)
    assert spans(v, "phase") == [("disinfection", 0.0, 30.0), ("incision", 30.0, 80.0), ("closure", 80.0, 120.0)]
    tracks = v.tracks()
    assert sorted(tracks) == ["own hands left", "scissors"] and len(tracks["scissors"]) == 30
    assert tracks["scissors"][1].time == 2.0 and tracks["scissors"][1].xyxy == (10, 20, 30, 40)
    assert clip_frames(v, 4.0, 8.0, 0.5) == ["EgoSurgery/images/01/01_1_000120.jpg",
                                             "EgoSurgery/images/01/01_1_000180.jpg"]
    assert clip_frames(v, 0.0, 2.0, 1.0) == "record fps 1 above the frame folder's 0.5 fps"
    assert not got.warnings


def test_egosurgery_release_numbers_and_unknown_ids_are_warned(tmp_path: Path) -> None:
    fx.egosurgery_release(tmp_path)
    path = tmp_path / "annotations" / "phase" / f"{fx.EGO_TAKE}.csv"
    path.write_text(path.read_text().replace("disinfection", "0").replace("closure", "42"))
    coco = tmp_path / "annotations" / "bbox" / "by_split" / "tools" / "train.json"
    data = json.loads(coco.read_text())
    data["annotations"][0]["category_id"] = 7
    coco.write_text(json.dumps(data))
    got = read("egosurgery", tmp_path)
    assert spans(got.videos[0], "phase") == [("disinfection", 0.0, 30.0), ("incision", 30.0, 80.0)]
    assert got.warnings == {
        "EgoSurgery phase numbers named through the paper's phase order (assumption)": 15,
        "EgoSurgery phase numbers outside the 9 phases (frame left without a phase)": 20,
        "EgoSurgery boxes with an unknown image or category id (left out)": 1}


def test_copesd_from_the_distributed_per_image_json(tmp_path: Path) -> None:
    got = read("copesd", fx.copesd_release(tmp_path))
    (v,) = got.videos
    assert (v.video_id, v.fps, v.duration, v.width, v.height) == (fx.COPESD_FOLDER, 1.0, 60.0, 192, 108)
    assert spans(v, "motion") == [("dissect flap tissue with knife", 0.0, 15.0),
                                  ("stabilize flap with forceps", 15.0, 33.0), ("adjust camera", 33.0, 59.0)]
    assert sorted(v.tracks()) == ["forceps", "knife"] and v.boxes[0].xyxy == pytest.approx((19.2, 10.8, 57.6, 54.0))
    assert got.warnings == {"CoPESD instructions matching no motion class (image left without a motion)": 1}
    assert got.files == [tmp_path / "copesd_llava_train.json"]


@pytest.mark.parametrize(("text", "label"), [
    ("Draw back the flap edge with the forceps while the knife helps.", "retract flap edge with forceps and knife"),
    ("Pull back the flap edge using the forceps alone.", "retract flap edge with forceps only"),
    ("Raise the flap with the forceps.", "lift flap with forceps"),
    ("Raise the flap with the forceps and the knife to expose the submucosa.",
     "retract flap edge with forceps and knife"),
    ("Move the flap into place with the forceps.", "position flap with forceps only"),
    ("Re-place the flap using forceps and knife.", "position flap with forceps and knife"),
    ("Hold the flap still with the forceps.", "stabilize flap with forceps"),
    ("Dissect the submucosa under the flap.", "dissect flap tissue with knife"),
    ("Zoom the camera out.", "adjust camera"),
    ("Irrigate the field.", None),
])
def test_copesd_motion_rules(text: str, label: str | None) -> None:
    from data_preprocess.builder.adapters.copesd_release import motion_class

    assert motion_class(text) == label


def test_copesd_motion_rules_never_invent_a_class() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from data_preprocess.builder.adapters.copesd_release import motion_class
    from reward_fns.tasks.nap import class_table

    classes = set(class_table()["CoPESD"])

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=200))
    def check(text: str) -> None:
        assert motion_class(text) in classes | {None}

    check()


def test_copesd_user_motion_map_wins_and_is_checked(tmp_path: Path) -> None:
    fx.copesd_release(tmp_path)
    (tmp_path / "copesd_motion_map.json").write_text(json.dumps({"bleeding": "hold flap with forceps"}))
    got = read("copesd", tmp_path)
    assert spans(got.videos[0], "motion")[-1] == ("stabilize flap with forceps", 59.0, 60.0)
    assert not got.warnings and tmp_path / "copesd_motion_map.json" in got.files
    (tmp_path / "copesd_motion_map.json").write_text(json.dumps({"bleeding": "wait"}))
    with pytest.raises(AnnotationError, match=r"copesd_motion_map.json: entry bleeding: field 'class'"):
        read("copesd", tmp_path)


def test_copesd_image_outside_high_light_images_is_named(tmp_path: Path) -> None:
    fx.copesd_release(tmp_path)
    (tmp_path / "copesd_llava_train.json").write_text(json.dumps([{"image": "x/0001.jpg", "conversations": []}]))
    with pytest.raises(AnnotationError, match=r"copesd_llava_train.json: entry 0: field 'image'"):
        read("copesd", tmp_path)


def test_cholec80_cvs_sheets_after_the_first_are_reported(tmp_path: Path) -> None:
    import openpyxl

    fx.cholec80_cvs(tmp_path, with_video=False)
    path = tmp_path / "surgeons_annotations.xlsx"
    book = openpyxl.load_workbook(path)
    book.create_sheet("second surgeon").append(fx.CVS_HEADER)
    book.create_sheet("empty")
    book.save(path)
    got = read("cholec80_cvs", tmp_path)
    assert got.warnings == {"Cholec80-CVS surgeons_annotations.xlsx sheet 'second surgeon' not read (only the "
                            "first sheet is)": 1}


def test_copesd_intermediate_motion_outside_the_classes_is_warned(tmp_path: Path) -> None:
    fx.copesd(tmp_path)
    path = tmp_path / "copesd_annotations.json"
    path.write_text(path.read_text().replace("adjust camera", "suction"))
    got = read("copesd", tmp_path)
    assert got.videos[0].segments_of("motion")[2].label == "suction"
    assert got.warnings == {"CoPESD motion names outside the leaderboard's classes and aliases (kept; NAP drops "
                            "them)": 1}
    assert not read("copesd", fx.copesd(tmp_path / "clean")).warnings
