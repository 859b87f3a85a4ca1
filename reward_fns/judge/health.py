"""Is the judge alive? A start-up probe (one real request) and a failure window during training.

A judge that never answers (no key on a worker node, no route to the endpoint, a mistyped URL) does
not crash anything by itself: every caption reward quietly falls back to similarity alone. So:
- `probe_judge(config)` sends one real judge request (a fixed caption pair, no cache) and returns
  its `JudgeResult`; the launch preflight and every reward worker call it before training
  (`judge.startup_check`, default true);
- `JudgeHealth` keeps the outcome of the last `judge.failure_window` judgements that went to the
  endpoint (cache hits and flagged injections are not judgements); once the window is full and its
  failure rate reaches `judge.max_failure_rate`, `failing()` says why and the reward manager stops
  the run (`judge.on_failure: abort`, the default) or logs it loudly and goes on with similarity
  alone (`on_failure: similarity`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections import deque
from typing import TYPE_CHECKING, Any

from reward_fns.registry import caption_task_names

if TYPE_CHECKING:
    from reward_fns.judge.client import JudgeConfig, JudgeResult

ON_FAILURE = ("abort", "similarity")
PROBE_DEADLINE_S = 90.0  # a probe never waits longer than this (or the configured deadline_s if shorter)
PROBE_MAX_RETRIES = 2
# The probe's caption pair: a real judge request, small and always the same (never cached).
PROBE_REFERENCE = "The surgeon clips and divides the cystic duct, then dissects the gallbladder from the liver bed."
PROBE_PREDICTION = "The cystic duct is clipped and cut before the gallbladder is separated from the liver."


def judge_used(settings: Any) -> bool:
    """Whether a MedGRPORewardConfig rewards any captioned task (whose reward uses the judge) with the judge on."""
    return bool(settings.judge.enabled and any(settings.tasks.get(task) for task in caption_task_names()))


class JudgeUnavailableError(RuntimeError):
    """The judge does not answer (start-up probe failed, or too many failures in the window)."""


class JudgeHealth:
    """Outcomes of the last `window` judgements; `failing()` is a reason once the window is full and
    at least `max_rate` of it failed."""

    def __init__(self, window: int, max_rate: float):
        self.window, self.max_rate = window, max_rate
        self._recent: deque[bool] = deque(maxlen=window)  # True: failed
        self.judged = self.failed = 0
        self.last_reason = ""

    def record(self, ok: bool, reason: str = "") -> None:
        self._recent.append(not ok)
        self.judged += 1
        if not ok:
            self.failed += 1
            self.last_reason = reason or self.last_reason

    def failing(self) -> str | None:
        """Why the judge counts as dead (None while it does not)."""
        if len(self._recent) < self.window:
            return None
        failures = sum(self._recent)
        if failures < self.max_rate * self.window:
            return None
        return (f"{failures} of the last {self.window} judge requests failed (max_failure_rate "
                f"{self.max_rate:g}); last reason: {self.last_reason or 'unknown'}")


def probe_config(config: JudgeConfig) -> JudgeConfig:
    """`config` with the probe's shorter deadline and fewer retries."""
    return dataclasses.replace(config, deadline_s=min(config.deadline_s, PROBE_DEADLINE_S),
                               max_retries=min(config.max_retries, PROBE_MAX_RETRIES))


def probe_judge(config: JudgeConfig, base_url: str | None = None) -> JudgeResult:
    """Send one real judge request and return its result (never raises on endpoint trouble). Runs
    on its own event loop in a helper thread, so it works inside a running loop too."""
    from reward_fns.judge.client import MedicalJudge

    async def once() -> JudgeResult:
        judge = MedicalJudge(probe_config(config), cache=None, base_url=base_url)
        try:
            return await judge.request(PROBE_REFERENCE, PROBE_PREDICTION)
        finally:
            await judge.aclose()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="medgrpo-judge-probe") as pool:
        return pool.submit(asyncio.run, once()).result()
