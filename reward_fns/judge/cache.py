"""Persistent SQLite cache of judge results keyed by sha256(model, PROMPT_VERSION, reference, prediction).

One connection per cache (rollback journal, `check_same_thread=False`) guarded by a lock; each call is a
single tiny statement. `lookup` reads inline and `store` writes on a worker thread; neither raises.
Several processes, also on several nodes over a shared filesystem (NFS), may share the file: the
rollback journal (`journal_mode=DELETE`) needs only file locks, whereas WAL needs shared memory that
NFS does not provide; concurrent writers wait up to the busy timeout (30 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reward_fns.judge.prompt import PROMPT_VERSION

logger = logging.getLogger(__name__)
_CACHE_ERRORS = (sqlite3.Error, OSError, ValueError)
_SCHEMA = "CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def cache_key(model: str, reference: str, prediction: str, prompt_version: str = PROMPT_VERSION) -> str:
    """Hex sha256 of the judged request's identity (unambiguous JSON encoding of the four fields)."""
    payload = json.dumps([model, prompt_version, reference, prediction], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """Hit/miss/write counters since the cache was opened."""

    hits: int = 0
    misses: int = 0
    writes: int = 0


class JudgeCache:
    """Key -> JSON value store on SQLite; `get` returns None on a miss."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.path.expanduser(os.fspath(path))
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=DELETE")  # NFS-safe (WAL is not)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self.stats = CacheStats()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None (counted as a miss)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM judge_cache WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.stats.misses += 1
                return None
            self.stats.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store (or replace) a JSON-serialisable value."""
        text = json.dumps(dict(value), ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO judge_cache (key, value) VALUES (?, ?)", (key, text))
            self.stats.writes += 1

    def lookup(self, key: str) -> dict[str, Any] | None:
        """`get` inline (a point read is tens of microseconds); a broken cache is logged and reads as a miss."""
        try:
            return self.get(key)
        except _CACHE_ERRORS as exc:
            logger.warning("judge cache read failed (%s: %s); continuing without it", type(exc).__name__, exc)
            return None

    async def store(self, key: str, value: Mapping[str, Any]) -> None:
        """`put` on a worker thread (a commit may wait on the file); a failed write is logged and skipped."""
        try:
            await asyncio.to_thread(self.put, key, value)
        except _CACHE_ERRORS as exc:
            logger.warning("judge cache write failed (%s: %s); continuing without it", type(exc).__name__, exc)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])

    def close(self) -> None:
        """Close the connection (further calls fail)."""
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"JudgeCache(path={self.path!r}, hits={self.stats.hits}, misses={self.stats.misses})"
