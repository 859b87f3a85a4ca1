"""A judge that never answers stops the run instead of training it on similarity alone.

- at start-up: the reward manager (built by verl's `load_reward_manager` from the recipe's composed
  config, as each reward worker builds it) sends one real judge request and refuses to start when it
  fails; `judge.startup_check=false` skips it;
- during training: `run_single` (what verl's reward loop calls per sample of a training step) raises
  once `max_failure_rate` of the last `failure_window` judge requests failed (on_failure=abort), or
  goes on with similarity-only caption rewards and one loud log line (on_failure=similarity);
- the launch preflight sends the same request from the launching node (tests/test_recipes_preflight.py).
The judge is the real test server on 127.0.0.1, stopped (or never started) to play dead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import numpy as np
import pytest
import torch

from recipes import dry_run
from reward_fns.judge.health import JudgeHealth, JudgeUnavailableError
from testbed.judge_server import JudgeTestServer
from testbed.tiny_qwen import build_tokenizer

SUMMARY = "The surgeon clips the cystic duct and artery and removes the gallbladder from the liver bed."


def dead_url() -> str:
    """A local URL nothing listens on (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def manager_for(url: str, *overrides: str):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager

    cfg = dry_run.compose("medgrpo_grpo", [
        "medgrpo.reward.normalization.enabled=false", "medgrpo.reward.check_data=false",
        "medgrpo.reward.judge.model=med-judge", "medgrpo.reward.judge.api_key_env=MEDGRPO_TEST_JUDGE_KEY",
        "medgrpo.reward.judge.max_retries=0", "medgrpo.reward.judge.timeout_s=5", "medgrpo.reward.judge.deadline_s=10",
        "medgrpo.reward.judge.failure_window=4", "medgrpo.reward.judge.max_failure_rate=0.75", *overrides],
        values={"medgrpo.reward.judge.base_url": url})
    OmegaConf.resolve(cfg)
    return load_reward_manager(cfg, build_tokenizer())


def sample(tokenizer, text: str, index: int):
    """One rollout sample as verl's reward loop hands it to run_single (a video summary)."""
    from verl import DataProto

    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    truth = json.dumps({"qa_type": "video_summary_gpt", "data_source": "AVOS", "answer": SUMMARY, "fps": 1.0})
    return DataProto.from_dict(
        tensors={"responses": torch.tensor([ids]), "attention_mask": torch.ones((1, len(ids)), dtype=torch.long)},
        non_tensors={"reward_model": np.array([{"ground_truth": truth}], dtype=object),
                     "data_source": np.array(["AVOS"], dtype=object),
                     "extra_info": np.array([{"index": index}], dtype=object)})


def score(manager, count: int) -> list:
    """Score `count` different answers one after the other; results, or the exception raised."""
    async def run():
        out = []
        try:
            for i in range(count):
                try:
                    out.append(await manager.run_single(sample(manager.tokenizer, f"{SUMMARY} Variant {i}.", i)))
                except JudgeUnavailableError as err:
                    out.append(err)
            return out
        finally:
            await manager.judge.aclose()

    return asyncio.run(run())


def test_health_window():
    health = JudgeHealth(window=4, max_rate=0.5)
    for ok in (False, False, False):
        health.record(ok, "HTTP 401: invalid key")
    assert health.failing() is None  # the window is not full yet
    health.record(True)
    assert "3 of the last 4 judge requests failed" in health.failing() and "HTTP 401" in health.failing()
    health.record(True)
    health.record(True)
    assert health.failing() is None  # 1 of the last 4: below the rate


def test_reward_worker_refuses_to_start_without_a_judge():
    url = dead_url()
    with pytest.raises(JudgeUnavailableError) as info:
        manager_for(url)
    message = str(info.value)
    assert f"med-judge at {url}" in message and "did not answer one request at start-up" in message
    assert "startup_check=false" in message and "$MEDGRPO_TEST_JUDGE_KEY" in message


def test_startup_check_can_be_switched_off():
    manager = manager_for(dead_url(), "medgrpo.reward.judge.startup_check=false")
    assert manager.judge is not None and manager.judge.http_calls == 0


def test_judge_dying_during_training_stops_the_run(caplog):
    """The judge answers the start-up probe, then dies: run_single raises once the window is full of
    failures, and every later sample raises too."""
    with JudgeTestServer().run_in_thread() as server:
        manager = manager_for(server.base_url)
        assert server.completions == 1  # the start-up probe
    with caplog.at_level(logging.ERROR, logger="reward_fns.manager"):
        results = score(manager, 6)
    assert [isinstance(r, dict) for r in results] == [True, True, True, False, False, False]
    assert all(r["reward_extra_info"]["judge_ok"] == 0 for r in results[:3])  # similarity only, meanwhile
    error = results[3]
    assert "the judge does not answer: 4 of the last 4 judge requests failed" in str(error)
    assert "on_failure=abort" in str(error) and "last reason" in str(error)
    assert any("stopping the run" in record.getMessage() for record in caplog.records)


def test_on_failure_similarity_goes_on_and_says_so(caplog):
    with JudgeTestServer().run_in_thread() as server:
        manager = manager_for(server.base_url, "medgrpo.reward.judge.on_failure=similarity")
    with caplog.at_level(logging.ERROR, logger="reward_fns.manager"):
        results = score(manager, 6)
    assert all(isinstance(r, dict) and r["reward_extra_info"]["judge_ok"] == 0 for r in results)
    assert all(0.0 < r["reward_score"] <= 1.0 for r in results)  # the similarity part still rewards
    logged = [r.getMessage() for r in caplog.records if "caption rewards are similarity only" in r.getMessage()]
    assert len(logged) == 1  # once, not per sample


def test_a_healthy_judge_is_not_stopped():
    with JudgeTestServer().run_in_thread() as server:
        manager = manager_for(server.base_url)
        results = score(manager, 5)
    assert all(isinstance(r, dict) and r["reward_extra_info"]["judge_ok"] == 1 for r in results)
    assert manager.judge.health.judged == 5 and manager.judge.health.failed == 0


# ---- calibration: stats of similarity-only caption rewards would not match training's rewards ----
@pytest.fixture
def calibration_inputs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth = json.dumps({"qa_type": "video_summary_gpt", "data_source": "AVOS", "answer": SUMMARY, "fps": 1.0})
    rows = [{"data_source": "AVOS", "ability": "VS", "reward_model": {"style": "rule", "ground_truth": truth},
             "extra_info": {"index": i}} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rl_train.parquet")
    (tmp_path / "rollouts.jsonl").write_text("".join(json.dumps({"index": i, "response": f"{SUMMARY} {i}"}) + "\n"
                                                     for i in range(3)))
    return tmp_path


def _calibrate(root, url: str, *judge_lines: str) -> None:
    from reward_fns import calibrate

    (root / "reward.yaml").write_text("medgrpo:\n  reward:\n    judge:\n      enabled: true\n"
                                      f"      base_url: {url}\n      model: med-judge\n      max_retries: 0\n"
                                      + "".join(f"      {line}\n" for line in judge_lines))
    calibrate.main(["--data", str(root / "rl_train.parquet"), "--rollouts", str(root / "rollouts.jsonl"),
                    "--out", str(root / "stats.json"), "--config", str(root / "reward.yaml"), "--min-n", "1"])


def test_calibration_refuses_a_dead_judge(calibration_inputs):
    with pytest.raises(SystemExit, match="did not answer one request"):
        _calibrate(calibration_inputs, dead_url())
    with pytest.raises(SystemExit, match=r"the judge failed 3 of 3 requests .*no stats written"):
        _calibrate(calibration_inputs, dead_url(), "startup_check: false")
    assert not (calibration_inputs / "stats.json").exists()


def test_calibration_with_on_failure_similarity_warns_and_writes(calibration_inputs, capsys):
    _calibrate(calibration_inputs, dead_url(), "startup_check: false", "on_failure: similarity")
    assert "warning: the judge failed 3 of 3 requests" in capsys.readouterr().err
    assert (calibration_inputs / "stats.json").is_file()
