"""`medgrpo_judge=verl` on CPU: the recipe variant composes and validates, and the reward manager that
verl's `load_reward_manager` builds sends its judge requests through verl's own router (NaiveRouter,
the one the reward loop launches) to a local OpenAI-compatible server, with cost metrics per sample.
vLLM judge replicas need GPUs and are not started here. Also: run_single stays bounded by the judge
deadline under a dribbling endpoint and prices its judge calls."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recipes import dry_run
from recipes.check_report import Report
from recipes.checks import check_reward
from reward_fns.judge.tally import JudgeTally, Prices
from reward_fns.judge.verl_backend import check_verl_judge, genrm_route, router_base_url
from testbed.judge_server import FaultPlan, JudgeTestServer
from testbed.policy import reference_answer
from testbed.rollouts import read_rl_rows, rollout_batch
from testbed.tiny_qwen import build_tokenizer

JUDGE_MODEL = "/models/open-med-judge"
JUDGE_KEYS = ("judge_requests", "judge_http_calls", "judge_cache_hits", "judge_failures", "judge_injections",
              "judge_prompt_tokens", "judge_completion_tokens", "judge_cost_usd")


@pytest.fixture(scope="module")
def data(toy_rl_run) -> dict[str, Path]:
    root = toy_rl_run("verl_judge", 1)
    return {"root": root, "train": root / "data" / "rl_train.parquet", "stats": root / "stats.json"}


def compose(data: dict[str, Path], *extra: str, base_url: str | None = None) -> Any:
    return dry_run.compose("medgrpo_grpo", [
        "data.filter_overlong_prompts=false", "medgrpo.reward.judge.api_key_env=MEDGRPO_UNSET_KEY", *extra],
        values={"data.train_files": str(data["train"]), "data.val_files": str(data["train"]),
                "actor_rollout_ref.model.path": str(data["root"]), "medgrpo.reward.judge.base_url": base_url,
                "medgrpo.reward.normalization.stats_path": str(data["stats"])})


VERL = ("medgrpo_judge=verl", f"medgrpo.judge_server.model_path={JUDGE_MODEL}",
        "medgrpo.judge_server.gpus_per_replica=2", "medgrpo.judge_server.judge_gpus=4")


@contextlib.contextmanager
def verl_router(worker_url: str) -> Iterator[str]:
    """verl's NaiveRouter in front of `worker_url`, served by uvicorn on a thread; yields its address."""
    import uvicorn
    from verl.experimental.reward_loop.router.naive_router import NaiveRouter

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(NaiveRouter(worker_urls=[worker_url]).app, host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "verl's router did not start"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_router_address_to_base_url() -> None:
    assert router_base_url("10.0.0.5:8123") == "http://10.0.0.5:8123/v1"
    assert router_base_url("[::1]:8123") == "http://[::1]:8123/v1"
    assert router_base_url("http://h:1/v1/") == "http://h:1/v1"
    with pytest.raises(RuntimeError, match="scores samples itself"):
        genrm_route()


def test_recipe_variant_composes_and_validates(data: dict[str, Path]) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = compose(data, *VERL)
    assert cfg.medgrpo.reward.judge.backend == "verl"
    assert cfg.reward.reward_model.enable and cfg.reward.reward_model.enable_resource_pool
    assert cfg.reward.reward_model.model_path == JUDGE_MODEL
    assert cfg.reward.reward_model.rollout.tensor_model_parallel_size == 2
    assert get_custom_reward_fn(cfg) is not None  # verl loads the hook, so samples reach run_single
    assert check_verl_judge(cfg) == ([], [f"judge: {JUDGE_MODEL} served by verl, 2 replica(s) of 2 GPU(s), "
                                         f"behind verl's reward router"])
    report = Report()
    check_reward(cfg, [str(data["train"])], report)
    assert not report.errors and any("2 replica(s)" in note for note in report.notes), report

    default = compose(data)
    assert default.medgrpo.reward.judge.backend == "openai" and not default.reward.reward_model.enable
    assert check_verl_judge(default) == ([], [])


@pytest.mark.parametrize(("override", "message"), [
    (("medgrpo.judge_server.judge_gpus=3",), "must be a positive multiple"),
    (("reward.reward_model.enable=false",), "reward.reward_model.enable=true"),
    (("reward.custom_reward_function.path=null",), "custom_reward_function.path"),
])
def test_bad_verl_judge_settings_are_reported(data: dict[str, Path], override: tuple[str, ...],
                                             message: str) -> None:
    errors, notes = check_verl_judge(compose(data, *VERL, *override))
    assert any(message in e for e in errors) and not notes, errors


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # FastAPI's on_event inside verl's router
def test_manager_routes_judge_requests_through_verls_router(data: dict[str, Path]) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager

    tokenizer = build_tokenizer()
    rows = [r for r in read_rl_rows(str(data["train"])) if r["ability"] in ("VS", "RC", "DVC")]
    assert rows
    cfg = compose(data, *VERL)
    OmegaConf.resolve(cfg)
    with pytest.raises(ValueError, match="no reward_router_address"):
        load_reward_manager(cfg, tokenizer)  # the verl backend without verl's router is a clear error
    with JudgeTestServer().run_in_thread() as server, verl_router(server.base_url[: -len("/v1")]) as address:
        manager = load_reward_manager(cfg, tokenizer, reward_router_address=address)
        assert manager.scorer.captions.judge.chat.base_url == f"http://{address}/v1"
        batch = rollout_batch(tokenizer, rows, [reference_answer(r) for r in rows])

        async def score_all() -> list[dict]:
            outputs = [await manager.run_single(batch[i: i + 1]) for i in range(len(batch))]
            again = await manager.run_single(batch[0:1])  # the judge's cache/in-flight sharing is per manager
            await manager.scorer.captions.judge.aclose()
            return [*outputs, again]

        outputs = asyncio.run(score_all())
        assert server.completions > 0
        assert {body["model"] for body in server.bodies} == {JUDGE_MODEL}  # the served model, not gpt-4.1
    infos = [o["reward_extra_info"] for o in outputs]
    assert all(set(JUDGE_KEYS) <= set(info) for info in infos)
    assert any(i["judge_ok"] for i in infos)
    judged = [i for i in infos[:-1] if i["judge_requests"]]
    assert manager.probe_http_calls == 1  # the worker's start-up check of the judge (reward_fns/judge/health.py)
    assert sum(i["judge_requests"] for i in infos) == server.completions - 1
    assert manager.judge_totals.requests == server.completions - 1  # the worker's running totals (logged)
    assert all(i["judge_prompt_tokens"] > 0 and i["judge_completion_tokens"] > 0 for i in judged)
    assert all(i["judge_cost_usd"] == 0.0 for i in infos)  # self-hosted: unpriced


def test_tally_metrics_and_prices() -> None:
    tally = JudgeTally(requests=2, http_calls=3, cache_hits=1, prompt_tokens=1_000, completion_tokens=100)
    metrics = tally.metrics(Prices(2.0, 8.0))
    assert metrics["judge_cost_usd"] == pytest.approx((1_000 * 2.0 + 100 * 8.0) / 1e6)
    assert set(metrics) == set(JUDGE_KEYS)


def test_cost_report_sums_verls_rollout_dumps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-step judge cost from the files verl's trainer writes with trainer.rollout_data_dir."""
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    from reward_fns.judge import cost_report

    for step, requests in ((1, [2, 0, 1]), (2, [0, 0, 0])):
        extra = {key: [0] * 3 for key in JUDGE_KEYS}
        extra["judge_requests"] = requests
        extra["judge_prompt_tokens"] = [300 * r for r in requests]
        extra["judge_cost_usd"] = [0.001 * r for r in requests]
        extra["judge_cache_hits"] = [0, 2, 1] if step == 1 else [3, 3, 3]
        extra["task"] = ["DVC", "VS", "RC"]
        RayPPOTrainer._write_generations(["q"] * 3, ["a"] * 3, ["g"] * 3, [0.5] * 3, extra, str(tmp_path), step)
    rows = cost_report.report(tmp_path)
    assert rows[1]["judge_requests"] == 3 and rows[1]["judge_prompt_tokens"] == 900
    assert rows[1]["judge_cost_usd"] == pytest.approx(0.003) and rows[1]["samples"] == 3
    assert rows[2]["judge_requests"] == 0 and rows[2]["judge_cache_hits"] == 9
    assert cost_report.main([str(tmp_path)]) == 0 and "0.0030" in capsys.readouterr().out
    (tmp_path / "3.jsonl").write_text("{broken\n")
    assert cost_report.main([str(tmp_path)]) == 2
    assert "3.jsonl:1: expected a verl rollout-dump line: not valid JSON" in capsys.readouterr().err


def test_run_single_is_bounded_by_the_judge_deadline_and_prices_its_calls(data: dict[str, Path]) -> None:
    """Issue 11 item 1 at the reward loop's entry: a dribbling endpoint cannot hold run_single."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager

    tokenizer = build_tokenizer()
    rows = [r for r in read_rl_rows(str(data["train"])) if r["ability"] in ("VS", "RC")][:1]
    with JudgeTestServer(plan=FaultPlan.first(1_000, "dribble")).run_in_thread() as slow, \
            JudgeTestServer().run_in_thread() as fine:
        results = {}
        for name, server in (("slow", slow), ("fine", fine)):
            cfg = compose(data, "medgrpo.reward.judge.timeout_s=0.3", "medgrpo.reward.judge.deadline_s=1.0",
                          "medgrpo.reward.judge.startup_check=false",  # the dribbling judge would fail it
                          base_url=server.base_url)
            OmegaConf.resolve(cfg)
            manager = load_reward_manager(cfg, tokenizer)
            batch = rollout_batch(tokenizer, rows, [reference_answer(r) for r in rows])

            async def one(manager: Any = manager, batch: Any = batch) -> tuple[dict, float]:
                start = time.monotonic()
                out = await manager.run_single(batch[0:1])
                await manager.scorer.captions.judge.aclose()
                return out, time.monotonic() - start

            results[name] = asyncio.run(one())
    (slow_out, slow_s), (fine_out, _) = results["slow"], results["fine"]
    assert slow_s < 3.0 and slow_out["reward_extra_info"]["judge_ok"] == 0
    assert "deadline of 1 s exceeded" in slow_out["reward_extra_info"]["reason"]
    assert slow_out["reward_extra_info"]["judge_failures"] == 1
    info = fine_out["reward_extra_info"]
    assert info["judge_ok"] == 1 and info["judge_requests"] == 1
    expected = (info["judge_prompt_tokens"] * 2.0 + info["judge_completion_tokens"] * 8.0) / 1e6  # openai.yaml
    assert info["judge_cost_usd"] == pytest.approx(expected) and expected > 0
