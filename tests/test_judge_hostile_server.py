"""Hostile endpoints (issue 11 items 1-2): a dribbling server is cut by the deadlines, and a key
echoed by the server never reaches logs, reasons, exceptions or caches. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from reward_fns.judge.chat import ChatClient, ChatError
from reward_fns.judge.client import JudgeConfig, MedicalJudge
from reward_fns.judge.prompt import build_messages
from reward_fns.judge.redact import REDACTED, Redactor
from testbed.judge_server import FaultPlan, JudgeTestServer, expected_score

REF = "The surgeon clips the cystic duct with a titanium clip applier."
PRED = "The surgeon clips the cystic duct."
SECRET = "sk-proj-HOSTILE0123456789abcdefSECRET"


def run(check: Any, plan: FaultPlan, **server_kw: Any) -> Any:
    async def body() -> Any:
        async with JudgeTestServer(plan=plan, **server_kw) as server:
            return await check(server)

    return asyncio.run(body())


def test_dribbling_server_is_cut_by_the_total_deadline() -> None:
    async def check(server: JudgeTestServer) -> tuple[float, Any]:
        judge = MedicalJudge(JudgeConfig.from_dict({"base_url": server.base_url, "timeout_s": 0.4, "deadline_s": 1.5,
                                                     "max_retries": 10}))
        start = time.monotonic()
        try:
            result = await judge.score(REF, PRED)
        finally:
            await judge.aclose()
        return time.monotonic() - start, result

    waited, result = run(check, FaultPlan.first(100, "dribble"), dribble_s=0.05)
    assert not result.ok and result.score is None
    assert "deadline of 1.5 s exceeded" in result.reason and result.http_calls >= 2
    assert 1.5 <= waited < 2.5


def test_one_dribbled_attempt_is_cut_and_retried() -> None:
    async def check(server: JudgeTestServer) -> Any:
        judge = MedicalJudge(JudgeConfig.from_dict({"base_url": server.base_url, "timeout_s": 0.3, "deadline_s": 10,
                                                     "max_retries": 2}))
        try:
            return await judge.score(REF, PRED)
        finally:
            await judge.aclose()

    result = run(check, FaultPlan.first(1, "dribble"), dribble_s=0.05)
    assert result.ok and result.score == expected_score(REF, PRED) and result.http_calls == 2


def test_deadline_includes_waiting_for_a_concurrency_slot() -> None:
    async def check(server: JudgeTestServer) -> tuple[float, list[BaseException | Any]]:
        client = ChatClient(server.base_url, concurrency=1, timeout_s=5, deadline_s=0.6, max_retries=0)
        start = time.monotonic()
        outcomes = await asyncio.gather(
            *(client.complete(build_messages(REF, f"{PRED} {i}"), model="m") for i in range(3)),
            return_exceptions=True)
        await client.aclose()
        return time.monotonic() - start, outcomes

    waited, outcomes = run(check, FaultPlan.first(3, "hang"), hang_s=30)
    assert all(isinstance(o, ChatError) and "deadline of 0.6 s" in o.reason for o in outcomes)
    assert waited < 1.5


@pytest.mark.parametrize("fault", ["echo_auth", "echo_auth_reply"])
def test_echoed_key_never_leaves_the_client(fault: str, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDGRPO_HOSTILE_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    cache_path = tmp_path / "judge.sqlite"

    async def check(server: JudgeTestServer) -> tuple[list[Any], ChatError]:
        config = JudgeConfig.from_dict({"base_url": server.base_url, "api_key_env": "MEDGRPO_HOSTILE_KEY",
                                        "timeout_s": 2, "deadline_s": 10, "max_retries": 1,
                                        "cache_path": str(cache_path)})
        judge = MedicalJudge(config)
        results = [await judge.score(REF, PRED), await judge.score(REF, PRED + " again")]
        client = ChatClient(server.base_url, api_key_env="MEDGRPO_HOSTILE_KEY", max_retries=0)
        try:
            await client.complete(build_messages(REF, PRED), model="m", check=lambda t: f"bad reply {t}")
        except ChatError as err:
            error = err
        await judge.aclose()
        await client.aclose()
        assert server.authorizations and all(a == f"Bearer {SECRET}" for a in server.authorizations)
        return results, error

    first = 1 if fault == "echo_auth" else 2  # a 400 is final; a bad reply is asked again (max_retries=1)
    results, error = run(check, FaultPlan([fault] * first + [None] + [fault] * 10))
    assert not results[0].ok and results[1].ok  # the second judgement got one clean reply
    assert REDACTED in results[0].reason
    texts = [caplog.text, *(r.reason for r in results), repr(results), str(error), repr(error), error.reason,
             repr(error.args), "".join(traceback.format_exception(error)),
             cache_path.read_bytes().decode("utf-8", "replace")]
    for text in texts:
        assert SECRET not in text and SECRET[8:24] not in text
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_redactor_hides_keys_in_any_shape() -> None:
    redact = Redactor([SECRET]).redact
    for text in (f"key={SECRET}", f"Authorization: Bearer {SECRET}", f'{{"api_key": "{SECRET}"}}',
                 "Bearer abc.def-ghi", "sk-live-0123456789abcdef", f"x{SECRET}y"):
        out = redact(text)
        assert REDACTED in out and SECRET not in out and "abc.def-ghi" not in out
        assert "0123456789abcdef" not in out
    assert redact("R2: 4 the surgeon asks for the key clip") == "R2: 4 the surgeon asks for the key clip"
    assert Redactor(["EMPTY"]).redact("EMPTY handed") == "EMPTY handed"  # the dummy key is no secret
