"""vLLM's own code paths on CPU: inference through `--backend vllm` and weight sync into a running engine.

- `evaluation.backend_agreement` (evaluation.infer's backends): on the toy benchmark, vLLM-CPU's greedy
  token ids equal the transformers backend's for both tiny families, except at near-ties (the transformers
  top-2 logit margin below the stated tolerance at the first differing token; the count is printed).
- `evaluation.infer --backend vllm`: sampled rollouts (the calibration path) run and are reproducible.
- recipes/ext/vllm_cpu_weights: vLLM-CPU empties linear weights at load, so the reload verl's weight sync
  makes fails without the plug-in and gives the transformers model's ids with it
  (tests/vllm_reload_check.py). The plug-in refuses a vLLM it was not checked against.
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

from evaluation.backends import BackendConfig, BackendError
from evaluation.backends.vllm_offline import engine_kwargs
from recipes.ext import vllm_cpu_weights

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
def test_weight_sync_into_a_running_engine_needs_and_gets_the_plugin(tiny_qwen25vl_dir, tmp_path: Path) -> None:
    out = tmp_path / "reload.json"
    done = _run("-m", "tests.vllm_reload_check", str(tiny_qwen25vl_dir), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["without_plugin"].startswith("failed"), (
        "vLLM-CPU now keeps linear weights on its own: recipes/ext/vllm_cpu_weights.py may be unnecessary")
    assert report["before"]["vllm"] == report["before"]["hf"]
    assert report["after"]["vllm"] == report["after"]["hf"]
    assert report["after"]["hf"] != report["before"]["hf"]  # the new weights did change the policy


def test_plugin_is_checked_against_the_installed_vllm() -> None:
    assert vllm_cpu_weights.vllm_base_version() == vllm_cpu_weights.CHECKED_VLLM, (
        "vLLM changed: re-check recipes/ext/vllm_cpu_weights.py against vllm/model_executor/layers/utils.py")


def test_plugin_refuses_another_vllm(monkeypatch) -> None:
    monkeypatch.setattr(vllm_cpu_weights, "vllm_base_version", lambda: "0.99.0")
    with pytest.raises(vllm_cpu_weights.VLLMVersionError, match=r"checked against vLLM 0\.24\.0"):
        vllm_cpu_weights.install()


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
