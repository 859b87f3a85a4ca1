"""Hostile inputs round 3 (issue 21), judge side: judge_agree never writes a base_url password, a bad
base_url stops at the first call, and broken token counts never inflate a cost."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from evaluation import judge_agree
from reward_fns.judge.chat import MAX_TOKENS_PER_CALL, ChatClient, ChatError, token_count
from reward_fns.judge.redact import Redactor, bare_url
from testbed.judge_server import FaultPlan, JudgeTestServer
from tests.test_judge_agree import judge_yaml, reply_a, write_pairs

PASSWORD = "hunter2-very-secret"


def _with_password(url: str) -> str:
    return url.replace("http://", f"http://medgrpo:{PASSWORD}@")


def _run(tmp_path: Path, url_a: str, url_b: str) -> Path:
    out = tmp_path / "report.json"
    judge_agree.main(["--pairs", str(write_pairs(tmp_path / "pairs.jsonl")),
                      "--judge-a", str(judge_yaml(tmp_path / "a.yaml", url_a, "gpt-4.1")),
                      "--judge-b", str(judge_yaml(tmp_path / "b.yaml", url_b, "local-med")),
                      "--out", str(out)])
    return out


def test_base_url_password_is_never_written_into_the_report(tmp_path: Path) -> None:
    with JudgeTestServer(replies=reply_a).run_in_thread() as a, \
            JudgeTestServer(replies=lambda body: "not a verdict").run_in_thread() as b:
        out = _run(tmp_path, _with_password(a.base_url), _with_password(b.base_url))
    text = out.read_text()
    assert PASSWORD not in text and "medgrpo:" not in text
    report = json.loads(text)
    assert report["judges"]["a"]["base_url"] == a.base_url
    assert report["judges"]["b"]["failure_rate"] == 1.0  # replies unusable, endpoint fine: every pair tried
    assert report["judges"]["b"]["failure_examples"] and b.completions >= 6


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("bad", ["wrong path", "refused", "401"])
def test_bad_base_url_stops_at_the_first_call(tmp_path: Path, bad: str) -> None:
    plan = FaultPlan(rates={"500": 0.0})
    with JudgeTestServer(replies=reply_a).run_in_thread() as a, JudgeTestServer(plan=plan).run_in_thread() as b:
        url_b = {"wrong path": b.base_url.replace("/v1", "/nope/v1"),
                 "refused": f"http://medgrpo:{PASSWORD}@127.0.0.1:{_closed_port()}/v1",
                 "401": _with_password(b.base_url).replace("/v1", "/v1/does-not-exist")}[bad]
        with pytest.raises(SystemExit) as err:
            _run(tmp_path, a.base_url, url_b)
        served_b = b.requests
    message = str(err.value)
    assert message.startswith("error: judge b (") and "the first call failed" in message, message
    assert "stopped before the other 5 pair(s)" in message and "\n" not in message
    assert PASSWORD not in message
    assert served_b <= 1  # max_retries: 0 in the YAML: one call, not six
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(("value", "expected"), [
    (12, 12), (0, 0), (12.0, 12), (None, 0), (-5, 0), (1e30, 0), (float("nan"), 0), (float("inf"), 0),
    ("12", 0), (True, 0), (2.5, 0), (MAX_TOKENS_PER_CALL, MAX_TOKENS_PER_CALL), (MAX_TOKENS_PER_CALL + 1, 0),
    (10**400, 0),
])
def test_token_counts_are_validated(value: object, expected: int) -> None:
    assert token_count(value) == expected


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -1000, "completion_tokens": 5},
    {"prompt_tokens": 1e30, "completion_tokens": 1e30},
    {"prompt_tokens": "many", "completion_tokens": [1]},
    {"prompt_tokens": float("nan"), "completion_tokens": None},
])
def test_broken_usage_reports_never_inflate_the_tally(usage: dict) -> None:
    async def call(url: str) -> tuple[int, int]:
        client = ChatClient(url, max_retries=0, timeout_s=5, deadline_s=10)
        try:
            done = await client.complete([{"role": "user", "content": "hi"}], model="m")
        finally:
            await client.aclose()
        return done.usage.prompt_tokens, done.usage.completion_tokens

    with JudgeTestServer(replies=lambda body: "R2: 3", usage=usage).run_in_thread() as server:
        prompt, completion = asyncio.run(call(server.base_url))
    assert prompt == 0 and completion == (5 if usage["completion_tokens"] == 5 else 0)


def test_endpoint_failures_are_marked_as_such() -> None:
    async def call(url: str) -> ChatError:
        client = ChatClient(url, max_retries=0, timeout_s=5, deadline_s=10)
        try:
            with pytest.raises(ChatError) as err:
                await client.complete([{"role": "user", "content": "hi"}], model="m",
                                      check=lambda text: "never usable")
            return err.value
        finally:
            await client.aclose()

    with JudgeTestServer(replies=lambda body: "R2: 3").run_in_thread() as server:
        assert asyncio.run(call(server.base_url)).endpoint is False  # replies unusable, endpoint fine
        assert asyncio.run(call(server.base_url + "/wrong")).endpoint is True  # 404
    assert asyncio.run(call(f"http://127.0.0.1:{_closed_port()}/v1")).endpoint is True


def test_url_secrets_are_redacted_and_bare_urls_hold_none() -> None:
    redactor = Redactor()
    text = redactor.redact(f"connection error: http://u:{PASSWORD}@h:1/v1?api_key=K1234567&key={PASSWORD} ok")
    assert PASSWORD not in text and "K1234567" not in text and "http://[REDACTED]@h:1/v1" in text
    assert redactor.redact(text) == text  # idempotent
    assert bare_url(f"https://u:{PASSWORD}@api.example.com:8443/v1?key={PASSWORD}#x") == \
        "https://api.example.com:8443/v1"
    assert bare_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
    assert bare_url(None) == "" and bare_url("http://h:notaport/v1") == "[unparseable URL]"
    assert Redactor([PASSWORD]).redact(f"pw {PASSWORD}") == "pw [REDACTED]"
