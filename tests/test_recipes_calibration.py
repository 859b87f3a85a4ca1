"""Calibration that fits the node and the budget: the vLLM plan (evaluation/backends/vllm_plan.py), the
seeded per-(data_source, task) prompt sample (recipes/pair_sample.py), the model family's VideoSpec, and
recipes/calibrate_reward_stats.sh driving R inference replicas (a real run on CPU with the transformers
backend through INFER_ARGS, two replicas, the local judge server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from evaluation.backends import vllm_plan
from tests.test_recipes_dry_run import launch, setup  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
# head counts of the two families' config.json (Qwen2.5-VL-7B: 28 / 4 / vision 16; Qwen3-VL-4B: 32 / 8 / 16)
QWEN25VL_7B = {"model_type": "qwen2_5_vl", "num_attention_heads": 28, "num_key_value_heads": 4,
               "vision_config": {"num_heads": 16, "patch_size": 14}}
QWEN3VL_4B = {"model_type": "qwen3_vl", "text_config": {"num_attention_heads": 32, "num_key_value_heads": 8},
              "vision_config": {"num_heads": 16, "patch_size": 16}}


# ---- the vLLM plan ----------------------------------------------------------------------------
def test_plan_for_8_gpus_and_a_28_head_model():
    """TP 8 is impossible (8 does not divide 28 heads); one engine takes TP 4; a node runs TP 1 x 8."""
    assert vllm_plan.valid_sizes(QWEN25VL_7B, 8) == [1, 2, 4]
    assert vllm_plan.engine_tp(QWEN25VL_7B, 8) == 4  # what vllm_offline passes to vllm.LLM on 8 visible GPUs
    with pytest.raises(vllm_plan.PlanError, match=r"does not divide the model's text\.num_attention_heads=28"):
        vllm_plan.plan(QWEN25VL_7B, 8, tensor_parallel_size=8)
    seven_b = int(16.6e9)  # bf16 weights
    plan = vllm_plan.plan(QWEN25VL_7B, 8, seven_b, 80 * GIB)
    assert (plan.tensor_parallel_size, plan.replicas) == (1, 8)
    assert plan.line() == "tensor_parallel_size=1 replicas=8"
    # weights over 40% of one GPU: the smallest valid size that fits, the rest as replicas
    assert vllm_plan.plan(QWEN25VL_7B, 8, 60 * GIB, 80 * GIB).line() == "tensor_parallel_size=2 replicas=4"
    assert vllm_plan.plan(QWEN25VL_7B, 8, 100 * GIB, 80 * GIB).line() == "tensor_parallel_size=4 replicas=2"
    with pytest.raises(vllm_plan.PlanError, match="need more than 4 GPU"):
        vllm_plan.plan(QWEN25VL_7B, 8, 200 * GIB, 80 * GIB)
    assert vllm_plan.plan(QWEN25VL_7B, 6, seven_b, 80 * GIB, tensor_parallel_size=2).line() == \
        "tensor_parallel_size=2 replicas=3"


def test_plan_other_shapes():
    assert vllm_plan.engine_tp(QWEN3VL_4B, 8) == 8  # 32 / 8 / 16 heads: TP 8 is fine
    assert vllm_plan.plan(QWEN25VL_7B, 0).line() == "tensor_parallel_size=1 replicas=1"  # CPU: one engine
    assert vllm_plan.engine_tp(QWEN25VL_7B, 0) == 1
    assert vllm_plan.head_counts({"num_attention_heads": 12}) == {"text.num_attention_heads": 12,
                                                                   "text.num_key_value_heads": 12}


def test_plan_cli_reads_the_model_folder(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(QWEN25VL_7B))
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1024)
    assert vllm_plan.main(["--model", str(tmp_path), "--gpus", "8"]) == 0
    assert capsys.readouterr().out == "tensor_parallel_size=1 replicas=8\n"
    assert vllm_plan.main(["--model", str(tmp_path), "--gpus", "8", "--tensor-parallel-size", "8"]) == 2
    assert "does not divide" in capsys.readouterr().err


# ---- the prompt sample --------------------------------------------------------------------------
def _table(rows: list[tuple[str, str]]):
    import pyarrow as pa

    return pa.Table.from_pylist([{"data_source": s, "ability": t, "extra_info": {"index": 1000 + i}, "payload": i}
                                 for i, (s, t) in enumerate(rows)])


def test_per_pair_sample_is_seeded_and_nested(tmp_path):
    import pyarrow.parquet as pq

    from recipes.pair_sample import read_pairs, sample_rows, write_sample

    rows = [("A", "VS")] * 100 + [("B", "CVS")] * 3 + [("A", "DVC")] * 40
    pq.write_table(_table(rows), tmp_path / "rl.parquet")
    pairs, index = read_pairs(tmp_path / "rl.parquet")
    small, big = (sample_rows(pairs, index, 7, per_pair=k) for k in (8, 16))
    assert Counter(pairs[r] for r in small) == {("A", "VS"): 8, ("B", "CVS"): 3, ("A", "DVC"): 8}
    assert set(small) <= set(big)  # a larger sample holds the smaller one
    assert sample_rows(pairs, index, 7, per_pair=8) == small and sample_rows(pairs, index, 8, per_pair=8) != small
    # independent of the file's row order: the same extra_info.index values are chosen
    shuffled = list(reversed(range(len(rows))))
    again = sample_rows([pairs[i] for i in shuffled], index[shuffled], 7, per_pair=8)
    assert sorted(index[shuffled][again]) == sorted(index[small])
    # a total budget is water-filled: every pair the same cap, a small pair keeps all its rows
    total = sample_rows(pairs, index, 0, total=30)
    assert Counter(pairs[r] for r in total) == {("A", "VS"): 13, ("B", "CVS"): 3, ("A", "DVC"): 14}
    counts = write_sample(tmp_path / "rl.parquet", tmp_path / "out.parquet", 7, per_pair=8, shards=3)
    assert sum(counts.values()) == 19 and pq.read_table(tmp_path / "out.parquet").num_rows == 19
    shards = [pq.read_table(tmp_path / f"out.r{i}.parquet")["payload"].to_pylist() for i in range(3)]
    whole = pq.read_table(tmp_path / "out.parquet")["payload"].to_pylist()
    assert sorted(x for shard in shards for x in shard) == sorted(whole)
    assert [len(s) for s in shards] == [7, 6, 6]


def test_pair_sample_cli_errors_name_the_file(tmp_path, capsys):
    from recipes import pair_sample

    assert pair_sample.main(["--data", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "o.parquet"),
                             "--total", "5"]) == 2
    assert "nope.parquet" in capsys.readouterr().err


# ---- the launcher -------------------------------------------------------------------------------
def test_family_picks_the_video_spec(tmp_path, capsys):
    from recipes import calibration

    for config, family in ((QWEN25VL_7B, "qwen2_5_vl"), (QWEN3VL_4B, "qwen3_vl"), ({"model_type": "llama"}, "")):
        (tmp_path / "config.json").write_text(json.dumps(config))
        assert calibration.main(["family", "--model", str(tmp_path)]) == 0
        assert capsys.readouterr().out == f"{family}\n"


def test_dry_run_prints_the_plan_and_samples_per_pair(setup, tmp_path, capsys):  # noqa: F811
    """DRY_RUN=1 with GPUS_PER_NODE=8 and a 28-head model: `tensor_parallel_size=1 replicas=8` and the
    per-pair budget, nothing written; the recorded calls run in-process."""
    from recipes import calibration

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN25VL_7B))
    proc, calls = launch(setup, "calibrate_reward_stats.sh", MODEL_PATH=str(model), GPUS_PER_NODE="8",
                         CALIB_PER_PAIR="1", CALIB_DIR=str(tmp_path / "calib"))
    assert proc.returncode == 0, proc.stderr
    (prepare,) = [c for c in calls if c[:3] == ["-m", "recipes.calibration", "prepare"]]
    assert prepare[-1] == "--dry-run" and prepare[prepare.index("--gpus") + 1] == "8"
    assert prepare[prepare.index("--per-pair") + 1] == "1"
    capsys.readouterr()
    assert calibration.main(prepare[2:]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "tensor_parallel_size=1 replicas=8" and len(lines) == 9  # then one prompt file per replica
    assert "5 prompts (5 (data_source, task) pairs) x 4 samples = 20 generations" in err
    assert not (tmp_path / "calib" / "prompts.parquet").exists()
    assert "evaluation.infer" in proc.stdout and "--video-spec" in proc.stdout


@pytest.mark.slow  # the launcher with the real interpreter (dry run + plan), ~40 s
def test_dry_run_for_qwen3_vl_writes_its_video_spec(setup, tmp_path):  # noqa: F811
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN3VL_4B))
    proc, _ = launch(setup, "calibrate_reward_stats.sh", python=sys.executable, MODEL_PATH=str(model),
                     GPUS_PER_NODE="8", CALIB_DIR=str(tmp_path / "calib"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tensor_parallel_size=1 replicas=8" in proc.stdout
    assert proc.stdout.count("CUDA_VISIBLE_DEVICES=<replica") == 8
    spec = (tmp_path / "calib" / "video_spec.yaml").read_text()
    assert "image_patch_size: 16" in spec  # Qwen3-VL's patches, picked from the model's config.json


@pytest.mark.slow  # two inference processes of a tiny model on CPU + scoring with the judge server (~2-4 min)
@pytest.mark.timeout(900)
def test_calibration_runs_replicas_and_pools_their_rollouts(tiny_qwen25vl_dir, toy_rl_run, tmp_path):
    """GPUS_PER_NODE=2 and the tiny model (4 heads): two replicas, each on its own prompt shard and its
    own (simulated) device; INFER_ARGS switches the backend to transformers (no GPU here); the stats
    cover every (data_source, task) of the sample."""
    import pyarrow.parquet as pq

    from testbed.judge_server import JudgeTestServer

    root = toy_rl_run("calibration_replicas", 1)
    out = tmp_path / "out"
    with JudgeTestServer().run_in_thread() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUDGE_", "DRY_RUN", "MEDGRPO", "CUDA_"))}
        env.update(PYTHON=sys.executable, MODEL_PATH=str(tiny_qwen25vl_dir), DATA_DIR=str(root / "data"),
                   OUTPUT_DIR=str(out), REWARD_STATS=str(out / "stats.json"), JUDGE_BASE_URL=server.base_url,
                   JUDGE_MODEL="calib-judge", GPUS_PER_NODE="2", CALIB_N="2", CALIB_PER_PAIR="1",
                   INFER_ARGS="--backend transformers --max-new-tokens 8", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", PREFLIGHT="0")
        proc = subprocess.run(["bash", str(REPO / "recipes" / "calibrate_reward_stats.sh")], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    calib = out / "reward_calibration"
    assert "vLLM plan: tensor_parallel_size=1 replicas=2" in proc.stderr
    assert "replica 0 on GPU(s) 0" in proc.stderr and "replica 1 on GPU(s) 1" in proc.stderr
    sample = pq.read_table(calib / "prompts.parquet")
    pairs = Counter(zip(sample["data_source"].to_pylist(), sample["ability"].to_pylist(), strict=True))
    assert set(pairs.values()) == {1}  # CALIB_PER_PAIR=1
    rows = [json.loads(line) for i in range(2) for line in (calib / f"rollouts.r{i}.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * sample.num_rows  # CALIB_N answers per prompt, across the two shards
    stats = json.loads((out / "stats.json").read_text())["stats"]
    assert {(s, t) for s, tasks in stats.items() for t in tasks} == set(pairs)
