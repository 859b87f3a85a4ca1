"""The OpenAI-compatible judge test server: real HTTP on 127.0.0.1, real openai clients."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import openai
import pytest

from reward_fns.judge.prompt import build_messages
from reward_fns.judge.reply import parse_reply
from testbed.judge_server import FAULTS, FaultPlan, JudgeTestServer, expected_score

ROOT = Path(__file__).resolve().parents[1]
REF = "the surgeon clips the cystic duct"


def test_expected_score_follows_word_overlap() -> None:
    assert expected_score(REF, REF) == 5
    assert expected_score(REF, "nothing in common") == 1
    assert expected_score("a b c d", "a b") == 3  # recall 0.5 -> 1 + round(2)
    assert expected_score("", "anything") == 1


def test_fault_plan_sequence_then_seeded_rates() -> None:
    plan = FaultPlan(["429", None, "drop"], {"500": 0.5}, seed=7)
    picks = [plan.pick(i) for i in range(200)]
    assert picks[:3] == ["429", None, "drop"]
    assert set(picks[3:]) == {"500", None}
    again = FaultPlan(["429", None, "drop"], {"500": 0.5}, seed=7)
    assert [again.pick(i) for i in range(200)] == picks
    assert FaultPlan.first(2, "hang").sequence == ["hang", "hang"]
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan(["teapot"])
    with pytest.raises(ValueError, match="sum to <= 1"):
        FaultPlan(rates={"429": 0.7, "500": 0.7})


def test_async_server_answers_like_a_judge_and_injects_faults() -> None:
    async def body() -> None:
        plan = FaultPlan(["429", "500", "malformed", "invalid_json", "drop", None])
        async with JudgeTestServer(plan=plan, retry_after="3") as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=5)
            messages = build_messages(REF, "the surgeon clips")
            with pytest.raises(openai.RateLimitError) as rate:
                await client.chat.completions.create(model="m", messages=messages)
            assert rate.value.response.headers["retry-after"] == "3"
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(model="m", messages=messages)
            malformed = await client.chat.completions.create(model="m", messages=messages)
            assert not parse_reply(malformed.choices[0].message.content).ok
            with pytest.raises(ValueError):
                await client.chat.completions.create(model="m", messages=messages)
            with pytest.raises(openai.APIConnectionError):
                await client.chat.completions.create(model="m", messages=messages)
            good = await client.chat.completions.create(model="judge-x", messages=messages, temperature=0)
            reply = parse_reply(good.choices[0].message.content)
            assert reply.ok and reply.score == expected_score(REF, "the surgeon clips") == 3  # 3 of 5 words
            assert good.model == "judge-x"
            models = await client.models.list()
            assert [m.id for m in models.data] == ["test-judge"]
            await client.close()
        assert server.completions == 6 and server.requests == 7
        assert server.faults_served["none"] == 1 and server.faults_served["drop"] == 1
        assert server.bodies[-1]["temperature"] == 0

    asyncio.run(body())


def test_hang_is_released_on_client_timeout_and_on_stop() -> None:
    async def body() -> None:
        async with JudgeTestServer(plan=FaultPlan.first(2, "hang"), hang_s=30) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=0.2)
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(model="m", messages=build_messages(REF, REF))
            await client.close()
        # leaving the context released the hung handler well before hang_s

    loop_start = asyncio.run(_timed(body()))
    assert loop_start < 5


async def _timed(coro: object) -> float:
    start = asyncio.get_running_loop().time()
    await coro  # type: ignore[misc]
    return asyncio.get_running_loop().time() - start


def test_latency_is_added() -> None:
    async def body() -> float:
        async with JudgeTestServer(latency_s=0.1) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
            took = await _timed(client.chat.completions.create(model="m", messages=build_messages(REF, REF)))
            await client.close()
            return took

    assert asyncio.run(body()) >= 0.1


def test_thread_mode_serves_sync_clients() -> None:
    with JudgeTestServer().run_in_thread() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0, timeout=5)
        reply = client.chat.completions.create(model="m", messages=build_messages(REF, REF))
        assert parse_reply(reply.choices[0].message.content).score == 5.0
        assert server.completions == 1
        client.close()


def test_command_line_server() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.judge_server", "--port", "0", "--first", "500,none",
         "--fault-429", "0.0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "judge test server on http://127.0.0.1:" in line, line
        base_url = line.split(" on ")[1].strip()
        with urllib.request.urlopen(f"{base_url}/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "test-judge"
        client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=5)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=build_messages(REF, REF))
        reply = client.chat.completions.create(model="m", messages=build_messages(REF, REF))
        assert parse_reply(reply.choices[0].message.content).score == 5.0
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert set(FAULTS) >= {"429", "500", "hang", "malformed", "invalid_json", "drop"}


def test_dribble_serves_a_valid_reply_slowly_and_echo_faults_echo_the_header() -> None:
    async def body() -> None:
        plan = FaultPlan(["dribble", "echo_auth", "echo_auth_reply"])
        async with JudgeTestServer(plan=plan, dribble_s=0.0005) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-ECHOED123", max_retries=0,
                                        timeout=30)
            messages = build_messages(REF, "the surgeon clips")
            slow = await client.chat.completions.create(model="m", messages=messages)
            assert parse_reply(slow.choices[0].message.content).score == expected_score(REF, "the surgeon clips")
            assert slow.usage is not None and slow.usage.completion_tokens == 10
            with pytest.raises(openai.BadRequestError) as echoed:
                await client.chat.completions.create(model="m", messages=messages)
            assert "Bearer sk-test-ECHOED123" in str(echoed.value)
            reply = await client.chat.completions.create(model="m", messages=messages)
            assert "Bearer sk-test-ECHOED123" in reply.choices[0].message.content
            await client.close()

    asyncio.run(body())
