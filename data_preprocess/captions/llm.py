"""One model as the caption stage uses it: cached, accounted, re-asked when the reply is unreadable.

HTTP (concurrency, per-call deadline, retries honouring Retry-After, key redaction, re-asking a reply
that fails a check) is the judge client's `ChatClient.complete`, the project's one implementation;
this layer adds the SQLite cache (key = model + prompt version + request, the request being built
from the item's facts), per-model token accounting, and the reply parser as the client's check.
Only replies that parse are cached.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from data_preprocess.captions.accounting import Ledger, ModelUsage
from data_preprocess.captions.facts import canonical_hash
from data_preprocess.captions.prompts import PROMPT_VERSION
from reward_fns.judge.cache import JudgeCache
from reward_fns.judge.chat import ChatClient, ChatError, Usage


class Parsed(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str: ...


P = TypeVar("P", bound=Parsed)


@dataclass
class ModelCall:
    """Requests to one model. `structured=False` drops `response_format` (for endpoints without it)."""

    model: str
    client: ChatClient
    ledger: Ledger
    cache: JudgeCache | None = None
    temperature: float = 0.0
    max_tokens: int = 2048
    structured: bool = True

    def key(self, messages: Sequence[Mapping[str, Any]], response_format: Mapping[str, Any] | None) -> str:
        """Cache key of one request."""
        return canonical_hash({"model": self.model, "prompt_version": PROMPT_VERSION, "messages": list(messages),
                               "response_format": response_format if self.structured else None,
                               "temperature": self.temperature, "max_tokens": self.max_tokens})

    async def ask(self, messages: Sequence[Mapping[str, Any]], response_format: Mapping[str, Any] | None,
                  parse: Callable[[str], P]) -> tuple[P | None, str]:
        """(parsed reply, "") or (None, why); never raises on endpoint or reply trouble."""
        use = self.ledger.usage(self.model)
        use.requests += 1
        key = self.key(messages, response_format) if self.cache is not None else ""
        hit = self.cache.lookup(key) if self.cache is not None else None
        if isinstance(hit, dict) and isinstance(hit.get("text"), str):
            parsed = parse(hit["text"])
            if parsed.ok:
                use.cache_hits += 1
                use.cached_prompt_tokens += int(hit.get("prompt_tokens", 0))
                use.cached_completion_tokens += int(hit.get("completion_tokens", 0))
                return parsed, ""
        unreadable: list[str] = []

        def check(text: str) -> str | None:
            parsed = parse(text)
            if parsed.ok:
                return None
            unreadable.append(parsed.reason)
            return f"unreadable reply: {parsed.reason}"

        try:
            completion = await self.client.complete(
                messages, model=self.model, temperature=self.temperature, max_tokens=self.max_tokens,
                response_format=response_format if self.structured else None, check=check)
        except ChatError as err:
            self._account(use, err.attempts, err.usage, len(unreadable))
            return None, f"{self.model}: {err.reason}"
        self._account(use, completion.attempts, completion.usage, len(unreadable))
        if self.cache is not None:
            await self.cache.store(key, {"text": completion.text, "prompt_tokens": completion.usage.prompt_tokens,
                                         "completion_tokens": completion.usage.completion_tokens})
        return parse(completion.text), ""

    @staticmethod
    def _account(use: ModelUsage, attempts: int, usage: Usage, unreadable: int) -> None:
        use.http_calls += attempts
        use.add_usage(usage)
        use.unreadable_replies += unreadable


def dumps_captions(texts: Sequence[str]) -> str:
    """The writer's accepted reply in canonical form (what a revision request quotes back)."""
    return json.dumps({"captions": list(texts)}, ensure_ascii=False)
