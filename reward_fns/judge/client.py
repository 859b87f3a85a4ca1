"""The async medical LLM judge: any OpenAI-compatible endpoint, bounded concurrency, retries, cache.

`MedicalJudge.score` never raises on endpoint or model trouble: it retries 429/5xx/timeouts/
connection errors/malformed replies with jittered exponential backoff (honouring `Retry-After`)
and then returns `ok=False` with the reason. The API key is read from the environment variable
named by `JudgeConfig.api_key_env` at client creation and is never stored in the config, logged
or shown by `repr`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import os
import random
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import openai

from reward_fns.judge.cache import JudgeCache, cache_key
from reward_fns.judge.injection import detect_injection
from reward_fns.judge.prompt import build_messages
from reward_fns.judge.reply import JudgeReply, parse_reply

logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 409, 425, 429})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DUMMY_API_KEY = "EMPTY"
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "base_url": (str, type(None)), "model": (str,), "api_key_env": (str,), "temperature": _NUMBER,
    "max_tokens": (int,), "timeout_s": _NUMBER, "max_retries": (int,), "backoff_base_s": _NUMBER,
    "backoff_max_s": _NUMBER, "concurrency": (int,), "cache_path": (str, type(None)),
    "max_prediction_chars": (int,), "enabled": (bool,),
}


@dataclass(frozen=True)
class JudgeConfig:
    """Judge settings (one YAML block). `base_url=None` means the OpenAI default endpoint;
    `backoff_max_s` caps every wait, `Retry-After` included; `cache_path=None` disables the cache."""

    base_url: str | None = None
    model: str = "gpt-4.1"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = 128
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    concurrency: int = 32
    cache_path: str | None = None
    max_prediction_chars: int = 2000
    enabled: bool = True

    def __post_init__(self) -> None:
        for name, kinds in _FIELD_TYPES.items():
            value = getattr(self, name)
            if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
                allowed = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
                raise ValueError(f"judge config: '{name}' must be {allowed}, got {type(value).__name__}")
        if not _ENV_NAME.match(self.api_key_env):
            raise ValueError("judge config: 'api_key_env' must be the NAME of an environment variable "
                             "holding the key (e.g. OPENAI_API_KEY), not the key itself")
        positive = ("timeout_s", "concurrency", "max_tokens", "max_prediction_chars")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"judge config: '{name}' must be > 0, got {getattr(self, name)}")
        for name in ("max_retries", "backoff_base_s", "backoff_max_s", "temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"judge config: '{name}' must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> JudgeConfig:
        """Build from a mapping (YAML/Hydra); an unknown key is an error naming the known ones."""
        data = dict(data or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"judge config: unknown key(s) {unknown}; known keys: {known}")
        if isinstance(data.get("cache_path"), os.PathLike):
            data["cache_path"] = os.fspath(data["cache_path"])
        return cls(**data)

    def api_key(self) -> str:
        """The key from the environment, or the dummy key local servers accept."""
        return os.environ.get(self.api_key_env) or DUMMY_API_KEY


@dataclass(frozen=True)
class JudgeResult:
    """One judgement: `score` on the 1-5 scale (None when not ok)."""

    score: float | None
    ok: bool
    cached: bool = False
    injection: bool = False
    http_calls: int = 0
    reason: str = ""


@dataclass
class _LoopState:
    client: openai.AsyncOpenAI
    semaphore: asyncio.Semaphore
    inflight: dict[str, asyncio.Future[JudgeResult]] = field(default_factory=dict)


class MedicalJudge:
    """Scores predictions against references; usable from several event loops in turn."""

    def __init__(self, config: JudgeConfig, cache: JudgeCache | None = None):
        self.config = config
        if cache is None and config.cache_path:
            cache = JudgeCache(config.cache_path)
        self.cache = cache
        self.http_calls = 0
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary())

    def __repr__(self) -> str:
        return (f"MedicalJudge(model={self.config.model!r}, base_url={self.config.base_url!r}, "
                f"http_calls={self.http_calls})")

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            client = openai.AsyncOpenAI(base_url=self.config.base_url, api_key=self.config.api_key(),
                                        max_retries=0, timeout=self.config.timeout_s)
            state = self._states[loop] = _LoopState(client, asyncio.Semaphore(self.config.concurrency))
        return state

    async def aclose(self) -> None:
        """Close this loop's HTTP client (a later call opens a new one)."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.close()

    async def score(self, reference: str, prediction: str) -> JudgeResult:
        """Judge `prediction` against `reference`; never raises on endpoint or reply trouble."""
        if not self.config.enabled:
            return JudgeResult(None, ok=False, reason="judge disabled")
        flagged, why = detect_injection(prediction)
        if flagged:
            return JudgeResult(1.0, ok=True, injection=True, reason=f"injection: {why}")
        key = cache_key(self.config.model, reference, prediction)
        inflight = self._state().inflight
        if key in inflight:  # the same pair is being judged right now (GRPO groups repeat answers)
            shared = await asyncio.shield(inflight[key])
            return replace(shared, cached=shared.ok, http_calls=0)
        future: asyncio.Future[JudgeResult] = asyncio.get_running_loop().create_future()
        inflight[key] = future
        try:
            result = await self._judge_uncached(key, reference, prediction)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            inflight.pop(key, None)

    async def _judge_uncached(self, key: str, reference: str, prediction: str) -> JudgeResult:
        hit = self.cache.lookup(key) if self.cache is not None else None
        if isinstance(hit, dict) and isinstance(hit.get("score"), (int, float)):
            return JudgeResult(float(hit["score"]), ok=True, cached=True)
        reply, calls, reason = await self._request(build_messages(
            reference, prediction, self.config.max_prediction_chars))
        if reply is None or reply.score is None:
            logger.warning("judge failed after %d call(s): %s", calls, reason)
            return JudgeResult(None, ok=False, http_calls=calls, reason=reason)
        if self.cache is not None:
            await self.cache.store(key, {"score": reply.score, "scores": dict(reply.scores)})
        return JudgeResult(reply.score, ok=True, http_calls=calls)

    async def _request(self, messages: list[dict[str, str]]) -> tuple[JudgeReply | None, int, str]:
        """Call the endpoint with retries: (parsed reply or None, HTTP calls made, failure reason)."""
        cfg, state = self.config, self._state()
        calls, reason = 0, ""
        for attempt in range(cfg.max_retries + 1):
            retry_after: float | None = None
            calls += 1
            self.http_calls += 1
            try:
                async with state.semaphore:
                    response = await state.client.chat.completions.create(
                        model=cfg.model, messages=messages,  # type: ignore[arg-type]
                        temperature=cfg.temperature, max_tokens=cfg.max_tokens)
                content = response.choices[0].message.content if response.choices else None
                reply = parse_reply(content)
                if reply.ok:
                    return reply, calls, ""
                reason = f"malformed reply: {reply.reason}"
            except openai.APIStatusError as exc:
                reason = f"HTTP {exc.status_code}: {_clip(exc.message)}"
                if exc.status_code < 500 and exc.status_code not in _RETRY_STATUS:
                    return None, calls, reason
                if exc.status_code in (429, 503):
                    retry_after = _retry_after_s(exc.response.headers)
            except openai.APITimeoutError:
                reason = f"timeout after {cfg.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                reason = f"connection error: {_clip(str(exc.__cause__ or exc))}"
            except (ValueError, openai.APIResponseValidationError, AttributeError, IndexError,
                    TypeError) as exc:
                reason = f"malformed response: {type(exc).__name__}: {_clip(str(exc))}"
            except Exception as exc:  # never let endpoint trouble escape into the reward loop
                return None, calls, f"unexpected {type(exc).__name__}: {_clip(str(exc))}"
            if attempt < cfg.max_retries:
                delay = self._backoff(attempt, retry_after)
                logger.debug("judge attempt %d failed (%s); retrying in %.3f s", attempt + 1, reason, delay)
                await asyncio.sleep(delay)
        return None, calls, f"gave up after {calls} call(s): {reason}"

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cfg = self.config
        delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, cfg.backoff_max_s)


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
