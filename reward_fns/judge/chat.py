"""`ChatClient`: one async OpenAI-compatible chat call with hard bounds, reused by every stage.

    client = ChatClient("http://127.0.0.1:8000/v1", api_key_env="OPENAI_API_KEY", concurrency=32,
                        timeout_s=60, deadline_s=180, max_retries=4)
    done = await client.complete(messages, model="gpt-4.1", temperature=0.0, max_tokens=128,
                                 response_format=None, check=None)
    done.text, done.usage.prompt_tokens, done.usage.completion_tokens, done.latency_s, done.attempts

Stable API (the judge, the leaderboard judge protocol, the agreement tool and the caption stage
build on it):
- `complete(...)` returns a `Completion` or raises `ChatError` (`.reason`, `.attempts`, `.usage`);
  nothing else escapes except the caller's own cancellation.
- Concurrency: at most `concurrency` calls in flight per event loop (a semaphore).
- Retries: the openai SDK's own (`max_retries`; 408/409/429/5xx, timeouts and connection errors,
  its exponential backoff with jitter; a `Retry-After` up to two minutes is waited, a longer one
  ends the call). On top, one small layer:
  a reply that is not a valid chat completion, has no text, or fails `check(text)` (which returns
  a reason, or None when the text is usable) is asked again, up to `max_retries` more times.
- Deadlines: `timeout_s` bounds each HTTP attempt from connect to last byte (a server dribbling
  one byte a second is cut and retried); `deadline_s` bounds the whole call, queueing for a
  concurrency slot, every attempt and every backoff wait included.
- Secrets: the key is read from the environment variable named `api_key_env` (the dummy `EMPTY`
  when unset, for local servers) and is redacted, with a password in the base URL, from every text
  the client hands out: the completion text, `ChatError` messages and the reasons it logs.
- Usage: tokens are summed over every attempt that returned a completion (failed ones included); a
  count that is not an integer in [0, 10M] (negative, 1e30, text) is logged and counted as 0.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from reward_fns.judge.redact import Redactor

logger = logging.getLogger(__name__)
DUMMY_API_KEY = "EMPTY"
_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("medgrpo_chat_attempts", default=None)


@dataclass(frozen=True)
class Usage:
    """Tokens billed for one or more completions."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Completion:
    """A usable reply: its text (keys redacted), tokens, seconds from call to reply, HTTP attempts."""

    text: str
    usage: Usage
    latency_s: float
    attempts: int


class ChatError(Exception):
    """The call failed for good; `reason` is one redacted line. `endpoint` is True when the endpoint
    itself failed (HTTP error status, connection, timeout, deadline), False when only its replies were
    unusable (a wrong base URL, key or model shows as the former on the first call)."""

    def __init__(self, reason: str, attempts: int, usage: Usage = Usage(), latency_s: float = 0.0,
                 endpoint: bool = False):
        super().__init__(reason)
        self.reason, self.attempts, self.usage, self.latency_s = reason, attempts, usage, latency_s
        self.endpoint = endpoint


@dataclass
class ChatStats:
    """Counters since the client was made (all event loops together)."""

    calls: int = 0
    failures: int = 0
    http_attempts: int = 0
    usage: Usage = field(default_factory=Usage)


class _DeadlineHttpClient(openai.DefaultAsyncHttpxClient):  # type: ignore[misc, valid-type]
    """The SDK's default httpx client with a deadline per send (connect to last byte)."""

    def __init__(self, attempt_s: float, **kwargs: Any):
        super().__init__(**kwargs)
        self._attempt_s = attempt_s

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        counter = _ATTEMPTS.get()
        if counter is not None:
            counter[0] += 1
        try:
            async with asyncio.timeout(self._attempt_s):
                return await super().send(request, **kwargs)
        except TimeoutError:
            # the SDK treats httpx timeouts as retryable, so the dribbling attempt is retried
            raise httpx2.ReadTimeout(f"no complete response within {self._attempt_s:g} s",
                                     request=request) from None


@dataclass
class _LoopState:
    client: openai.AsyncOpenAI
    semaphore: asyncio.Semaphore


class ChatClient:
    """Bounded, retried, redacting chat completions against one OpenAI-compatible endpoint."""

    def __init__(self, base_url: str | None, *, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 32,
                 timeout_s: float = 60.0, deadline_s: float = 180.0, max_retries: int = 4):
        if concurrency <= 0 or timeout_s <= 0 or deadline_s <= 0 or max_retries < 0:
            raise ValueError("ChatClient: concurrency, timeout_s and deadline_s must be > 0, max_retries >= 0")
        self.base_url, self.api_key_env = base_url, api_key_env
        self.concurrency, self.timeout_s, self.deadline_s, self.max_retries = (
            concurrency, timeout_s, deadline_s, max_retries)
        self.stats = ChatStats()
        self._redactor = Redactor([self._api_key(), _url_password(base_url)])
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary())

    def __repr__(self) -> str:
        return (f"ChatClient(base_url={self.base_url!r}, api_key_env={self.api_key_env!r}, "
                f"timeout_s={self.timeout_s:g}, deadline_s={self.deadline_s:g})")

    def _api_key(self) -> str:
        return os.environ.get(self.api_key_env) or DUMMY_API_KEY

    def redact(self, text: object) -> str:
        """`text` with this client's key (and any key-shaped token) replaced by [REDACTED]."""
        return self._redactor.redact(text)

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            http = _DeadlineHttpClient(self.timeout_s, timeout=httpx2.Timeout(self.timeout_s))
            client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key(), http_client=http,
                                        max_retries=self.max_retries, timeout=self.timeout_s)
            state = self._states[loop] = _LoopState(client, asyncio.Semaphore(self.concurrency))
        return state

    async def aclose(self) -> None:
        """Close this event loop's HTTP client (a later call opens a new one)."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.close()

    async def complete(self, messages: Sequence[Mapping[str, Any]], *, model: str, temperature: float = 0.0,
                       max_tokens: int = 256, response_format: Mapping[str, Any] | None = None,
                       check: Callable[[str], str | None] | None = None) -> Completion:
        """One chat completion within `deadline_s`; raises `ChatError` with a redacted reason."""
        start, attempts, usage = time.monotonic(), [0], [Usage()]
        token = _ATTEMPTS.set(attempts)
        self.stats.calls += 1
        try:
            return await self._complete(messages, model, temperature, max_tokens, response_format, check,
                                        start, attempts, usage)
        except ChatError as err:
            self.stats.failures += 1
            err.latency_s = time.monotonic() - start
            raise
        finally:
            _ATTEMPTS.reset(token)
            self.stats.http_attempts += attempts[0]
            self.stats.usage = self.stats.usage + usage[0]

    async def _complete(self, messages: Sequence[Mapping[str, Any]], model: str, temperature: float,
                        max_tokens: int, response_format: Mapping[str, Any] | None,
                        check: Callable[[str], str | None] | None, start: float, attempts: list[int],
                        usage: list[Usage]) -> Completion:
        reason = "no attempt made"
        try:
            async with asyncio.timeout(self.deadline_s):
                state = self._state()
                async with state.semaphore:
                    for _ in range(self.max_retries + 1):
                        text, reason = await self._attempt(state.client, messages, model, temperature,
                                                           max_tokens, response_format, usage)
                        if text is not None:
                            reason = _safe_check(check, text) if check is not None else ""
                            if not reason:
                                return Completion(text, usage[0], time.monotonic() - start, attempts[0])
                        logger.debug("chat reply rejected (%s); asking again", reason)
        except TimeoutError:
            raise ChatError(f"deadline of {self.deadline_s:g} s exceeded after {attempts[0]} call(s); "
                            f"last: {reason}", attempts[0], usage[0], endpoint=True) from None
        except _Fatal as fatal:
            raise ChatError(f"gave up after {attempts[0]} call(s): {fatal.reason}", attempts[0], usage[0],
                            endpoint=True) from None
        raise ChatError(f"gave up after {attempts[0]} call(s): {reason}", attempts[0], usage[0])

    async def _attempt(self, client: openai.AsyncOpenAI, messages: Sequence[Mapping[str, Any]], model: str,
                       temperature: float, max_tokens: int, response_format: Mapping[str, Any] | None,
                       usage: list[Usage]) -> tuple[str | None, str]:
        """(text, "") for a reply with text, (None, reason) for a malformed one; `_Fatal` otherwise."""
        extra = {"response_format": dict(response_format)} if response_format is not None else {}
        try:
            response = await client.chat.completions.create(
                model=model, messages=list(messages), temperature=temperature,  # type: ignore[arg-type]
                max_tokens=max_tokens, **extra)
        except openai.APIStatusError as exc:
            raise _Fatal(self.redact(f"HTTP {exc.status_code}: {_clip(exc.message)}")) from None
        except openai.APITimeoutError:
            raise _Fatal(f"timeout: no complete response within {self.timeout_s:g} s") from None
        except openai.APIConnectionError as exc:
            raise _Fatal(self.redact(f"connection error: {_clip(str(exc.__cause__ or exc))}")) from None
        except (ValueError, openai.APIResponseValidationError) as exc:
            return None, self.redact(f"malformed response: {type(exc).__name__}: {_clip(str(exc))}")
        except Exception as exc:  # never let endpoint trouble escape as anything but ChatError
            raise _Fatal(self.redact(f"unexpected {type(exc).__name__}: {_clip(str(exc))}")) from None
        got = getattr(response, "usage", None)
        if got is not None:
            usage[0] = usage[0] + Usage(token_count(getattr(got, "prompt_tokens", 0)),
                                        token_count(getattr(got, "completion_tokens", 0)))
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            return None, "malformed response: no choices"
        if not isinstance(content, str) or not content.strip():
            return None, "malformed reply: no text"
        return self.redact(content), ""


MAX_TOKENS_PER_CALL = 10_000_000  # far above any context window; more is a broken usage report


def token_count(value: object) -> int:
    """A reported token count as an int in [0, MAX_TOKENS_PER_CALL]; anything else (negative, 1e30, NaN,
    text, bool) is a broken report, counted as 0 and logged, so it can never inflate a cost."""
    if value is None:
        return 0
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is not None and number == number and 0 <= number <= MAX_TOKENS_PER_CALL and number == int(number):
        return int(number)
    logger.warning("ignoring an invalid token count in a usage report: %.60r", value)
    return 0


class _Fatal(Exception):
    """An attempt failure the SDK already retried (or that is not retryable)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _url_password(url: str | None) -> str:
    """The password in `url`'s user info (a secret to redact like the key), "" when none."""
    try:
        return urlsplit(url or "").password or ""
    except ValueError:
        return ""


def _safe_check(check: Callable[[str], str | None], text: str) -> str:
    try:
        return check(text) or ""
    except Exception as exc:  # a broken checker reads as a rejected reply, never a crash
        return f"reply check raised {type(exc).__name__}"


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
