"""`python -m data_preprocess.builder` end to end on synthetic releases of all 8 sources."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from data_preprocess.builder.cli import main
from testbed import toy_sources as fx

SOURCES = ("AVOS", "Cholec80-CVS", "CholecT50", "CholecTrack20", "CoPESD", "EgoSurgery", "JIGSAWS", "NurViD")


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("release")
    fx.write_all(base)
    fx.small_config(base / "config.yaml")
    return base


def build(release: Path, out: Path, *extra: str) -> dict:
    argv = ["--all", str(release / "sources.yaml"), "--out", str(out), "--config", str(release / "config.yaml"),
            *extra]
    assert main(argv) == 0
    return json.loads(out.with_name(out.stem + ".manifest.json").read_text())


@pytest.fixture(scope="module")
def facts_build(release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    out_dir = tmp_path_factory.mktemp("facts")
    frames = out_dir / "data"
    manifest = build(release, out_dir / "train.json", "--captions", "facts", "--frames-out", str(frames))
    return out_dir / "train.json", manifest, frames


def test_every_source_and_task_is_built(facts_build: tuple[Path, dict, Path]) -> None:
    out, manifest, _ = facts_build
    records = json.loads(out.read_text())
    assert manifest["records"] == len(records) > 0
    assert sorted(manifest["counts"]) == list(SOURCES)
    tasks = {t for per_task in manifest["counts"].values() for t in per_task}
    assert tasks == {"TAG", "NAP", "DVC", "VS", "RC", "STG", "CVS", "SA"}
    assert manifest["counts"]["JIGSAWS"] == {"SA": {"0.5": 2}}
    assert manifest["counts"]["Cholec80-CVS"] == {"CVS": {"1.0": 2}}
    assert manifest["dropped"]["Cholec80-CVS"] == {"CVS": {"segment start >= end (or shorter than one frame)": 1}}
    assert manifest["adapter_skipped"]["jigsaws"] == {"trial without six aspect scores": 1}
    assert sorted(manifest["licences"]) == list(SOURCES) and all(manifest["licences"].values())


def test_manifest_lists_input_files_with_sha256(facts_build: tuple[Path, dict, Path], release: Path) -> None:
    inputs = {Path(i["path"]).name: i for i in facts_build[1]["inputs"]}
    label = release / "cholect50" / "labels" / "VID01.json"
    assert inputs["VID01.json"]["sha256"] == hashlib.sha256(label.read_bytes()).hexdigest()
    assert {"surgeons_annotations.xlsx", "NurViD_annotations.json", "Procedure&Action_ID.xlsx", "avos_segments.csv",
            f"{fx.EGO_TAKE}.csv", "train.json", "copesd_llava_train.json", "meta_file_Suturing.txt", "VID02.json",
            "vid05.json", "VID12.json"} <= set(inputs)


def test_every_frame_exists_under_the_data_root_in_time_order(facts_build: tuple[Path, dict, Path]) -> None:
    out, manifest, frames = facts_build
    records = json.loads(out.read_text())
    for rec in records:
        numbers = [int(Path(p).stem) for p in rec["video"]]
        assert numbers == sorted(set(numbers)), rec["video"]
        assert all((frames / p).is_file() for p in rec["video"]), rec["metadata"]
    assert manifest["frames"]["linked"] == ["CholecT50", "CholecTrack20", "CoPESD", "EgoSurgery"]
    assert manifest["frames"]["extracted"] > 0 and manifest["frames"]["resumed"] == 0


def test_manifest_warnings_count_what_the_releases_lack(facts_build: tuple[Path, dict, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    warnings = facts_build[1]["warnings"]
    assert warnings["cholect50"] == {
        "CholecT50 triplets with null_verb/null_target left out of caption facts": 10,
        "CholecT50 videos without instrument boxes (all -1, as in the public Release 2.0): no RC/STG records "
        "from them": 1}
    assert warnings["nurvid"] == {"NurViD actionIDs not in the Procedure&Action_ID table (segment left out)": 1}
    assert warnings["build"] == {"CholecT50 RC: no records (nothing to build it from)": 1}
    records = json.loads(facts_build[0].read_text())
    facts = [json.dumps(r["caption_facts"]) for r in records
             if r["data_source"] == "CholecT50" and "caption_facts" in r]
    assert facts and not any("null_" in f for f in facts)


def test_caption_items_carry_caption_facts(facts_build: tuple[Path, dict, Path]) -> None:
    records = json.loads(facts_build[0].read_text())
    facts = [r for r in records if "caption_facts" in r]
    assert {r["qa_type"] for r in facts} == {"dense_captioning", "video_summary", "region_caption"}
    for rec in facts:
        f = rec["caption_facts"]
        assert rec["conversations"][1]["value"] == "" and f["source"] == rec["data_source"]
        assert set(f["keyframes"]) <= set(rec["video"]) and f["clip"]["fps"] == float(rec["metadata"]["fps"])
        if f["task"] == "rc":
            assert f["region"]["frame"] == rec["RC_info"]["start_frame"] == rec["video"][0]
            assert f["region"]["bbox"] == rec["RC_info"]["start_frame_bbox"]
        else:
            assert f["segments"] and all(0 <= s["start"] < s["end"] for s in f["segments"])


def test_captions_none_leaves_caption_tasks_out(release: Path, tmp_path: Path) -> None:
    manifest = build(release, tmp_path / "o.json")
    records = json.loads((tmp_path / "o.json").read_text())
    assert not any("caption_facts" in r for r in records)
    assert {r["qa_type"] for r in records} == {"tal", "next_action", "stg", "cvs_assessment", "skill_assessment"}
    assert manifest["frames"] == {"frames_out": None}


def test_rerun_resumes_extraction(release: Path, facts_build: tuple[Path, dict, Path], tmp_path: Path) -> None:
    frames = tmp_path / "data"
    shutil.copytree(facts_build[2], frames, symlinks=True)
    partial = frames / "NurViD" / "frames_1fps" / fx.NURVID_ID
    (partial / ".done").unlink()
    last = sorted(partial.glob("*.jpg"))[-1]
    last.unlink()
    manifest = build(release, tmp_path / "o.json", "--captions", "facts", "--frames-out", str(frames))
    assert manifest["frames"]["resumed"] == manifest["frames"]["extracted"] - 1
    assert last.is_file() and (partial / ".done").is_file()
    assert json.loads((tmp_path / "o.json").read_text()) == json.loads(facts_build[0].read_text())


def test_exclude_test_drops_every_clip_of_test_videos_across_cholec80_sources(release: Path, tmp_path: Path) -> None:
    test = [{"conversations": [], "metadata": {"video_id": "video01", "fps": "1.0"}, "qa_type": "tal",
             "data_source": "Cholec80-CVS"},
            {"metadata": {"video_id": fx.AVOS_ID}, "data_source": "AVOS"}]
    (tmp_path / "test.json").write_text(json.dumps(test))
    full = build(release, tmp_path / "full.json")
    manifest = build(release, tmp_path / "o.json", "--exclude-test", str(tmp_path / "test.json"))
    records = json.loads((tmp_path / "o.json").read_text())
    kept = {(r["data_source"], r["metadata"]["video_id"]) for r in records}
    assert ("CholecT50", "VID01") not in kept and ("Cholec80-CVS", "video01") not in kept
    assert ("AVOS", fx.AVOS_ID) not in kept and ("CholecTrack20", "vid02") in kept
    assert manifest["excluded"]["videos"] == 3 and manifest["excluded"]["test_videos"] == 2
    assert manifest["records"] + manifest["excluded"]["records"] == full["records"]


def test_standard_split_caps_per_source_and_task(release: Path, tmp_path: Path) -> None:
    cfg = yaml.safe_load((release / "config.yaml").read_text())
    for src in cfg["sources"].values():
        for settings in src["tasks"].values():
            settings["cap"] = 2
    cfg["sources"]["CoPESD"]["tasks"]["STG"]["cap"] = 0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    args = ["--all", str(release / "sources.yaml"), "--config", str(tmp_path / "c.yaml"), "--split", "standard"]
    assert main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.json")]) == 0
    assert main([*args, "--out", str(tmp_path / "c.json"), "--seed", "7"]) == 0
    manifest = json.loads((tmp_path / "a.manifest.json").read_text())
    counts = manifest["counts"]
    assert all(sum(f.values()) <= 2 for per_task in counts.values() for f in per_task.values())
    assert "STG" not in counts["CoPESD"] and counts["CholecT50"]["TAG"] == {"0.5": 2}
    assert manifest["records"] < manifest["records_large"]
    a, b, c = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc")
    assert a == b and a != c


def test_limit_videos_and_canonical_round_trip(release: Path, tmp_path: Path) -> None:
    from data_preprocess.builder.adapters import get_adapter
    from data_preprocess.builder.canonical import write_canonical

    read = get_adapter("cholect50").read(release / "cholect50", None)
    write_canonical(read.videos, tmp_path / "canon" / "cholect50.json")
    (tmp_path / "canon" / "videos").symlink_to(release / "cholect50" / "videos")
    cfg = str(release / "config.yaml")
    assert main(["--source", "cholect50", "--root", str(release / "cholect50"), "--out", str(tmp_path / "a.json"),
                 "--config", cfg, "--limit-videos", "1"]) == 0
    assert main(["--source", "canonical", "--root", str(tmp_path / "canon"), "--out", str(tmp_path / "b.json"),
                 "--config", cfg]) == 0
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())


@pytest.mark.parametrize(("argv", "message"), [
    (["--source", "nurvid", "--root", "{tmp}/missing"], "missing: entry -: field '<root>': missing"),
    (["--source", "nurvid", "--root", "{tmp}/in"], "NurViD_annotations.json: entry -: field '<file>': missing"),
    (["--source", "nurvid"], "--root is required with --source"),
    (["--source", "canonical", "--root", "{tmp}/in", "--config", "{tmp}/bad.yaml"],
     "task_defaults.TAG: unknown key(s) ['clip_length']"),
    (["--source", "canonical", "--root", "{tmp}/in"], "no canonical *.json file found"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           argv: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("task_defaults:\n  TAG: {clip_length: 10}\n")
    (tmp_path / "in").mkdir()
    out = tmp_path / "out" / "out.json"
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_data_root_serves_one_release_per_source(release: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    other = fx.cholect50(tmp_path / "other_copy")
    common = ["--config", str(release / "config.yaml"), "--frames-out", str(tmp_path / "data")]
    assert main(["--source", "cholect50", "--root", str(release / "cholect50"), "--out", str(tmp_path / "a.json"),
                 *common]) == 0
    assert (tmp_path / "data" / "CholecT50" / "videos").resolve() == (release / "cholect50" / "videos").resolve()
    manifest = json.loads((tmp_path / "a.manifest.json").read_text())
    assert list(manifest["licences"]) == ["CholecT50"]
    assert main(["--source", "cholect50", "--root", str(other), "--out", str(tmp_path / "b.json"), *common]) == 2
    assert "remove the link or use another --frames-out" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_an_unreadable_video_drops_its_records_and_is_reported(release: Path, tmp_path: Path) -> None:
    root = fx.egosurgery(tmp_path / "ego", tmp_path / "videos")
    (tmp_path / "videos" / f"{fx.EGO_ID}.mp4").write_bytes(b"not a video")
    out = tmp_path / "o.json"
    assert main(["--source", "egosurgery", "--root", str(root), "--videos", str(tmp_path / "videos"),
                 "--out", str(out), "--config", str(release / "config.yaml"), "--frames-out",
                 str(tmp_path / "data")]) == 0
    manifest = json.loads((tmp_path / "o.manifest.json").read_text())
    assert manifest["records"] == 0 and json.loads(out.read_text()) == []
    assert set(manifest["dropped"]["EgoSurgery"]["TAG"]) == {"video file unreadable (see frames.errors)"}
    (error,) = manifest["frames"]["errors"].values()
    assert "Invalid data" in error


@pytest.mark.parametrize(("change", "field"), [
    ({"duration": float("nan")}, "duration"),
    ({"frames": {"kind": "stream", "path": "x"}}, "frames.kind"),
    ({"boxes": [{"time": 0, "label": "a", "track": "1", "xyxy": [0, 0, float("inf"), 1]}]}, "boxes[0].xyxy"),
    ({"scores": [{"start": 0, "end": 5, "kind": "cvs", "values": {"two_structures": 1}}]}, "scores[0].values"),
    ({"segments": [{"label": "a", "start": 0, "end": 5, "kind": "chapter"}]}, "segments[0].kind"),
])
def test_canonical_input_is_checked_field_by_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    change: dict, field: str) -> None:
    video = {"source": "CholecT50", "video_id": "V1", "fps": 1.0, "duration": 10.0,
             "frames": {"kind": "folder", "path": "f"}, **change}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "v.json").write_text(json.dumps([video]))
    assert main(["--source", "canonical", "--root", str(tmp_path / "in"), "--out", str(tmp_path / "o.json")]) == 2
    assert f"v.json: entry 0: field '{field}'" in capsys.readouterr().err


def test_a_video_listed_twice_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = {"source": "CholecT50", "video_id": "V1", "fps": 1.0, "duration": 10.0,
             "frames": {"kind": "folder", "path": "f"}}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "v.json").write_text(json.dumps([video, video]))
    assert main(["--source", "canonical", "--root", str(tmp_path / "in"), "--out", str(tmp_path / "o.json")]) == 2
    assert "entry V1: field 'video_id': CholecT50 video listed twice" in capsys.readouterr().err


@pytest.mark.parametrize(("source", "video_id", "key"), [
    ("CholecT50", "VID01", "cholec80:1"), ("CholecTrack20", "vid01", "cholec80:1"),
    ("Cholec80-CVS", "video01", "cholec80:1"), ("CholecT50", "VID111", "cholec80:111"),
    ("AVOS", "kcOqlifSukA", "AVOS:kcoqlifsuka"), ("NurViD", " AbC ", "NurViD:abc"),
])
def test_video_keys_join_the_cholec80_family(source: str, video_id: str, key: str) -> None:
    from data_preprocess.builder.selection import video_key

    assert video_key(source, video_id) == key


def test_exclude_test_normalizes_ids_and_source_spelling(release: Path, tmp_path: Path) -> None:
    test = [{"metadata": {"video_id": f"{fx.COPESD_FOLDER}_part3"}, "data_source": "copesd"},
            {"metadata": {"video_id": fx.EGO_TAKE.upper()}, "data_source": "Egosurgery"},
            {"metadata": {"video_id": f" {fx.NURVID_ID.upper()}.mp4"}, "data_source": "NurViD"},
            {"metadata": {"video_id": "zzzzzzzzzzz"}, "data_source": "NurViD"}]
    (tmp_path / "test.json").write_text(json.dumps(test))
    manifest = build(release, tmp_path / "o.json", "--exclude-test", str(tmp_path / "test.json"))
    kept = {r["data_source"] for r in json.loads((tmp_path / "o.json").read_text())}
    assert not {"CoPESD", "EgoSurgery", "NurViD"} & kept
    assert manifest["excluded"]["matches"] == {
        "CoPESD": {"test_videos": 1, "built_videos": 1, "matched": 1, "matched_any_source": 1},
        "EgoSurgery": {"test_videos": 1, "built_videos": 1, "matched": 1, "matched_any_source": 1},
        "NurViD": {"test_videos": 2, "built_videos": 1, "matched": 1, "matched_any_source": 1}}
    assert manifest["excluded"]["videos"] == 3


def test_exclude_test_matching_nothing_of_a_built_source_is_an_error(release: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test.json").write_text(json.dumps([{"metadata": {"video_id": "Ego_07"}, "data_source": "EgoSurgery"},
                                                    {"metadata": {"video_id": "x"}, "data_source": "AVOS"}]))
    argv = ["--all", str(release / "sources.yaml"), "--config", str(release / "config.yaml"),
            "--exclude-test", str(tmp_path / "test.json"), "--out", str(tmp_path / "o.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--exclude-test: none of the 1 AVOS test videos matches one of the 1 built AVOS videos" in err
    assert not (tmp_path / "o.json").exists()
    assert main([*argv, "--allow-no-match"]) == 0
    manifest = json.loads((tmp_path / "o.manifest.json").read_text())
    assert manifest["warnings"]["build"]["--exclude-test: no EgoSurgery test video matched a built one "
                                         "(--allow-no-match)"] == 1
    assert "--exclude-test EgoSurgery: 0 of 1 test videos matched among 1 built" in capsys.readouterr().out


def test_exclude_test_with_an_unknown_source_names_the_record(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test.json").write_text(json.dumps([{"metadata": {"video_id": "a"}, "data_source": "Cholec81"}]))
    (tmp_path / "root").mkdir()  # outputs may not lie inside --root
    assert main(["--source", "canonical", "--root", str(tmp_path / "root"), "--exclude-test",
                 str(tmp_path / "test.json"), "--out", str(tmp_path / "out" / "o.json")]) == 2
    assert "test.json: entry 0: field 'data_source': 'Cholec81' names no MedVidBench source" in capsys.readouterr().err


@pytest.mark.parametrize(("video_id", "normal"), [
    ("014014_part0", "014014"), ("Case01-Part_2", "case01"), (" AbC.mp4 ", "abc"), ("x_part1_part2", "x"),
    ("Suturing_B001", "suturing_b001"), ("01_1", "01_1"), ("depart1", "depart1"), ("a.mp4_part1", "a"),
])
def test_normalize_id(video_id: str, normal: str) -> None:
    from data_preprocess.builder.selection import normalize_id

    assert normalize_id(video_id) == normal


def test_normalize_id_is_idempotent_and_source_names_resolve() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from data_preprocess.builder.selection import normalize_id, source_name
    from reward_fns.registry import SOURCES

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40))
    def check(text: str) -> None:
        assert normalize_id(normalize_id(text)) == normalize_id(text)

    check()
    for name in SOURCES:
        for spelling in (name, name.lower(), name.upper(), name.replace("-", "_"), f" {name} "):
            assert source_name(spelling) == name
    assert source_name("Cholec81") is None


def test_plan_prints_records_frames_and_disk_and_extracts_nothing(release: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from data_preprocess.builder.plan import jpeg_bytes

    out, frames = tmp_path / "o.json", tmp_path / "data"
    argv = ["--all", str(release / "sources.yaml"), "--config", str(release / "config.yaml"), "--captions", "facts",
            "--frames-out", str(frames), "--out", str(out)]
    assert main([*argv, "--plan"]) == 0
    printed = capsys.readouterr().out
    assert not out.exists() and not frames.exists()
    plan = json.loads(out.with_name("o.plan.json").read_text())
    total = plan["total"]
    assert printed.startswith(f"plan: {total['records']} records ({total['records_final']} final) naming "
                              f"{total['frames']} frame files")
    assert "disk for the extracted JPEGs: about" in printed
    assert total["frames"] == total["frames_in_place"] + total["frames_to_extract"] + total["frames_on_disk"]
    assert total["frames_on_disk"] == 0 and total["videos_not_found"] == 0
    ct20 = plan["per_source"]["CholecTrack20"]  # the Testing MP4 (854x480) resized to 224x112
    nurvid = plan["per_source"]["NurViD"]  # 64x36: kept as is
    assert ct20["disk_bytes"] == ct20["frames_to_extract"] * jpeg_bytes(224, 112)
    assert nurvid["disk_bytes"] == nurvid["frames_to_extract"] * jpeg_bytes(64, 36)
    assert main(argv) == 0  # the build itself writes exactly the planned frames
    manifest = json.loads(out.with_name("o.manifest.json").read_text())
    assert manifest["frames"]["written"] == total["frames_to_extract"]
    assert manifest["records"] == total["records"]
    assert main([*argv, "--plan"]) == 0
    again = json.loads(out.with_name("o.plan.json").read_text())["total"]
    assert again["frames_to_extract"] == 0 and again["frames_on_disk"] == total["frames_to_extract"]


def test_records_naming_a_missing_release_frame_are_dropped(tmp_path: Path) -> None:
    root = fx.cholect50(tmp_path / "ct50")
    (root / "videos" / "VID01" / "000014.png").unlink()
    out = tmp_path / "o.json"
    assert main(["--source", "cholect50", "--root", str(root), "--out", str(out), "--frames-out",
                 str(tmp_path / "data"), "--config", str(fx.small_config(tmp_path / "c.yaml"))]) == 0
    manifest = json.loads((tmp_path / "o.manifest.json").read_text())
    assert manifest["frames"]["missing_frames"] == 1
    assert manifest["dropped"]["CholecT50"]["TAG"]["frame files missing from the release folder"] > 0
    for rec in json.loads(out.read_text()):
        assert all((tmp_path / "data" / p).is_file() for p in rec["video"])
