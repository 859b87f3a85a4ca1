"""Dry-run checks that read data rows (recipes/data_checks.py) and the prompt-token estimates, through
the launchers (stub interpreter, the dry run then in-process) and, for missing frames, a real launch
whose preflight must stop before verl starts.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.test_recipes_dry_run import dry_run_in_process, launch, setup  # noqa: F401  (fixture)


@pytest.fixture
def copy_of(setup, tmp_path):  # noqa: F811
    """`copy_of()`: a private copy of the test data folder and its frames (so a test may break them)."""

    def make() -> Path:
        data = tmp_path / "data"
        shutil.copytree(setup["data"], data)
        return data

    return make


def _rewrite_manifest(data: Path, **changes) -> None:
    manifest = json.loads((data / "manifest.json").read_text())
    for key, value in changes.items():
        manifest[key] = value
    (data / "manifest.json").write_text(json.dumps(manifest))


def test_missing_frame_names_record_and_path(setup, tmp_path, capsys):  # noqa: F811
    """Frames moved away from the paths the parquet holds: an error naming a record and a path."""
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    shutil.copytree(setup["data"], data)
    table = pq.read_table(data / "rl_train.parquet").to_pylist()
    gone = Path(table[0]["videos"][0]["video"][2])
    moved = tmp_path / "moved.jpg"
    shutil.copy(gone, moved)
    gone.unlink()  # the frame the first record needs (every record of the test data shares these frames)
    try:
        _, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", MODEL_PATH=str(setup["models"][14]), DATA_DIR=str(data))
        rc, _, err = dry_run_in_process(calls, capsys)
    finally:
        shutil.copy(moved, gone)
    assert rc == 1
    (line,) = [e for e in err.splitlines() if "frames missing" in e and "rl_train.parquet" in e]
    assert f"{gone} not found" in line and "record " in line and "(Cholec80-CVS/CVS" in line
    assert "5 of 5 sampled records lack frames" in line and "--data-root" in line


def test_frames_present_are_counted(setup, capsys):  # noqa: F811
    _, calls = launch(setup, "qwen25vl_7b_sft.sh", MODEL_PATH=str(setup["models"][14]))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert rc == 0, err
    assert "frames: all 20 frames of 5 sampled records found" in err  # 5 pairs x 1 record x 4 frames


@pytest.mark.slow  # a launcher + the preflight's verl imports in a subprocess
def test_missing_frames_stop_a_real_launch_before_verl(setup, tmp_path):  # noqa: F811
    """DRY_RUN=0: the preflight (dry-run checks first) fails; verl's entry point is never run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    shutil.copytree(setup["data"], data)
    for name in ("rl_train.parquet", "rl_val.parquet"):
        rows = pq.read_table(data / name).to_pylist()
        for row in rows:  # frames "moved": the stored absolute paths point nowhere
            row["videos"][0]["video"] = [str(tmp_path / "nowhere" / Path(f).name) for f in row["videos"][0]["video"]]
        pq.write_table(pa.Table.from_pylist(rows), data / name)
    shim = tmp_path / "python"  # the real interpreter, except that verl's entry point only leaves a mark
    shim.write_text(f'#!/bin/bash\nfor a in "$@"; do [[ $a == verl.trainer.main_ppo ]] && '
                    f'{{ echo LAUNCHED >> "{tmp_path}/log"; exit 0; }}; done\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    proc, _ = launch(setup, "qwen25vl_7b_medgrpo.sh", "trainer.device=cpu", "medgrpo.reward.judge.startup_check=false",
                     python=str(shim), MODEL_PATH=str(setup["models"][14]), DATA_DIR=str(data), DRY_RUN="0")
    assert proc.returncode == 1, proc.stderr
    assert "[preflight]" in proc.stderr and "frames missing" in proc.stderr
    assert str(tmp_path / "nowhere") in proc.stderr
    assert not (tmp_path / "log").exists()  # verl never started


@pytest.mark.parametrize(("split", "records", "override", "ok"), [
    ("large", 200_000, [], False), ("large", 200_000, ["medgrpo.data_split=large"], True),
    ("standard", 51_505, [], True),
    ("large", 55, [], True),  # a Large set no bigger than the Standard size is its own Standard subset (toy)
])
def test_rl_data_split_must_match(setup, copy_of, capsys, split, records, override, ok):  # noqa: F811
    data = copy_of()
    _rewrite_manifest(data, split={"mode": split, "val_fraction": 0.05, "seed": 0}, input={"records": records})
    _, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", *override, MODEL_PATH=str(setup["models"][14]),
                      DATA_DIR=str(data))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert (rc == 0) is ok, err
    if not ok:
        assert "the data is the 'large' split but medgrpo.data_split is 'standard'" in err
        assert "--split standard" in err


@pytest.mark.parametrize(("overrides", "expect"), [
    ([], "error: "),  # the start-up filter is off by default: an estimate over the limit stops the launch
    (["data.filter_overlong_prompts=true"], "warning: "),
])
def test_prompt_estimates_over_the_limit(setup, copy_of, capsys, overrides, expect):  # noqa: F811
    data = copy_of()
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["prompt_tokens"]["per_task"]["DVC"]["max"] = 5000
    (data / "manifest.json").write_text(json.dumps(manifest))
    _, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", *overrides, MODEL_PATH=str(setup["models"][14]),
                      DATA_DIR=str(data))
    rc, cfg, err = dry_run_in_process(calls, capsys)
    (line,) = [e for e in err.splitlines() if "exceed data.max_prompt_length=4096" in e]
    assert expect in line and ("DVC" in line)
    assert (rc == 1) is (expect == "error: ")
    if expect == "error: ":
        assert "'DVC': 5000" in line and "data.filter_overlong_prompts=true" in line
        assert cfg["data"]["filter_overlong_prompts"] is False


def test_megatron_refuses_video_timing_it_gets_wrong(setup, capsys):  # noqa: F811
    """The test clips are at 1 fps: Megatron's position ids would assume 2 fps (1 s per temporal patch)."""
    _, calls = launch(setup, "qwen25vl_7b_medgrpo_megatron.sh", MODEL_PATH=str(setup["models"][14]))
    rc, cfg, err = dry_run_in_process(calls, capsys)
    assert rc == 1
    (line,) = [e for e in err.splitlines() if "error: medgrpo_engine=megatron" in e]
    assert "7 of 7 sampled records are not at 2 fps" in line and "at 1 fps" in line
    assert "second_per_grid_ts" in line and "allow_wrong_video_timing=true" in line
    megatron = cfg["actor_rollout_ref"]["actor"]["megatron"]
    assert megatron["vanilla_mbridge"] is True  # the bridge installable from PyPI
    assert megatron["param_offload"] and megatron["optimizer_offload"]  # as verl's Qwen2.5-VL-7B example
    assert cfg["actor_rollout_ref"]["ref"]["megatron"]["param_offload"] is True


def test_megatron_refuses_qwen3_vl(setup, capsys):  # noqa: F811
    _, calls = launch(setup, "qwen25vl_7b_medgrpo_megatron.sh", "medgrpo_model=qwen3_vl",
                      MODEL_PATH=str(setup["models"][16]))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert rc == 1 and "supports Qwen2.5-VL only" in err
