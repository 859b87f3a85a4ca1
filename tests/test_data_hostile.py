"""Hostile and careless inputs to the converter: each gives a clear error naming the file, the record and
the field (or a manifest entry), never a traceback, a hang, a silent drop or mixed outputs."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_preprocess import medvidbench
from data_preprocess.convert import ConvertConfig, convert
from data_preprocess.outputs import OutputError, check_outputs, clean_stale
from reward_fns.reference import RecordError
from testbed import toy

OUTPUTS = ("rl_train", "rl_val", "sft_train", "sft_val")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records(toy_dataset_dir: Path) -> list[dict]:
    return json.loads((toy_dataset_dir / toy.TOY_FILE).read_text())


def first(records: list[dict], qa_type: str) -> int:
    return next(i for i, r in enumerate(records) if r["qa_type"] == qa_type)


def run(toy_dir: Path, out: Path, recs: list | bytes, **kw) -> dict:
    source = out.parent / f"{out.name}_input.json"
    source.write_bytes(recs if isinstance(recs, bytes) else json.dumps(recs).encode())
    return convert(ConvertConfig(input=str(source), data_root=str(toy_dir), out_dir=str(out), **kw))


def cli(toy_dir: Path, tmp_path: Path, data: bytes, capsys, *extra: str) -> tuple[int, str]:
    source = tmp_path / "input.json"
    source.write_bytes(data)
    code = medvidbench.main(["--input", str(source), "--data-root", str(toy_dir), "--out-dir",
                             str(tmp_path / "out"), *extra])
    return code, capsys.readouterr().err


def _set_fps(value):
    return lambda recs: recs[3]["metadata"].update(fps=value)


def _span(qa_type: str, edit):
    def apply(recs: list[dict]) -> int:
        k = first(recs, qa_type)
        edit(recs[k]["struc_info"])
        return k
    return apply


BREAKS = {  # name -> (edit returning the broken record's index or None for 3, field)
    "fps inf": (_set_fps("inf"), "metadata.fps"),
    "fps nan": (_set_fps("nan"), "metadata.fps"),
    "fps 0": (_set_fps("0"), "metadata.fps"),
    "fps -1": (_set_fps("-1"), "metadata.fps"),
    "TAG start > end": (_span("tal", lambda s: s[0]["spans"][0].update(start=50.0, end=10.0)), "struc_info"),
    "DVC start > end": (_span("dense_captioning_gpt", lambda s: s[0][0].update(start=9.0, end=2.0)), "struc_info"),
    "STG start > end": (_span("stg", lambda s: s[0].update(start=9.0, end=2.0)), "struc_info"),
    "STG box nan": (_span("stg", lambda s: s[0]["bbox_dict"].update({"0.0": ["nan", 1, 2, 3]})), "struc_info"),
    "frame path escapes": (lambda recs: recs[3]["video"].__setitem__(1, "../../../etc/passwd"), "video"),
    "absolute frame path": (lambda recs: recs[3]["video"].__setitem__(1, "/etc/hostname"), "video"),
    "NUL byte in a frame path": (lambda recs: recs[3]["video"].__setitem__(1, "frames/a\0b.jpg"), "video"),
    "frame path is a folder": (lambda recs: recs[3]["video"].__setitem__(1, "frames"), "video"),
}


def _rc_box_nan(recs: list[dict]) -> int:
    k = first(recs, "region_caption_gpt")
    recs[k]["RC_info"]["start_frame_bbox"] = ["nan", 1, 40, 40]
    return k


BREAKS["RC box nan"] = (_rc_box_nan, "RC_info.start_frame_bbox")


@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_bad_values_name_file_record_and_field(toy_dataset_dir, records, tmp_path, kind) -> None:
    recs = copy.deepcopy(records)
    edit, field = BREAKS[kind]
    index = edit(recs)
    index = 3 if index is None else index
    with pytest.raises(RecordError) as err:
        run(toy_dataset_dir, tmp_path / "out", recs)
    assert (err.value.index, err.value.field) == (index, field)
    assert f"out_input.json: record {index}: field '{field}'" in str(err.value)
    manifest = run(toy_dataset_dir, tmp_path / "skip", recs, skip_invalid=True)
    assert [(e["index"], e["field"]) for e in manifest["invalid"]] == [(index, field)]


def test_region_box_far_outside_the_image_is_clipped_quickly_and_reported(toy_dataset_dir, records,
                                                                          tmp_path) -> None:
    recs = copy.deepcopy(records)
    rcs = [i for i, r in enumerate(recs) if r["is_RC"]]
    recs[rcs[0]]["RC_info"]["start_frame_bbox"] = [-1e9, -1e9, 60, 50]
    recs[rcs[1]]["RC_info"]["start_frame_bbox"] = [1e9, 1e9, 2e9, 2e9]
    started = time.perf_counter()
    manifest = run(toy_dataset_dir, tmp_path / "out", recs, skip_invalid=True, val_fraction=0.0)
    assert time.perf_counter() - started < 20
    assert [(e["index"], e["field"]) for e in manifest["invalid"]] == [(rcs[1], "RC_info.start_frame_bbox")]
    assert "outside" in manifest["invalid"][0]["reason"]
    [clip] = manifest["clipped_boxes"]
    assert clip["index"] == rcs[0] and clip["clipped_to"] == [0.0, 0.0, 60.0, 50.0]
    row = next(r for r in pq.read_table(tmp_path / "out" / "rl_train.parquet").to_pylist()
               if r["extra_info"]["index"] == rcs[0])
    drawn = next(p for p in row["videos"][0]["video"] if "rc_frames" in p)
    with Image.open(drawn) as image:
        assert image.getpixel((2, 2))[1] > 200  # the clipped box edge lies on the image border


def test_empty_input_keeps_existing_outputs_unless_allowed(toy_dataset_dir, records, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    run(toy_dataset_dir, out, records[:6])
    before = {n: (out / f"{n}.parquet").read_bytes() for n in OUTPUTS}
    with pytest.raises(OutputError, match="--allow-empty"):
        run(toy_dataset_dir, out, [])
    code, err = cli(toy_dataset_dir, tmp_path, b"[]", capsys)
    assert code == 2 and err.count("\n") == 1 and "--allow-empty" in err
    bad = copy.deepcopy(records[:2])
    for rec in bad:
        rec["qa_type"] = "nope"
    with pytest.raises(OutputError, match="no valid record"):
        run(toy_dataset_dir, out, bad, skip_invalid=True)
    assert {n: (out / f"{n}.parquet").read_bytes() for n in OUTPUTS} == before
    manifest = run(toy_dataset_dir, out, [], allow_empty=True)
    assert manifest["rows_written"] == dict.fromkeys(OUTPUTS, 0)
    fresh = run(toy_dataset_dir, tmp_path / "fresh", [])
    assert fresh["input"]["records"] == 0


def test_duplicates_are_reported_and_dropped_with_dedupe(toy_dataset_dir, records, tmp_path) -> None:
    recs = [*records[:5], copy.deepcopy(records[2]), copy.deepcopy(records[4])]
    manifest = run(toy_dataset_dir, tmp_path / "kept", recs, val_fraction=0.0)
    assert manifest["duplicates"]["count"] == 2
    assert manifest["duplicates"]["listed"] == [{"index": 5, "duplicate_of": 2}, {"index": 6, "duplicate_of": 4}]
    assert manifest["counts"]["sft_train"]["total"] == 7
    deduped = run(toy_dataset_dir, tmp_path / "dropped", recs, val_fraction=0.0, dedupe=True)
    assert deduped["counts"]["sft_train"]["total"] == 5 and deduped["duplicates"]["dropped"]
    indices = [r["extra_info"]["index"] for r in pq.read_table(tmp_path / "dropped" / "sft_train.parquet").to_pylist()]
    assert sorted(indices) == [0, 1, 2, 3, 4]


def test_deeply_nested_json_is_a_one_line_error(toy_dataset_dir, tmp_path, capsys) -> None:
    deep = b'[{"struc_info": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"
    code, err = cli(toy_dataset_dir, tmp_path, deep, capsys)
    assert code == 2 and err.count("\n") == 1 and "input.json" in err and "nested too deep" in err


def test_non_utf8_bytes_name_the_record(toy_dataset_dir, records, tmp_path, capsys) -> None:
    recs = copy.deepcopy(records[:4])
    recs[1]["conversations"][1]["value"] = "BROKEN"
    data = json.dumps(recs).encode().replace(b"BROKEN", b"caf\xe9 latte")  # Latin-1, not UTF-8
    code, err = cli(toy_dataset_dir, tmp_path, data, capsys)
    assert code == 2 and err.count("\n") == 1
    assert "input.json: record 1: field 'record': not valid UTF-8" in err


def test_out_dir_that_is_a_file_is_a_one_line_error(toy_dataset_dir, records, tmp_path, capsys) -> None:
    (tmp_path / "out").write_text("I am a file")
    code, err = cli(toy_dataset_dir, tmp_path, json.dumps(records[:2]).encode(), capsys)
    assert code == 2 and err.count("\n") == 1 and "--out-dir" in err and str(tmp_path / "out") in err


def test_not_a_list_and_broken_json_are_one_line_errors(toy_dataset_dir, tmp_path, capsys) -> None:
    for data, words in ((b'{"a": 1}', "not a JSON list"), (b'[{"a": 1},', "not valid JSON"), (b"", "not valid")):
        code, err = cli(toy_dataset_dir, tmp_path, data, capsys)
        assert code == 2 and err.count("\n") == 1 and "input.json" in err and words in err


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def test_outputs_are_plain_files_and_debris_of_dead_runs_is_removed(toy_dataset_dir, records, tmp_path) -> None:
    out = tmp_path / "out"
    run(toy_dataset_dir, out, records[:6])
    dead = _dead_pid()
    debris = [out / f".rl_train.parquet.tmp-{dead}", out / f".manifest.json.tmp-{dead}"]
    for path in debris:
        path.write_text("half")
    alive = out / f".rl_val.parquet.tmp-{os.getppid()}"
    alive.write_text("a live run's")
    spill = tmp_path / "shm" / "medgrpo-spill-abc"
    spill.mkdir(parents=True)
    os.utime(spill, (time.time() - 3600, time.time() - 3600))
    manifest = run(toy_dataset_dir, out, records[:8])
    assert not any(p.exists() for p in debris) and alive.exists()  # a live process's temp file is left alone
    assert clean_stale(out, [str(tmp_path / "shm")]) == [str(spill)] and not spill.exists()
    names = [f"{n}.parquet" for n in OUTPUTS] + ["manifest.json"]
    assert all((out / n).is_file() and not (out / n).is_symlink() for n in names)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [] and check_outputs(out) == manifest
    assert json.loads((out / "manifest.json").read_text())["conversion"] == manifest["conversion"]


def test_a_crash_before_the_first_replacement_leaves_the_previous_outputs(toy_dataset_dir, records, tmp_path,
                                                                         monkeypatch) -> None:
    out = tmp_path / "out"
    run(toy_dataset_dir, out, records[:6])
    before = _files(out)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)  # everything written, nothing replaced
    with pytest.raises(KeyboardInterrupt):
        run(toy_dataset_dir, out, records[:9])
    monkeypatch.undo()
    assert _files(out) == before and check_outputs(out) is not None  # temp files removed, outputs intact


def test_a_conversion_interrupted_between_two_files_is_named_by_the_readers(toy_dataset_dir, records, tmp_path,
                                                                           monkeypatch) -> None:
    out = tmp_path / "out"
    run(toy_dataset_dir, out, records[:6])
    replace, done = os.replace, []

    def replace_one_then_die(src, dst):
        if done:
            raise KeyboardInterrupt  # killed after the first output was replaced
        done.append(dst)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_one_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(toy_dataset_dir, out, records[:9])
    monkeypatch.undo()
    assert done == [out / "rl_train.parquet"]
    with pytest.raises(OutputError, match=r"rl_train\.parquet: not the file .*manifest\.json describes .*"
                                          r"interrupted midway; run it again"):
        check_outputs(out)
    from omegaconf import OmegaConf

    from recipes.checks import Report, check_data_files

    report = Report()  # the dry run (a launch's preflight) reads the data through the same check
    cfg = OmegaConf.create({"data": {"train_files": str(out / "rl_train.parquet"), "val_files": None,
                                     "prompt_key": "prompt", "video_key": "videos"}})
    assert check_data_files(cfg, "ppo", report) == [] and "rl_train.parquet: not the file" in report.errors[-1]
    manifest = run(toy_dataset_dir, out, records[:9])  # the next run repairs the folder
    assert check_outputs(out) == manifest


def test_a_copied_output_folder_converts_again(toy_dataset_dir, records, tmp_path) -> None:
    out, copy_ = tmp_path / "out", tmp_path / "copy"
    first = run(toy_dataset_dir, out, records[:6])
    shutil.copytree(out, copy_)
    assert check_outputs(copy_) == first  # the copy is a complete output folder
    manifest = run(toy_dataset_dir, copy_, records[:9])
    assert check_outputs(copy_) == manifest and manifest["conversion"] != first["conversion"]
    assert sum(manifest["rows_written"].values()) > sum(first["rows_written"].values())
    assert check_outputs(out) == first  # the original is untouched


def test_an_old_symlinked_layout_and_its_copy_become_plain_files(toy_dataset_dir, records, tmp_path) -> None:
    """Converters before 2027-01 wrote `name -> .current/name` and `.current -> .gen-<time>-<pid>/`; a
    copy that followed the links turned `.current` into a folder."""
    old = tmp_path / "old"
    run(toy_dataset_dir, old, records[:6])
    generation = old / ".gen-1-1"
    generation.mkdir()
    for name in [f"{n}.parquet" for n in OUTPUTS] + ["manifest.json"]:
        (old / name).rename(generation / name)
        (old / name).symlink_to(Path(".current") / name)
    (old / ".current").symlink_to(generation.name)
    copied = tmp_path / "copied"
    shutil.copytree(old, copied)
    assert (copied / ".current").is_dir() and not (copied / ".current").is_symlink()
    for out in (old, copied):
        manifest = run(toy_dataset_dir, out, records[:8])
        assert not any(p.is_symlink() or p.is_dir() for p in out.iterdir()) and check_outputs(out) == manifest


def test_kill_9_while_writing_keeps_the_previous_outputs_and_the_next_run_cleans_up(toy_dataset_dir, records,
                                                                                    tmp_path) -> None:
    out = tmp_path / "out"
    run(toy_dataset_dir, out, records[:6])
    before = _files(out)
    source = tmp_path / "big.json"
    source.write_text(json.dumps([dict(r, extra=k) for k in range(20) for r in records]))  # 1,100 records
    proc = subprocess.Popen([sys.executable, "-m", "data_preprocess.medvidbench", "--input", str(source),
                             "--data-root", str(toy_dataset_dir), "--out-dir", str(out), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    temp = out / f".rl_train.parquet.tmp-{proc.pid}"
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not temp.exists():
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    assert temp.exists()  # killed while writing its temp files
    assert {k: v for k, v in _files(out).items() if not k.startswith(".")} == before
    run(toy_dataset_dir, out, records[:8])
    assert not temp.exists()
