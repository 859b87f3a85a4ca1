"""A real OpenAI-compatible judge server (aiohttp, 127.0.0.1) with injectable faults.

`POST /v1/chat/completions` answers like a chat model: the content is a deterministic judge reply
computed from the reference and prediction found in the prompt (`expected_score` predicts it:
every dimension = 1 + round(4 * share of reference words present in the prediction)) and `usage`
counts words (`count_tokens`). Faults come from a `FaultPlan`: a per-request sequence
("the first N requests get fault X") followed by seeded per-fault probabilities. Besides HTTP
errors, hangs, drops and broken bodies: `dribble` sends a valid reply one byte every `dribble_s`
seconds (each read is quick, the whole never ends in time); `echo_auth` answers 400 with the
request's Authorization header in the error message, `echo_auth_reply` puts it in the reply text.

    async with JudgeTestServer(latency_s=0.05, plan=FaultPlan.first(2, "429")) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="EMPTY")
    with JudgeTestServer().run_in_thread() as server: ...          # for sync code
    python -m testbed.judge_server --port 8011 --latency 0.2 --fault-429 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from aiohttp import web

from reward_fns.judge.prompt import DIMENSION_KEYS, extract_captions

FAULTS: tuple[str, ...] = ("429", "500", "503", "hang", "malformed", "invalid_json", "drop", "dribble",
                           "echo_auth", "echo_auth_reply")
_WORD = re.compile(r"[a-z0-9]+")
_JSON = "application/json"
_MALFORMED = "The prediction looks reasonable overall."  # no R-lines
_STYLES = ("{key}: {value}", "**{key}**: {value}", "{key} = {value}", "{key}:{value}")


def count_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words."""
    return len(text.split())


def expected_score(reference: str, prediction: str) -> int:
    """The score (same on all five dimensions) the server gives `prediction` against `reference`."""
    ref, pred = set(_WORD.findall(reference.lower())), set(_WORD.findall(prediction.lower()))
    recall = len(ref & pred) / len(ref) if ref else 0.0
    return 1 + int(4 * recall + 0.5)


class FaultPlan:
    """Which fault (or None) request number i gets: `sequence[i]`, then seeded `rates` draws."""

    def __init__(self, sequence: Sequence[str | None] = (), rates: Mapping[str, float] | None = None,
                 seed: int = 0):
        self.sequence = list(sequence)
        self.rates = dict(rates or {})
        unknown = sorted({f for f in self.sequence if f is not None} - set(FAULTS)) + sorted(
            set(self.rates) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {list(FAULTS)}")
        if any(r < 0 for r in self.rates.values()) or sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {self.rates}")
        self._rng = random.Random(seed)

    @classmethod
    def first(cls, n: int, fault: str) -> FaultPlan:
        """The first `n` requests get `fault`, the rest are answered normally."""
        return cls([fault] * n)

    def pick(self, index: int) -> str | None:
        if index < len(self.sequence):
            return self.sequence[index]
        draw, acc = self._rng.random(), 0.0
        for fault, rate in self.rates.items():
            acc += rate
            if draw < acc:
                return fault
        return None


class JudgeTestServer:
    """The server. Counters: `requests` (all HTTP), `completions`, `faults_served`, `in_flight`,
    `max_in_flight`; records: `bodies` (request JSON), `authorizations` (Authorization headers)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0,
                 plan: FaultPlan | None = None, retry_after: str | None = "1", hang_s: float = 60.0,
                 model: str = "test-judge", dribble_s: float = 1.0,
                 replies: Callable[[Mapping[str, Any]], str] | None = None,
                 usage: Mapping[str, Any] | None = None):
        self.host, self.port, self.latency_s, self.dribble_s = host, port, latency_s, dribble_s
        self.usage = usage  # sent instead of the counted `usage` (e.g. broken token counts)
        self.replies = replies  # scripted mode: the reply text computed from the request body
        self.plan = plan or FaultPlan()
        self.retry_after, self.hang_s, self.model = retry_after, hang_s, model
        self.requests = 0
        self.completions = 0
        self.faults_served: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> JudgeTestServer:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._count])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> JudgeTestServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[JudgeTestServer]:
        """Serve from a background thread with its own event loop (for sync callers)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="judge-test-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            yield self
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "medgrpo-test"}
        return web.json_response({"object": "list", "data": [model]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        index = self.completions
        self.completions += 1
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not JSON")
        self.bodies.append(body)
        self.authorizations.append(request.headers.get("Authorization", ""))
        fault = self.plan.pick(index)
        self.faults_served[fault or "none"] += 1
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if fault == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return _error(429, "rate limited (injected)", headers)
        if fault in ("500", "503"):
            return _error(int(fault), f"server error {fault} (injected)")
        if fault == "hang":
            assert self._closing is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.hang_s)
            return _error(504, "hung request released")
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing can be written to a dropped connection
        if fault == "invalid_json":
            return web.Response(text='{"id": "chatcmpl-broken", "choices": [', content_type=_JSON)
        authorization = request.headers.get("Authorization", "")
        if fault == "echo_auth":
            return _error(400, f"invalid request; you sent Authorization: {authorization}")
        content = {"malformed": _MALFORMED, "echo_auth_reply": f"R2: 5 (request header {authorization})"}.get(
            fault or "", "") or self._reply(body, index)
        payload = _completion(index, str(body.get("model", self.model)), content, _prompt_tokens(body))
        if self.usage is not None:
            payload["usage"] = dict(self.usage)
        if fault == "dribble":
            return await self._dribble(request, json.dumps(payload).encode())
        return web.json_response(payload)

    async def _dribble(self, request: web.Request, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _JSON, "Content-Length": str(len(data))})
        await response.prepare(request)
        assert self._closing is not None
        for i in range(len(data)):
            await response.write(data[i:i + 1])
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.dribble_s)
            if self._closing.is_set():
                break
        return response

    def _reply(self, body: Mapping[str, Any], index: int) -> str:
        if self.replies is not None:
            return self.replies(body)
        captions = extract_captions(body.get("messages") or [])
        value = expected_score(*captions) if captions else 1
        style = _STYLES[index % len(_STYLES)]
        return "\n".join(style.format(key=key, value=value) for key in DIMENSION_KEYS)


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages") or []
    return sum(count_tokens(m.get("content") or "") for m in messages
               if isinstance(m, dict) and isinstance(m.get("content"), str))


def _completion(index: int, model: str, content: str, prompt_tokens: int = 1) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-test-{index}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": count_tokens(content),
                  "total_tokens": prompt_tokens + count_tokens(content)},
    }


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": "test_fault", "code": status}}
    return web.json_response(payload, status=status, headers=dict(headers or {}))


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every completion")
    parser.add_argument("--retry-after", default="1", help="Retry-After header sent with 429")
    parser.add_argument("--hang-s", type=float, default=60.0, help="how long a hung request is held")
    parser.add_argument("--dribble-s", type=float, default=1.0, help="seconds between bytes of a dribbled reply")
    parser.add_argument("--model", default="test-judge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", default="", help="per-request faults, e.g. '429,429,none,drop'")
    for fault in FAULTS:
        parser.add_argument(f"--fault-{fault.replace('_', '-')}", type=float, default=0.0,
                            dest=f"fault_{fault}", help=f"probability of fault {fault}")
    args = parser.parse_args(argv)
    sequence = [None if f in ("", "none") else f for f in args.first.split(",")] if args.first else []
    rates = {f: getattr(args, f"fault_{f}") for f in FAULTS if getattr(args, f"fault_{f}") > 0}
    server = JudgeTestServer(args.host, args.port, args.latency, FaultPlan(sequence, rates, args.seed),
                             args.retry_after, args.hang_s, args.model, args.dribble_s)

    async def serve() -> None:
        async with server:
            print(f"judge test server on {server.base_url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
