"""The async medical LLM judge: any OpenAI-compatible endpoint through `ChatClient`, plus a cache.

`MedicalJudge.score` never raises on endpoint or model trouble: `ChatClient` retries (the openai
SDK's retries, plus a re-ask for replies that fail the strict parser) within a hard deadline, and
the judge then returns `ok=False` with a redacted reason. The API key is read from the environment
variable named by `JudgeConfig.api_key_env` and is never stored in the config, logged or shown.
`backend: verl` sends the same requests to the reward-model router verl hands the reward manager.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reward_fns.defaults import reward_defaults, type_problem
from reward_fns.judge.cache import JudgeCache, cache_key
from reward_fns.judge.chat import DUMMY_API_KEY, ChatClient, ChatError, Usage
from reward_fns.judge.health import ON_FAILURE, JudgeHealth
from reward_fns.judge.injection import detect_injection
from reward_fns.judge.prompt import build_messages
from reward_fns.judge.reply import parse_reply, reply_problem
from reward_fns.judge.tally import Prices, current_tally

logger = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BACKENDS = ("openai", "verl")
_DEPRECATED = ("backoff_base_s", "backoff_max_s")  # the openai SDK's own backoff is used now


@dataclass(frozen=True)
class JudgeConfig:
    """Judge settings (one YAML block; every key and its default: reward_fns/medgrpo_reward.yaml, built
    with `from_dict`). `backend`: `openai` (any OpenAI-compatible `base_url`; None = api.openai.com)
    or `verl` (verl's reward-model router; `base_url` unused). `timeout_s`
    bounds one HTTP attempt (connect to last byte), `deadline_s` one judgement (queue, retries and
    waits included). Prices are USD per million tokens (0 = unpriced). `cache_path=None`: no cache.
    Dead-judge handling (reward_fns/judge/health.py): `startup_check` sends one real request before
    training (launch preflight and every reward worker); `on_failure` (abort | similarity) says what
    training does once `max_failure_rate` of the last `failure_window` judge requests failed."""

    backend: str
    base_url: str | None
    model: str
    api_key_env: str
    temperature: float
    max_tokens: int
    timeout_s: float
    deadline_s: float
    max_retries: int
    concurrency: int
    cache_path: str | None
    max_prediction_chars: int
    enabled: bool
    prompt_price_per_mtok: float
    completion_price_per_mtok: float
    startup_check: bool
    on_failure: str
    failure_window: int
    max_failure_rate: float

    def __post_init__(self) -> None:
        if problem := type_problem(self):
            raise ValueError(f"judge config: {problem}")
        if not _ENV_NAME.match(self.api_key_env):
            raise ValueError("judge config: 'api_key_env' must be the NAME of an environment variable "
                             "holding the key (e.g. OPENAI_API_KEY), not the key itself")
        if self.backend not in BACKENDS:
            raise ValueError(f"judge config: 'backend' must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.on_failure not in ON_FAILURE:
            raise ValueError(f"judge config: 'on_failure' must be one of {list(ON_FAILURE)}, got {self.on_failure!r}")
        if not 0 < self.max_failure_rate <= 1:
            raise ValueError(f"judge config: 'max_failure_rate' must be in (0, 1], got {self.max_failure_rate}")
        positive = ("timeout_s", "deadline_s", "concurrency", "max_tokens", "max_prediction_chars", "failure_window")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"judge config: '{name}' must be > 0, got {getattr(self, name)}")
        for name in ("max_retries", "temperature", "prompt_price_per_mtok", "completion_price_per_mtok"):
            if getattr(self, name) < 0:
                raise ValueError(f"judge config: '{name}' must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> JudgeConfig:
        """Build from a mapping (YAML/Hydra) over the defaults (the `judge` block of
        reward_fns/medgrpo_reward.yaml); an unknown key is an error naming the known ones."""
        data = dict(data or {})
        for name in _DEPRECATED:
            if data.pop(name, None) is not None:
                logger.warning("judge config: '%s' is ignored (the openai SDK's own backoff is used)", name)
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"judge config: unknown key(s) {unknown}; known keys: {known}")
        if isinstance(data.get("cache_path"), os.PathLike):
            data["cache_path"] = os.fspath(data["cache_path"])
        return cls(**{**reward_defaults("judge"), **data})

    @classmethod
    def off(cls) -> JudgeConfig:
        """The defaults with the judge disabled (a reward config without a judge block)."""
        return cls.from_dict({"enabled": False})

    def api_key(self) -> str:
        """The key from the environment, or the dummy key local servers accept."""
        return os.environ.get(self.api_key_env) or DUMMY_API_KEY

    @property
    def prices(self) -> Prices:
        return Prices(self.prompt_price_per_mtok, self.completion_price_per_mtok)


@dataclass(frozen=True)
class JudgeResult:
    """One judgement: `score` on the 1-5 scale (None when not ok) and what it took."""

    score: float | None
    ok: bool
    cached: bool = False
    injection: bool = False
    http_calls: int = 0
    reason: str = ""
    usage: Usage = field(default_factory=Usage)


class MedicalJudge:
    """Scores predictions against references; usable from several event loops in turn.

    `base_url` overrides the config's endpoint (the verl backend passes the router's address)."""

    def __init__(self, config: JudgeConfig, cache: JudgeCache | None = None, base_url: str | None = None):
        self.config = config
        if cache is None and config.cache_path:
            cache = JudgeCache(config.cache_path)
        self.cache = cache
        self.chat = ChatClient(base_url or config.base_url, api_key_env=config.api_key_env,
                               concurrency=config.concurrency, timeout_s=config.timeout_s,
                               deadline_s=config.deadline_s, max_retries=config.max_retries)
        self.health = JudgeHealth(config.failure_window, config.max_failure_rate)
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]] = (
            weakref.WeakKeyDictionary())

    @property
    def http_calls(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self.chat.stats.http_attempts

    def __repr__(self) -> str:
        return (f"MedicalJudge(backend={self.config.backend!r}, model={self.config.model!r}, "
                f"base_url={self.chat.base_url!r}, http_calls={self.http_calls})")

    async def aclose(self) -> None:
        """Close this loop's HTTP client (a later call opens a new one)."""
        await self.chat.aclose()

    async def score(self, reference: str, prediction: str) -> JudgeResult:
        """Judge `prediction` against `reference` (the cache first); never raises on endpoint or reply
        trouble. The one place that counts judgements into the current tally and the health window."""
        result = await self._score(reference, prediction)
        if self.config.enabled and not result.cached and not result.injection:  # a judgement sent (or not sent)
            self.health.record(result.ok, result.reason)
        tally = current_tally()
        if tally is not None and self.config.enabled:
            tally.injections += int(result.injection)
            tally.cache_hits += int(result.cached)
            tally.failures += int(not result.ok)
            tally.requests += int(result.http_calls > 0)  # a judgement that reached the endpoint
            tally.http_calls += result.http_calls
            tally.add_usage(result.usage)
        return result

    async def _score(self, reference: str, prediction: str) -> JudgeResult:
        if not self.config.enabled:
            return JudgeResult(None, ok=False, reason="judge disabled")
        flagged, why = detect_injection(prediction[: self.config.max_prediction_chars])  # what the judge would see
        if flagged:
            return JudgeResult(1.0, ok=True, injection=True, reason=f"injection: {why}")
        key = cache_key(self.config.model, reference, prediction)
        inflight = self._inflight.setdefault(asyncio.get_running_loop(), {})
        if key in inflight:  # the same pair is being judged right now (GRPO groups repeat answers)
            shared = await asyncio.shield(inflight[key])
            return replace(shared, cached=shared.ok, http_calls=0, usage=Usage())
        future: asyncio.Future[JudgeResult] = asyncio.get_running_loop().create_future()
        inflight[key] = future
        try:
            result = await self._cached_or_requested(key, reference, prediction)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            inflight.pop(key, None)

    async def _cached_or_requested(self, key: str, reference: str, prediction: str) -> JudgeResult:
        hit = self.cache.lookup(key) if self.cache is not None else None
        if isinstance(hit, dict) and isinstance(hit.get("score"), (int, float)):
            return JudgeResult(float(hit["score"]), ok=True, cached=True)
        result, scores = await self._request(reference, prediction)
        if result.ok and self.cache is not None:
            await self.cache.store(key, {"score": result.score, "scores": scores})
        return result

    async def request(self, reference: str, prediction: str) -> JudgeResult:
        """One judge request to the endpoint: no cache, no flagging, no tally (the start-up probe)."""
        return (await self._request(reference, prediction))[0]

    async def _request(self, reference: str, prediction: str) -> tuple[JudgeResult, dict[str, float]]:
        cfg = self.config
        messages = build_messages(reference, prediction, cfg.max_prediction_chars)
        try:
            done = await self.chat.complete(messages, model=cfg.model, temperature=cfg.temperature,
                                            max_tokens=cfg.max_tokens, check=reply_problem)
        except ChatError as err:
            logger.warning("judge failed after %d call(s): %s", err.attempts, err.reason)
            return JudgeResult(None, ok=False, http_calls=err.attempts, reason=err.reason, usage=err.usage), {}
        reply = parse_reply(done.text)
        return JudgeResult(reply.score, ok=True, http_calls=done.attempts, usage=done.usage), dict(reply.scores)
