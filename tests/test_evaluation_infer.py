"""`evaluation.infer` on CPU: a tiny random Qwen2.5-VL on the toy MedVidBench (transformers backend), from the
GT JSON (predictions) and from the RL parquet (sampled rollouts feeding `reward_fns.calibrate`)."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from data_preprocess import medvidbench
from data_preprocess.rc_overlay import GREEN
from data_preprocess.video_spec import VideoSpec
from evaluation import infer, score_submission, submission
from evaluation.infer_output import PredictionLog
from evaluation.infer_requests import RequestBuilder, read_records, read_rl_requests, validate
from reward_fns import calibrate
from reward_fns.reference import sample_id

ROOT = Path(__file__).resolve().parents[1]
# GT subset: position 2 is a region caption, so a --limit 3 run covers the overlay
SUBSET = ("cvs_assessment", "tal", "region_caption_gpt", "stg")
LIMIT = 3




def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, toy_subset, tiny_qwen25vl_dir: Path) -> types.SimpleNamespace:
    """Toy data (GT subset + its --limit prefix, beside the frames of the session's toy set) and the
    session's tiny model."""
    base = tmp_path_factory.mktemp("infer")
    toy_json = toy_subset(1)
    records = json.loads(toy_json.read_text())
    subset = [next(r for r in records if r["qa_type"] == qa) for qa in SUBSET]
    gt = _write(toy_json.with_name("infer_gt.json"), subset)
    prefix = _write(toy_json.with_name("infer_gt_prefix.json"), subset[:LIMIT])
    return types.SimpleNamespace(base=base, records=subset, gt=gt, prefix=prefix, model=tiny_qwen25vl_dir,
                                 toy=toy_json)


def _infer(env: types.SimpleNamespace, out: Path, *extra: str, data: Path | None = None) -> int:
    return infer.main(["--model", str(env.model), "--data", str(data or env.gt), "--out", str(out),
                       "--max-new-tokens", "4", *extra])


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def predicted(env: types.SimpleNamespace) -> Path:
    """One CPU run of the first LIMIT records, two per generate call."""
    out = env.base / "run" / "pred.jsonl"
    assert _infer(env, out, "--limit", str(LIMIT), "--batch-size", "2") == 0
    return out


def test_rows_name_each_record(env: types.SimpleNamespace, predicted: Path) -> None:
    rows = _lines(predicted)
    assert [r["index"] for r in rows] == list(range(LIMIT))
    for row, record in zip(rows, env.records, strict=False):
        assert set(row) == {"index", "id", "qa_type", "data_source", "prediction"}
        assert (row["id"], row["qa_type"], row["data_source"]) == (
            sample_id(record), record["qa_type"], record["data_source"])
        assert isinstance(row["prediction"], str)
    assert list((predicted.parent / "rc_frames").rglob("*.jpg")), "the RC record's boxed frame was drawn"


def test_resume_skips_done_and_redoes_a_deleted_line(env: types.SimpleNamespace, predicted: Path,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pred.jsonl"
    shutil.copy(predicted, out)
    before = out.read_bytes()
    assert _infer(env, out, "--limit", str(LIMIT)) == 0
    assert out.read_bytes() == before
    assert "0 generated, 3 already done" in capsys.readouterr().out
    rows = _lines(out)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows if r["index"] != 1), encoding="utf-8")
    assert _infer(env, out, "--limit", str(LIMIT)) == 0
    assert "1 generated, 2 already done" in capsys.readouterr().out
    again = _lines(out)
    assert [r["index"] for r in again] == [0, 2, 1]
    assert again[:2] == [rows[0], rows[2]]
    assert again[2] == rows[1], "greedy: the redone record (alone) matches its batched answer"


def test_predictions_feed_submission_and_scorer(env: types.SimpleNamespace, predicted: Path,
                                                tmp_path: Path) -> None:
    sub = tmp_path / "sub.json"
    submission.main(["--pred", str(predicted), "--out", str(sub), "--gt", str(env.prefix)])
    assert [r["qa_type"] for r in json.loads(sub.read_text())] == list(SUBSET[:LIMIT])
    report = score_submission.run(["--gt", str(env.prefix), "--pred", str(sub), "--judge", "none",
                        "--out", str(tmp_path / "metrics.json")])
    assert isinstance(report.columns["tag_miou_03"], float)  # TAG counts every record, parsed or not
    assert (tmp_path / "metrics.json").exists()


def test_json_out_is_an_ordered_list(env: types.SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "pred.json"
    assert _infer(env, out, "--limit", "2") == 0
    rows = json.loads(out.read_text())
    assert [r["index"] for r in rows] == [0, 1]
    assert len(_lines(tmp_path / "pred.json.progress.jsonl")) == 2


def test_prompts_match_training_rows(env: types.SimpleNamespace, tmp_path: Path) -> None:
    """Same VideoSpec file for preprocessing and inference: verl builds the identical chat from the parquet."""
    import pyarrow.parquet as pq
    from verl.utils.dataset.rl_dataset import RLHFDataset

    spec_file = _write(tmp_path / "spec.json", {"fps": 1.0, "max_frames": 6})
    pre = tmp_path / "pre"
    assert medvidbench.main(["--input", str(env.gt), "--out-dir", str(pre), "--workers", "1",
                             "--val-fraction", "0", "--video-spec", str(spec_file)]) == 0
    rows = pq.read_table(pre / "rl_train.parquet").to_pylist()
    records = read_records(env.gt)
    builder = RequestBuilder(records, str(env.gt), env.gt.parent, VideoSpec.load(spec_file), pre / "rc_frames")
    requests = {r.index: r for r in builder.build_all(validate(records, str(env.gt)))}
    verl_self = types.SimpleNamespace(image_key="images", video_key="videos", audio_key="audios", processor=object())
    assert {row["extra_info"]["index"] for row in rows} == set(range(len(SUBSET)))
    for row in rows:
        request = requests[row["extra_info"]["index"]]
        assert RLHFDataset._build_messages(verl_self, row, key="prompt") == request.messages()
        assert len(request.frames) <= 6


def test_region_caption_gets_the_boxed_frame(env: types.SimpleNamespace, tmp_path: Path) -> None:
    records = read_records(env.gt)
    checked = validate(records, str(env.gt))[2]
    request = RequestBuilder(records, str(env.gt), env.gt.parent, VideoSpec(), tmp_path / "rc").build(checked)
    info = env.records[2]["RC_info"]
    pos = env.records[2]["video"].index(info["start_frame"])
    boxed = request.frames[pos]
    assert boxed.startswith(str(tmp_path / "rc")) and boxed.endswith(".jpg")
    others = [f for i, f in enumerate(request.frames) if i != pos]
    assert others == [str(env.gt.parent / f) for i, f in enumerate(env.records[2]["video"]) if i != pos]
    x1, y1 = (int(v) for v in info["start_frame_bbox"][:2])
    with Image.open(boxed) as image, Image.open(env.gt.parent / info["start_frame"]) as original:
        inside_line = (x1 + 2, y1 + 2)
        drawn, plain = image.convert("RGB").getpixel(inside_line), original.convert("RGB").getpixel(inside_line)
    assert all(abs(a - b) <= 40 for a, b in zip(drawn, GREEN, strict=True)) and plain != drawn
    assert request.video["fps"] == request.video["sample_fps"] == float(env.records[2]["metadata"]["fps"])


def test_bad_record_names_file_index_and_field(env: types.SimpleNamespace, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = [dict(r) for r in env.records]
    bad[1]["qa_type"] = "bogus"
    gt = _write(env.gt.parent / "bad.json", bad)
    assert _infer(env, tmp_path / "p.jsonl", data=gt) == 2
    err = capsys.readouterr().err
    assert str(gt) in err and "record 1" in err and "'qa_type'" in err


def test_missing_frame_names_the_path(env: types.SimpleNamespace, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = [dict(r) for r in env.records]
    bad[0]["video"] = [*bad[0]["video"][:-1], "frames/nowhere/000001.jpg"]
    gt = _write(env.gt.parent / "missing.json", bad)
    assert _infer(env, tmp_path / "p.jsonl", data=gt) == 2
    err = capsys.readouterr().err
    assert str(env.gt.parent / "frames/nowhere/000001.jpg") in err and "record 0" in err


def test_output_of_another_file_is_refused(env: types.SimpleNamespace, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.jsonl"
    out.write_text(json.dumps({"index": 0, "id": "other", "qa_type": "tal", "prediction": "x"}) + "\n")
    assert _infer(env, out) == 2
    assert "another --data file" in capsys.readouterr().err


def test_torn_last_line_is_cut_and_appends_continue(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"index": 0, "id": "a", "prediction": "x"}\n{"index": 1, "id": "b", "pre')
    log = PredictionLog(path)
    assert set(log.load()) == {0}
    log.append([{"index": 1, "id": "b", "prediction": "y"}])
    assert [r["index"] for r in _lines(path)] == [0, 1]


def test_vllm_backend_without_vllm_is_a_clear_error(env: types.SimpleNamespace, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    assert _infer(env, tmp_path / "p.jsonl", "--backend", "vllm", "--limit", "1") == 2
    err = capsys.readouterr().err
    assert "vllm backend needs vLLM" in err and "--backend transformers" in err


# ---- RL parquet input: sampled rollouts for reward_fns.calibrate ----
ROLLOUT_ARGS = ("--n", "2", "--temperature", "1.0", "--max-new-tokens", "8", "--limit", str(LIMIT))


def _verl_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat verl's RLHFDataset builds from a parquet row for training (it edits the row: a copy)."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    verl_self = types.SimpleNamespace(image_key="images", video_key="videos", audio_key="audios", processor=object())
    return RLHFDataset._build_messages(verl_self, copy.deepcopy(row), key="prompt")


@pytest.fixture(scope="module")
def rl_data(env: types.SimpleNamespace) -> types.SimpleNamespace:
    """The whole toy set (one record per qa_type) as RL parquet, everything in train."""
    import pyarrow.parquet as pq

    out = env.base / "rl"
    assert medvidbench.main(["--input", str(env.toy), "--data-root", str(env.toy.parent),
                             "--out-dir", str(out), "--val-fraction", "0", "--workers", "1"]) == 0
    parquet = out / "rl_train.parquet"
    return types.SimpleNamespace(dir=out, parquet=parquet, rows=pq.read_table(parquet).to_pylist())


@pytest.fixture(scope="module")
def rollouts(env: types.SimpleNamespace, rl_data: types.SimpleNamespace) -> Path:
    """Two samples for each of the first LIMIT parquet rows, two rows per generate call."""
    out = env.base / "rl_run" / "rollouts.jsonl"
    assert infer.main(["--model", str(env.model), "--data", str(rl_data.parquet), "--out", str(out),
                       *ROLLOUT_ARGS, "--batch-size", "2"]) == 0
    return out


def test_parquet_requests_are_the_training_chat(rl_data: types.SimpleNamespace) -> None:
    requests = read_rl_requests(rl_data.parquet)
    assert [r.index for r in requests] == [row["extra_info"]["index"] for row in rl_data.rows]
    for request, row in zip(requests, rl_data.rows, strict=True):
        assert request.messages() == _verl_messages(row)
        assert (request.id, request.qa_type, request.data_source) == tuple(
            row["extra_info"][k] for k in ("id", "qa_type", "data_source"))
    rc = [r for r in requests if r.qa_type.startswith("region_caption")]
    assert rc and all(any(f.startswith(str(rl_data.dir / "rc_frames")) for f in r.frames) for r in rc)
    assert [r.index for r in read_rl_requests(rl_data.parquet, limit=2)] == [0, 1]


def test_parquet_rollouts_feed_calibrate(rl_data: types.SimpleNamespace, rollouts: Path, tmp_path: Path) -> None:
    lines = _lines(rollouts)
    first = rl_data.rows[:LIMIT]
    assert sorted(r["index"] for r in lines) == sorted(2 * [row["extra_info"]["index"] for row in first])
    by_index = {row["extra_info"]["index"]: row["extra_info"] for row in first}
    for line in lines:
        assert set(line) == {"index", "id", "qa_type", "data_source", "response"}
        assert isinstance(line["response"], str)
        assert (line["id"], line["qa_type"]) == (by_index[line["index"]]["id"], by_index[line["index"]]["qa_type"])
    stats_path, plot = tmp_path / "stats.json", tmp_path / "stats.png"
    calibrate.main(["--data", str(rl_data.parquet), "--rollouts", str(rollouts), "--out", str(stats_path),
                    "--plot", str(plot)])
    stats = json.loads(stats_path.read_text())["stats"]
    pairs = {(source, task): s["n"] for source, tasks in stats.items() for task, s in tasks.items()}
    assert pairs == {(extra["data_source"], extra["task"]): 2 for extra in by_index.values()}
    assert plot.stat().st_size > 0


def test_rollouts_resume_tops_up_each_record(env: types.SimpleNamespace, rl_data: types.SimpleNamespace,
                                             rollouts: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rollouts.jsonl"
    shutil.copy(rollouts, out)
    argv = ["--model", str(env.model), "--data", str(rl_data.parquet), "--out", str(out), *ROLLOUT_ARGS]
    assert infer.main(argv) == 0
    assert out.read_bytes() == rollouts.read_bytes()
    assert "0 generated, 3 already done" in capsys.readouterr().out
    lines = _lines(out)
    dropped = next(i for i, line in enumerate(lines) if line["index"] == 1)
    kept = lines[:dropped] + lines[dropped + 1:]
    out.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    assert infer.main(argv) == 0
    assert "1 generated, 2 already done" in capsys.readouterr().out
    again = _lines(out)
    assert again[:-1] == kept and again[-1]["index"] == 1 and len(again) == len(lines)


@pytest.mark.parametrize(("extra", "message"), [
    (("--n", "2"), "--n > 1 needs --temperature > 0"),
    (("--n", "2", "--temperature", "1", "--format", "predictions"), "use --format rollouts"),
    (("--data-root", "/tmp"), "--data-root and --rc-cache are for a JSON --data"),
    (("--out", "x.json"), "--out must end in .jsonl"),
    (("--temperature", "-1"), "--temperature must be >= 0"),
])
def test_rollout_flags_are_checked(env: types.SimpleNamespace, rl_data: types.SimpleNamespace, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str) -> None:
    argv = ["--model", str(env.model), "--data", str(rl_data.parquet), "--out", str(tmp_path / "r.jsonl"), *extra]
    assert infer.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_predictions_from_json_reject_several_samples(env: types.SimpleNamespace, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert _infer(env, tmp_path / "p.jsonl", "--n", "2", "--temperature", "1") == 2
    assert "use --format rollouts" in capsys.readouterr().err


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_preprocess.rows import RL_SCHEMA

    pq.write_table(pa.Table.from_pylist(rows, schema=RL_SCHEMA), path)
    return path


def test_bad_parquet_row_names_file_record_and_field(env: types.SimpleNamespace, rl_data: types.SimpleNamespace,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [dict(r) for r in rl_data.rows[:LIMIT]]
    rows[1]["prompt"] = [{"role": "user", "content": "no placeholder"}]
    bad = _write_rows(tmp_path / "bad.parquet", rows)
    assert infer.main(["--model", str(env.model), "--data", str(bad), "--out", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and f"record {rows[1]['extra_info']['index']}" in err and "'prompt'" in err
    rows = [dict(r) for r in rl_data.rows[:LIMIT]]
    lost = str(tmp_path / "nowhere" / "000001.jpg")
    rows[2]["videos"] = [{**rows[2]["videos"][0], "video": [*rows[2]["videos"][0]["video"][:-1], lost]}]
    missing = _write_rows(tmp_path / "missing.parquet", rows)
    assert infer.main(["--model", str(env.model), "--data", str(missing), "--out", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err
    assert lost in err and f"record {rows[2]['extra_info']['index']}" in err and "'videos'" in err
