"""Per-sample judge accounting: calls, cache hits, tokens and estimated cost.

The reward manager opens a tally around one sample (`with judge_tally() as tally:`); the judge and
the caption scorer add to whatever tally is current (a context variable, so concurrent samples on
one event loop never mix and tasks started inside the block share it). The numbers go into the
sample's `reward_extra_info`, from where verl aggregates and dumps them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reward_fns.judge.chat import Usage

JUDGE_COUNTERS: tuple[str, ...] = ("requests", "http_calls", "cache_hits", "failures", "injections",
                                   "prompt_tokens", "completion_tokens", "cost_usd")
"""What a sample's judging took, in `reward_extra_info` as `judge_<name>` (`JudgeTally.metrics`)."""
_CURRENT: contextvars.ContextVar[JudgeTally | None] = contextvars.ContextVar("medgrpo_judge_tally", default=None)


@dataclass(frozen=True)
class Prices:
    """USD per million prompt / completion tokens (0 = not priced)."""

    prompt_per_mtok: float = 0.0
    completion_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_mtok + completion_tokens * self.completion_per_mtok) / 1e6


@dataclass
class TokenCounts:
    """What every judge / LLM tally counts: requests, cache hits and billed tokens (priced by `cost`)."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_usage(self, usage: Usage) -> None:
        """Add the tokens billed for one or more completions."""
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens

    def cost(self, prices: Prices) -> float:
        return prices.cost(self.prompt_tokens, self.completion_tokens)


@dataclass
class JudgeTally(TokenCounts):
    """What judging one sample took. `requests`: judgements that reached the endpoint; `cache_hits`:
    judgements answered from the cache (or shared with an identical in-flight request); `failures`:
    judgements without a score (the caption reward then uses similarity alone)."""

    http_calls: int = 0
    failures: int = 0
    injections: int = 0

    def add(self, other: JudgeTally) -> None:
        """Add `other`'s counts to this tally (running totals)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def metrics(self, prices: Prices) -> dict[str, float | int]:
        """Numeric `reward_extra_info` keys `judge_<counter>` (the same for every sample)."""
        values = {**{name: getattr(self, name) for name in self.__dataclass_fields__}, "cost_usd": self.cost(prices)}
        return {f"judge_{name}": values[name] for name in JUDGE_COUNTERS}


@contextlib.contextmanager
def judge_tally() -> Iterator[JudgeTally]:
    """Make a fresh tally current for the block."""
    tally = JudgeTally()
    token = _CURRENT.set(tally)
    try:
        yield tally
    finally:
        _CURRENT.reset(token)


def current_tally() -> JudgeTally | None:
    """The tally of the sample being scored, or None outside `judge_tally()`."""
    return _CURRENT.get()
