"""Each source adapter on a tiny synthetic release in its published (or documented intermediate) layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_preprocess.build.adapters import get_adapter
from data_preprocess.build.canonical import AnnotationError, Box, Segment
from tests import build_fixtures as fx


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
    from data_preprocess.build.frames import clip_frames

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
    from data_preprocess.build.frames import clip_frames

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
