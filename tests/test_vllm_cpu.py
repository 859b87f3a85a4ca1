"""vLLM's own code paths on CPU: inference through `--backend vllm` and weight sync into a running engine.

- `evaluation.backend_agreement` (evaluation.infer's backends): on the toy benchmark, vLLM-CPU's greedy
  token ids equal the transformers backend's for both tiny families, except at near-ties (the transformers
  top-2 logit margin below the stated tolerance at the first differing token; the count is printed).
- `evaluation.infer --backend vllm`: sampled rollouts (the calibration path) run and are reproducible.
- evaluation/backends/vllm_fixes, video time: with it, vLLM's M-RoPE positions for Qwen2.5-VL clips of several
  frame counts and fps equal the actor's (evaluation/backends/qwen_positions.py); the clips are chosen so
  that vLLM 0.24.0 without it (no frame metadata: 24 fps assumed) and transformers 5.9's own positions
  give other positions (tests/vllm_video_time_check.py).
- evaluation/backends/vllm_fixes, weights: vLLM-CPU empties linear weights at load, so the reload verl's weight
  sync makes fails without the fix and gives the transformers model's ids with it
  (tests/vllm_reload_check.py). The fixes refuse a vLLM they were not checked against.
- The backend's up-front checks: a `max_model_len` the model cannot hold, sampling the engine cannot honour.

Each vLLM engine starts in a subprocess (vLLM binds OpenMP threads in the process that runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.backends import BackendConfig, BackendError, vllm_fixes
from evaluation.backends.vllm_offline import engine_kwargs

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 0.02  # nats: the transformers top-2 logit margin under which either token is a fair greedy pick
SPECS = {"qwen2_5_vl": {}, "qwen3_vl": {"image_patch_size": 16}}


def _run(*args: str, timeout: int = 420) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1",
               VLLM_ENABLE_V1_MULTIPROCESSING="0")
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module", params=sorted(SPECS))
def tiny_model(request, tmp_path_factory) -> tuple[str, Path, Path]:
    from testbed.tiny_qwen import build_tiny_qwen

    root = tmp_path_factory.mktemp(request.param)
    spec = root / "spec.json"
    spec.write_text(json.dumps(SPECS[request.param]), encoding="utf-8")
    return request.param, build_tiny_qwen(root / "model", request.param), spec


@pytest.mark.slow
def test_vllm_greedy_ids_equal_transformers_on_the_toy_set(tiny_model, toy_subset, tmp_path: Path) -> None:
    family, model, spec = tiny_model
    report = tmp_path / "agreement.json"
    done = _run("-m", "evaluation.backend_agreement", "--model", str(model), "--data", str(toy_subset(2)),
                "--video-spec", str(spec), "--max-new-tokens", "24", "--tolerance", str(TOLERANCE),
                "--engine-arg", "dtype=float32", "--out", str(report))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text(encoding="utf-8"))
    print(f"{family}: {done.stdout.strip().splitlines()[-1]}")
    assert result["records"] >= 16 and result["disagree"] == 0
    assert result["equal"] >= result["records"] // 2  # near-ties are the exception, not the rule


@pytest.mark.slow
def test_vllm_sampled_rollouts_run_and_repeat(tiny_qwen25vl_dir, toy_subset, tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        done = _run("-m", "evaluation.infer", "--model", str(tiny_qwen25vl_dir), "--data", str(toy_subset(1)),
                    "--out", str(out), "--backend", "vllm", "--format", "rollouts", "--n", "2", "--temperature", "1",
                    "--seed", "3", "--max-new-tokens", "12", "--engine-arg", "dtype=float32")
        assert done.returncode == 0, done.stderr[-3000:]
        outs.append(sorted((r["index"], r["response"]) for r in map(json.loads, out.read_text().splitlines())))
    assert outs[0] == outs[1] and len(outs[0]) >= 16
    assert len({response for _, response in outs[0]}) > 1  # sampled, not greedy


@pytest.mark.slow
def test_weight_sync_into_a_running_engine_needs_and_gets_the_fix(tiny_qwen25vl_dir, tmp_path: Path) -> None:
    out = tmp_path / "reload.json"
    done = _run("-m", "tests.vllm_reload_check", str(tiny_qwen25vl_dir), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["without_plugin"].startswith("failed"), (
        "vLLM-CPU now keeps linear weights on its own: evaluation/backends/vllm_fixes.py's install_cpu_weights "
        "may be unnecessary")
    assert report["before"]["vllm"] == report["before"]["hf"]
    assert report["after"]["vllm"] == report["after"]["hf"]
    assert report["after"]["hf"] != report["before"]["hf"]  # the new weights did change the policy


@pytest.mark.slow
def test_vllm_places_video_time_as_transformers_does(tiny_qwen25vl_dir, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (84, 112, 3), dtype=np.uint8)).save(tmp_path / f"frame_{i}.png")
    out = tmp_path / "video_time.json"
    done = _run("-m", "tests.vllm_video_time_check", str(tiny_qwen25vl_dir), str(tmp_path), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    clips = json.loads(out.read_text(encoding="utf-8"))
    assert len(clips) == 5
    for clip in clips:
        where = f"{clip['frames']} frames at {clip['fps']} fps"
        assert clip["vllm"] == clip["actor"], where
        if clip["frames"] > 2:  # several temporal patches: the time spacing shows in the positions
            assert clip["no_metadata"] != clip["actor"], where
    # why the actor does not use transformers 5.9's own positions: they differ from the rollout's
    assert sum(clip["transformers"] != clip["actor"] for clip in clips) >= 3


def test_video_metadata_split_for_the_hf_processor() -> None:
    frames = [[0] * 3, [1] * 3]
    with_meta = {"fps": 2.0, "frames_indices": [0, 1, 2], "total_num_frames": 3, "do_sample_frames": False}
    videos, metadata = vllm_fixes.split_videos([(frames[0], with_meta), frames[1]])
    assert videos == frames
    assert metadata == [{"fps": 2.0, "frames_indices": [0, 1, 2], "total_num_frames": 3},
                        {"total_num_frames": 3, "fps": None, "frames_indices": [0, 1, 2]}]


def test_fixes_are_checked_against_the_installed_vllm() -> None:
    assert vllm_fixes.vllm_base_version() == vllm_fixes.CHECKED_VLLM, (
        "vLLM changed: re-check evaluation/backends/vllm_fixes.py (vllm/model_executor/layers/utils.py and "
        "vllm/model_executor/models/qwen2_5_vl.py; upstream fixed the video metadata in vllm#47736)")


@pytest.mark.parametrize("install", ["install_cpu_weights", "install_video_metadata"])
def test_fixes_refuse_another_vllm(monkeypatch, install: str) -> None:
    monkeypatch.setattr(vllm_fixes, "vllm_base_version", lambda: "0.99.0")
    with pytest.raises(vllm_fixes.VLLMVersionError, match=r"checked against vLLM 0\.24\.0"):
        getattr(vllm_fixes, install)()


def _config(tmp_path: Path, **kwargs) -> BackendConfig:
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 4096}}))
    return BackendConfig(model=str(tmp_path), **kwargs)


def test_max_model_len_defaults_to_what_the_model_holds(tmp_path: Path) -> None:
    assert engine_kwargs(_config(tmp_path), on_cpu=True, gpus=0)["max_model_len"] == 4096


def test_a_max_model_len_the_model_cannot_hold_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, engine_args={"max_model_len": 32768})
    with pytest.raises(BackendError, match=r"max_model_len=32768 is more than the model can hold .*4096"):
        engine_kwargs(config, on_cpu=False, gpus=1)


def test_seeded_sampling_with_chunked_prefill_on_cpu_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, temperature=1.0, engine_args={"enable_chunked_prefill": True})
    with pytest.raises(BackendError, match="chunked prefill off"):
        engine_kwargs(config, on_cpu=True, gpus=0)
    assert engine_kwargs(_config(tmp_path, temperature=1.0), on_cpu=True, gpus=0)["enable_chunked_prefill"] is False
    assert engine_kwargs(config, on_cpu=False, gpus=1)["enable_chunked_prefill"] is True  # GPUs honour it
