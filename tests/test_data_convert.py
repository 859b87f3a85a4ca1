"""The converter end to end on the toy set: verl row schema, ground truth, splits, RC overlay, atomicity."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_preprocess import medvidbench
from data_preprocess.convert import ConvertConfig, convert
from data_preprocess.manifest import OUTPUTS
from reward_fns.reference import RecordError, Reference, reference_from_record, sample_id
from testbed import toy

EXTRA_KEYS = {"index", "id", "qa_type", "data_source", "task", "fps", "split"}


def run(toy_dir: Path, out: Path, records: list | None = None, compact: bool = False, **kw) -> dict:
    """Convert the toy set (or `records` with the toy frames) into `out`."""
    source = toy_dir / toy.TOY_FILE
    if records is not None:
        source = out.parent / f"{out.name}_input.json"
        source.write_text(json.dumps(records, separators=(",", ":")) if compact else json.dumps(records, indent=1))
    cfg = ConvertConfig(input=str(source), data_root=str(toy_dir), out_dir=str(out), **kw)
    return convert(cfg)


def table(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / f"{name}.parquet").to_pylist()


@pytest.fixture(scope="module")
def toy_records(toy_dataset_dir: Path) -> list[dict]:
    return json.loads((toy_dataset_dir / toy.TOY_FILE).read_text())


@pytest.fixture(scope="module")
def converted(toy_dataset_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("converted")
    return out, run(toy_dataset_dir, out, val_fraction=0.3)


def test_outputs_and_manifest(converted) -> None:
    out, manifest = converted
    assert {p.name for p in out.glob("*.parquet")} == {f"{n}.parquet" for n in OUTPUTS}
    assert not list(out.glob(".*tmp*"))
    assert {"counts", "video_spec", "input_sha256", "rejected", "prompt_tokens"} <= set(manifest)
    for name in OUTPUTS:
        rows = table(out, name)
        assert manifest["counts"][name]["total"] == len(rows) == manifest["rows_written"][name]
        assert sum(manifest["counts"][name]["by_task"].values()) == len(rows)
    assert manifest["counts"]["rl_val"]["total"] > 0 and manifest["counts"]["rl_train"]["total"] > 0
    tokens = manifest["prompt_tokens"]["per_task"]
    assert set(tokens) == {"CVS", "NAP", "SA", "STG", "TAG", "DVC", "VS", "RC"}
    assert all(0 < t["p50"] <= t["p95"] <= t["max"] for t in tokens.values())


def test_rl_rows_follow_verls_schema(converted, toy_records) -> None:
    out, _ = converted
    rows = table(out, "rl_train") + table(out, "rl_val")
    video_keys = {"video", "fps", "sample_fps", "min_pixels", "max_pixels"}
    for row in rows:
        rec = toy_records[row["extra_info"]["index"]]
        assert row["data_source"] == rec["data_source"] and row["ability"] == row["extra_info"]["task"]
        assert row["prompt"] == [{"role": "user", "content": rec["conversations"][0]["value"]}]
        assert row["prompt"][0]["content"].count("<video>") == 1
        assert len(row["videos"]) == 1 and set(row["videos"][0]) == video_keys
        assert None not in row["videos"][0].values()
        assert all(Path(f).is_absolute() and Path(f).is_file() for f in row["videos"][0]["video"])
        assert row["videos"][0]["min_pixels"] == 8 * 28 * 28 and row["videos"][0]["max_pixels"] == 48 * 28 * 28
        assert set(row["extra_info"]) == EXTRA_KEYS and row["extra_info"]["id"] == sample_id(rec)
        assert row["reward_model"]["style"] == "rule"
        gt = Reference.from_json(row["reward_model"]["ground_truth"])
        expected = reference_from_record(rec, row["extra_info"]["index"], nap_classes=gt.nap_classes)
        assert row["reward_model"]["ground_truth"] == expected.to_json()
        assert (gt.nap_classes is not None) == (rec["qa_type"] == "next_action")


def test_sft_rows(converted, toy_records) -> None:
    out, _ = converted
    for row in table(out, "sft_train"):
        rec = toy_records[row["extra_info"]["index"]]
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["messages"][1]["content"] == rec["conversations"][1]["value"]
        assert len(row["videos"]) == 1


def test_the_split_never_leaks_a_video(converted) -> None:
    out, manifest = converted
    train = {r["extra_info"]["id"].split("&&")[0] for r in table(out, "sft_train")}
    val = {r["extra_info"]["id"].split("&&")[0] for r in table(out, "sft_val")}
    assert train and val and not train & val
    assert manifest["split"]["val_videos"] == len(val)


def test_region_caption_box_is_drawn_where_the_box_is(converted, toy_records) -> None:
    out, _ = converted
    row = next(r for r in table(out, "rl_train") + table(out, "rl_val") if r["ability"] == "RC")
    rec = toy_records[row["extra_info"]["index"]]
    x1, y1, x2, y2 = rec["RC_info"]["start_frame_bbox"]
    frames = row["videos"][0]["video"]
    drawn = [f for f in frames if "rc_frames" in f]
    assert len(drawn) == 1 and Path(drawn[0]).is_relative_to(out / "rc_frames")
    pixels = np.asarray(Image.open(drawn[0]).convert("RGB"), dtype=int)
    source = np.asarray(Image.open(Path(frames[0]).parent / Path(rec["RC_info"]["start_frame"]).name), dtype=int)
    green = (pixels[..., 1] > 180) & (pixels[..., 0] < 90) & (pixels[..., 2] < 90)
    assert green[y1 + 1:y1 + 7, x1 + 4:x2 - 4].mean() > 0.9 and green[y2 - 7:y2 - 1, x1 + 4:x2 - 4].mean() > 0.9
    assert green[y1 + 4:y2 - 4, x1 + 1:x1 + 7].mean() > 0.9 and green[y1 + 4:y2 - 4, x2 - 7:x2 - 1].mean() > 0.9
    assert not green[y1 + 10:y2 - 10, x1 + 10:x2 - 10].any()  # the line is 8 px wide, drawn inside the box
    outside = np.ones(green.shape, dtype=bool)
    outside[max(0, y1 - 2):y2 + 3, max(0, x1 - 2):x2 + 3] = False
    assert not green[outside].any() and np.abs(pixels - source)[outside].mean() < 6


def test_deterministic_and_same_in_workers(toy_dataset_dir: Path, converted, tmp_path: Path) -> None:
    out, _ = converted
    again = run(toy_dataset_dir, tmp_path / "again", val_fraction=0.3, workers=2, chunk_bytes=4096)

    def rows(folder: Path, name: str) -> str:  # rows by record index, the output folder's name masked
        ordered = sorted(table(folder, name), key=lambda r: r["extra_info"]["index"])
        return json.dumps(ordered).replace(str(folder), "OUT")

    for name in OUTPUTS:
        assert rows(out, name) == rows(tmp_path / "again", name)
    assert again["counts"] == converted[1]["counts"]


def test_empty_box_dict_stays_in_sft_but_not_rl(toy_dataset_dir, toy_records, tmp_path) -> None:
    records = copy.deepcopy(toy_records)
    k = next(i for i, r in enumerate(records) if r["qa_type"] == "stg")
    records[k]["struc_info"][0]["bbox_dict"] = {}
    manifest = run(toy_dataset_dir, tmp_path / "out", records, val_fraction=0.0)
    assert manifest["rejected"] == [{"index": k, "id": sample_id(records[k]), "qa_type": "stg",
                                     "reason": "ground truth has an empty bbox_dict"}]
    assert k in {r["extra_info"]["index"] for r in table(tmp_path / "out", "sft_train")}
    assert k not in {r["extra_info"]["index"] for r in table(tmp_path / "out", "rl_train")}


BREAKS = {
    "video": (lambda r: r.update(video=[]), "video"),
    "frame": (lambda r: r["video"].__setitem__(0, 3), "video"),
    "answer": (lambda r: r.update(conversations=r["conversations"][:1]), "conversations"),
    "two videos": (lambda r: r["conversations"][0].update(value="<video><video>\nq"), "conversations"),
    "qa_type": (lambda r: r.update(qa_type="nope"), "qa_type"),
    "source": (lambda r: r.update(data_source="Elsewhere"), "data_source"),
    "fps": (lambda r: r["metadata"].update(fps="fast"), "metadata.fps"),
    "metadata": (lambda r: r.update(metadata=[]), "metadata"),
    "struc_info": (lambda r: r.update(struc_info={"a": 1}), "struc_info"),
}


@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_invalid_record_stops_the_run_with_file_index_and_field(toy_dataset_dir, toy_records, tmp_path,
                                                                kind) -> None:
    records = copy.deepcopy(toy_records)
    BREAKS[kind][0](records[7])
    with pytest.raises(RecordError) as err:
        run(toy_dataset_dir, tmp_path / "out", records)
    assert err.value.index == 7 and err.value.field == BREAKS[kind][1]
    assert "out_input.json" in str(err.value) and "record 7" in str(err.value)
    assert not list((tmp_path / "out").glob("*.parquet")) and not list((tmp_path / "out").glob(".*tmp*"))


def test_region_and_ground_truth_errors(toy_dataset_dir, toy_records, tmp_path) -> None:
    records = copy.deepcopy(toy_records)
    rc = next(i for i, r in enumerate(records) if r["is_RC"])
    records[rc]["RC_info"]["start_frame_bbox"] = [10, 10, 5, 40]
    stg = next(i for i, r in enumerate(records) if r["qa_type"] == "stg")
    records[stg]["struc_info"][0]["bbox_dict"] = {"0.0": ["a", "b", "c", "d"]}
    records.insert(0, "not a record")
    manifest = run(toy_dataset_dir, tmp_path / "out", records, skip_invalid=True)
    assert [(e["index"], e["field"]) for e in manifest["invalid"]] == [
        (0, "record"), (stg + 1, "struc_info"), (rc + 1, "RC_info.start_frame_bbox")]
    assert manifest["counts"]["sft_train"]["total"] + manifest["counts"]["sft_val"]["total"] == len(records) - 3


def test_missing_frames(toy_dataset_dir, toy_records, tmp_path) -> None:
    records = copy.deepcopy(toy_records)
    records[3]["video"][1] = "frames/nowhere/000001.jpg"
    with pytest.raises(RecordError, match="frame file"):
        run(toy_dataset_dir, tmp_path / "a", records)
    manifest = run(toy_dataset_dir, tmp_path / "b", records, check_frames=False)
    assert manifest["counts"]["sft_train"]["total"] + manifest["counts"]["sft_val"]["total"] == len(records)


def test_a_failed_run_keeps_the_previous_outputs(toy_dataset_dir, toy_records, tmp_path) -> None:
    out = tmp_path / "out"
    run(toy_dataset_dir, out)
    before = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    records = copy.deepcopy(toy_records)
    records[-1]["video"] = "not a list"
    with pytest.raises(RecordError):
        run(toy_dataset_dir, out, records)
    assert {p.name: p.read_bytes() for p in out.glob("*.parquet")} == before
    assert not list(out.glob(".*tmp*"))


def test_egosurgery_classes_are_the_files_answers(toy_dataset_dir, toy_records, tmp_path) -> None:
    records = copy.deepcopy(toy_records)
    ego = next(r for r in records if r["qa_type"] == "next_action" and r["data_source"] == "EgoSurgery")
    other = copy.deepcopy(ego)
    other["conversations"][1]["value"] = other["struc_info"][0]["next_action"] = "zz-closing"
    records.append(other)
    run(toy_dataset_dir, tmp_path / "out", records, workers=2, chunk_bytes=2048)
    rows = [r for r in table(tmp_path / "out", "rl_train") + table(tmp_path / "out", "rl_val")
            if r["data_source"] == "EgoSurgery" and r["ability"] == "NAP"]
    classes = {tuple(Reference.from_json(r["reward_model"]["ground_truth"]).nap_classes) for r in rows}
    assert len(rows) == 2 and classes == {tuple(sorted({ego["conversations"][1]["value"], "zz-closing"}))}


def test_prompt_tokens_over_the_limit_are_reported(toy_dataset_dir, tmp_path) -> None:
    manifest = run(toy_dataset_dir, tmp_path / "out", max_prompt_tokens=200)
    tok = manifest["prompt_tokens"]
    assert tok["over_limit_total"] == sum(t["over_limit"] for t in tok["per_task"].values()) > 0
    assert all(r["prompt_tokens"] > 200 for r in tok["over_limit_rows"])


def test_standard_split(toy_dataset_dir, tmp_path) -> None:
    manifest = run(toy_dataset_dir, tmp_path / "out", split="standard", standard_size=20, workers=2,
                   chunk_bytes=4096)
    table_ = manifest["split"]["standard"]
    per_task = {task: sum(cells.values()) for task, cells in table_.items()}
    assert sum(per_task.values()) == 20 and max(per_task.values()) - min(per_task.values()) <= 1
    counts = manifest["counts"]
    assert counts["sft_train"]["total"] + counts["sft_val"]["total"] == 20


def test_cli(toy_dataset_dir, toy_records, tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    assert medvidbench.main(["--input", str(toy_dataset_dir / toy.TOY_FILE), "--out-dir", str(out)]) == 0
    assert "rl_train" in capsys.readouterr().out
    records = copy.deepcopy(toy_records)
    records[2]["qa_type"] = 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(records))
    args = ["--input", str(bad), "--data-root", str(toy_dataset_dir), "--out-dir", str(out)]
    assert medvidbench.main(args) == 2
    assert "record 2: field 'qa_type'" in capsys.readouterr().err
    assert medvidbench.main([*args, "--skip-invalid"]) == 0
    assert json.loads((out / "manifest.json").read_text())["invalid"][0]["index"] == 2
