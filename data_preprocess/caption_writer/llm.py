"""One model as the caption stage uses it: cached, accounted, re-asked when the reply is unreadable.

HTTP (concurrency, per-call deadline, retries honouring Retry-After, key redaction, re-asking a reply
that fails a check) is the judge client's `ChatClient.complete`, the project's one implementation;
this layer adds the SQLite cache (key = model + prompt version + request, the request being built
from the item's facts), per-model token accounting, and the reply parser as the client's check.
Only replies that parse are cached. `open_cache` checks the cache file before the run (one line for a
folder, random bytes, a truncated or corrupt database, a read-only file or folder, a lock held too long).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from data_preprocess.caption_writer.accounting import Ledger, ModelUsage
from data_preprocess.caption_writer.facts import canonical_hash
from data_preprocess.caption_writer.prompts import PROMPT_VERSION
from reward_fns.judge.cache import JudgeCache
from reward_fns.judge.chat import ChatClient, ChatError, Usage, token_count


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
                use.cached_prompt_tokens += token_count(hit.get("prompt_tokens", 0))
                use.cached_completion_tokens += token_count(hit.get("completion_tokens", 0))
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


_SQLITE_MAGIC = b"SQLite format 3\x00"
CACHE_WAIT_S = 30.0  # how long a cache locked by another process is waited for (the judge cache's busy timeout)


def open_cache(path: str | Path, wait_s: float = CACHE_WAIT_S) -> JudgeCache:
    """Check that `path` is a usable SQLite cache (readable, intact, writable, not locked for over `wait_s`
    seconds), then open it; ValueError with one line naming the file otherwise."""
    path = Path(path).expanduser()
    where = f"--cache {path}"
    if path.is_dir():
        raise ValueError(f"{where} is a folder, not an SQLite cache file")
    if path.exists():
        if not path.is_file():
            raise ValueError(f"{where} is not a regular file")
        try:
            with path.open("rb") as handle:
                head = handle.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise ValueError(f"{where} cannot be read: {exc.strerror or exc}") from None
        if head and head != _SQLITE_MAGIC:
            raise ValueError(f"{where} is not an SQLite database (another format or random bytes); "
                             "delete it or choose another path")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{where}: cannot create its folder: {exc.strerror or exc}") from None
    _probe(path, where, wait_s)
    try:
        return JudgeCache(path)
    except (sqlite3.Error, OSError) as exc:
        raise ValueError(f"{where} cannot be opened: {exc}") from None


def _probe(path: Path, where: str, wait_s: float) -> None:
    """Read every page (quick_check) and write in a transaction that is rolled back."""
    try:
        conn = sqlite3.connect(str(path), timeout=wait_s, isolation_level=None)
    except (sqlite3.Error, OSError) as exc:
        raise ValueError(f"{where} cannot be opened: {exc}") from None
    try:
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise ValueError(f"{where} is corrupt (SQLite quick_check: {str(check[:3])[:200]}); delete it")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("SELECT key, value FROM judge_cache LIMIT 1").fetchall()
        conn.execute("INSERT OR REPLACE INTO judge_cache (key, value) VALUES ('medgrpo-write-probe', '{}')")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise ValueError(f"{where}: {_sqlite_problem(exc, wait_s)}") from None
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


def _sqlite_problem(exc: sqlite3.Error, wait_s: float) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"locked by another process for over {wait_s:g} s ({text})"
    if "readonly" in text or "read-only" in text:
        return f"read-only: the cache must be writable, and so must its folder ({text})"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"truncated or corrupt SQLite database ({text}); delete it"
    if "unable to open" in text:
        return f"cannot be opened or written, nor its journal beside it ({text})"
    return f"unusable SQLite cache ({type(exc).__name__}: {text})"
