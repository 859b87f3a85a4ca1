"""ChatClient, the shared async chat call: its API contract against the real local server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reward_fns.judge.chat import ChatClient, ChatError, Completion, Usage
from reward_fns.judge.client import JudgeConfig
from reward_fns.judge.prompt import build_messages
from testbed.judge_server import FaultPlan, JudgeTestServer, count_tokens

MESSAGES = build_messages("the surgeon clips the cystic duct", "the surgeon clips the duct")


def run(check: Any, plan: FaultPlan | None = None) -> Any:
    async def body() -> Any:
        async with JudgeTestServer(plan=plan) as server:
            return await check(server)

    return asyncio.run(body())


def test_complete_returns_text_usage_latency_attempts_and_forwards_options() -> None:
    async def check(server: JudgeTestServer) -> Completion:
        client = ChatClient(server.base_url, timeout_s=5, deadline_s=10)
        try:
            return await client.complete(MESSAGES, model="m", temperature=0.3, max_tokens=64,
                                         response_format={"type": "text"})
        finally:
            body = server.bodies[-1]
            assert (body["model"], body["temperature"], body["max_tokens"]) == ("m", 0.3, 64)
            assert body["response_format"] == {"type": "text"}
            await client.aclose()

    done = run(check)
    prompt = sum(count_tokens(m["content"]) for m in MESSAGES)
    assert done.attempts == 1 and done.usage == Usage(prompt, count_tokens(done.text)) and done.latency_s > 0


def test_rejected_replies_are_asked_again_and_their_tokens_counted() -> None:
    seen: list[str] = []

    async def check(server: JudgeTestServer) -> tuple[Completion, ChatClient]:
        client = ChatClient(server.base_url, timeout_s=5, deadline_s=10, max_retries=3)

        def picky(text: str) -> str | None:
            seen.append(text)
            if len(seen) == 2:
                raise RuntimeError("a broken checker")  # reads as a rejection, not a crash
            return None if len(seen) == 3 else "not yet"

        try:
            return await client.complete(MESSAGES, model="m", check=picky), client
        finally:
            await client.aclose()

    done, client = run(check)
    assert done.attempts == 3 and done.text == seen[-1]
    assert done.usage.completion_tokens == sum(count_tokens(text) for text in seen)
    assert client.stats.calls == 1 and client.stats.http_attempts == 3 and client.stats.failures == 0


def test_failures_raise_chat_error_with_attempts_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def check(server: JudgeTestServer) -> tuple[ChatError, ChatError, ChatClient]:
        client = ChatClient(server.base_url, timeout_s=5, deadline_s=10, max_retries=1)
        with pytest.raises(ChatError) as malformed:
            await client.complete(MESSAGES, model="m", check=lambda _: "never good")
        with pytest.raises(ChatError) as status:
            await client.complete(MESSAGES, model="m")
        await client.aclose()
        return malformed.value, status.value, client

    malformed, status, client = run(check, FaultPlan([None, None, "500", "500"]))
    assert malformed.attempts == 2 and "gave up after 2 call(s): never good" in malformed.reason
    assert malformed.usage.prompt_tokens > 0  # the rejected replies were still billed
    assert status.attempts == 2 and "HTTP 500" in status.reason  # the SDK retried once
    assert client.stats.failures == 2


def test_constructor_and_judge_config_validation(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        ChatClient(None, deadline_s=0)
    with pytest.raises(ValueError, match="'backend' must be one of"):
        JudgeConfig.from_dict({"backend": "anthropic"})
    with pytest.raises(ValueError, match="'deadline_s' must be > 0"):
        JudgeConfig.from_dict({"deadline_s": 0})
    with caplog.at_level(logging.WARNING):
        old = JudgeConfig.from_dict({"backoff_base_s": 1.0, "backoff_max_s": 30.0})
    assert old == JudgeConfig.from_dict({}) and "'backoff_base_s' is ignored" in caplog.text
    assert "sk-" not in repr(ChatClient("http://x/v1"))
