"""Cut a JSON list of records into batches of whole records without holding the file as Python objects.

Two ways to find record boundaries:
- `scan` (safe): read block by block; cut at the last place where the brace depth returns to zero
  (numpy; string-aware when the quick count fails) or at the learned record separator, and decode
  each batch here, which proves the cut.
- `fast_spans`: learn the separator between two records (e.g. `},\\n  {"conversations"`) from the
  first block, then only read a small window at every `block_bytes` to find the next separator. It
  cannot occur inside a JSON string (its quote would be escaped there), only in a nested object
  whose first key is the record's first key. Whoever decodes a span proves (or disproves) its cut,
  and a caller that meets a span that does not decode must start over with `scan`.
The sha256 of the input is computed on a side thread either way.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec
import numpy as np

_WS = b" \t\r\n"
_LBRACE, _RBRACE, _QUOTE, _BSLASH = 123, 125, 34, 92
_WINDOW = 1 << 20
_ANY = msgspec.json.Decoder(list[msgspec.Raw])


class JSONStreamError(ValueError):
    """The input is not a JSON list of objects; names the file and byte offset."""


@dataclass(frozen=True)
class Span:
    """A run of whole records in the file: bytes [offset, offset + length); `records` -1 if unknown."""

    offset: int
    length: int
    records: int = -1


def read_span(fh: BinaryIO, span: Span) -> bytes:
    """The span's records as a JSON list `[...]`."""
    fh.seek(span.offset)
    return b"[" + fh.read(span.length) + b"]"


def _brace_events(view: np.ndarray, string_aware: bool) -> tuple[np.ndarray, np.ndarray]:
    opens, closes = np.flatnonzero(view == _LBRACE), np.flatnonzero(view == _RBRACE)
    if string_aware:
        quotes = np.flatnonzero(view == _QUOTE)
        if quotes.size and np.any(view[np.maximum(quotes - 1, 0)] == _BSLASH):
            keep = []
            for q in quotes.tolist():  # rare: only blocks with a backslash right before a quote
                run = 0
                while q - run - 1 >= 0 and view[q - run - 1] == _BSLASH:
                    run += 1
                if run % 2 == 0:
                    keep.append(q)
            quotes = np.asarray(keep, dtype=np.int64)
        opens = opens[np.searchsorted(quotes, opens) % 2 == 0]
        closes = closes[np.searchsorted(quotes, closes) % 2 == 0]
    pos = np.concatenate([opens, closes])
    delta = np.concatenate([np.ones(opens.size, np.int32), -np.ones(closes.size, np.int32)])
    order = np.argsort(pos, kind="stable")
    return pos[order], delta[order]


def record_ends(data: bytes, string_aware: bool = False) -> np.ndarray:
    """Byte positions of the `}` closing each top-level object (data starts at depth 0)."""
    view = np.frombuffer(data, dtype=np.uint8)
    pos, delta = _brace_events(view, string_aware)
    depth = np.cumsum(delta)
    if depth.size and depth.min() < 0:
        return pos[:0]
    return pos[(depth == 0) & (delta < 0)]


def _lstrip_sep(buf: bytes, start: int) -> int:
    """Skip whitespace and one comma separator."""
    n = len(buf)
    while start < n and buf[start] in _WS:
        start += 1
    if start < n and buf[start] == 44:  # ','
        start += 1
        while start < n and buf[start] in _WS:
            start += 1
    return start


def _separator(buf: bytes, close: int) -> bytes | None:
    """Bytes from a record's closing `}` to the end of the next record's first key, if regular."""
    i = _lstrip_sep(buf, close + 1)
    if i >= len(buf) or buf[i] != _LBRACE or buf[close + 1:i].strip(_WS) != b",":
        return None
    j = i + 1
    while j < len(buf) and buf[j] in _WS:
        j += 1
    if j >= len(buf) or buf[j] != _QUOTE:
        return None
    k = buf.find(b'"', j + 1)
    if k < 0 or b"\\" in buf[j:k]:
        return None
    return buf[close:k + 1]


class RecordStream:
    """Batches of records from a JSON list file, their spans, and the file's sha256."""

    def __init__(self, path: str, block_bytes: int = 8 << 20):
        self.path, self.block_bytes = os.fspath(path), block_bytes
        self.spans: list[Span] = []
        self._signature: bytes | None = None
        self._hash_thread: threading.Thread | None = None
        self._sha256 = ""

    # ---- sha256 --------------------------------------------------------------------------------
    def hash_async(self) -> None:
        """Start hashing the file on a side thread (hashlib releases the GIL)."""
        if self._hash_thread is None:
            self._hash_thread = threading.Thread(target=self._hash, name="sha256", daemon=True)
            self._hash_thread.start()

    def _hash(self) -> None:
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            while block := fh.read(self.block_bytes):
                digest.update(block)
        self._sha256 = digest.hexdigest()

    @property
    def sha256(self) -> str:
        self.hash_async()
        self._hash_thread.join()
        return self._sha256

    # ---- safe scan -----------------------------------------------------------------------------
    def _head(self, buf: bytes, done: bool) -> int | None:
        """Offset just after the opening '[' (None: need more bytes)."""
        head = _lstrip_sep(buf, 0) if buf.strip() else len(buf)
        if head >= len(buf) and not done:
            return None
        if head >= len(buf) or buf[head] != 91:  # '['
            raise JSONStreamError(f"{self.path}: expected a JSON list '[' at byte {head}")
        return head + 1

    def scan(self, decoder: msgspec.json.Decoder) -> Iterator[list[Any]]:
        """Read block by block and yield decoded batches (every cut proven by its decode)."""
        self.spans = []
        with open(self.path, "rb") as fh:
            buf, base, started, done = b"", 0, False, False
            while not done:
                block = fh.read(self.block_bytes)
                done = not block
                buf += block
                if not started:
                    head = self._head(buf, done)
                    if head is None:
                        continue
                    buf, base, started = buf[head:], base + head, True
                start = _lstrip_sep(buf, 0)
                if done:
                    yield from self._tail(decoder, buf, base, start)
                    break
                cut = self._cut(decoder, buf, start, base)
                if cut is None:
                    continue
                end, records = cut
                self.spans.append(Span(base + start, end - start, len(records)))
                yield records
                buf, base = buf[end:], base + end

    def _cut(self, decoder: msgspec.json.Decoder, buf: bytes, start: int, base: int
             ) -> tuple[int, list[Any]] | None:
        """Decode the whole records at the front of `buf`; None when there is none yet."""
        if self._signature:
            pos = buf.rfind(self._signature, start)
            if pos >= 0:
                try:
                    return pos + 1, decoder.decode(b"[" + buf[start:pos + 1] + b"]")
                except msgspec.DecodeError:
                    pass
        for string_aware in (False, True):
            ends = record_ends(buf[start:], string_aware)
            if not ends.size:
                continue
            end = start + int(ends[-1]) + 1
            try:
                records = decoder.decode(b"[" + buf[start:end] + b"]")
            except msgspec.DecodeError as exc:
                if string_aware:  # exact boundaries that do not decode: the JSON itself is broken
                    raise JSONStreamError(f"{self.path}: invalid JSON between bytes {base + start} and "
                                          f"{base + end}: {exc}") from None
                continue
            if ends.size > 1:
                self._signature = _separator(buf, start + int(ends[0]))
            return end, records
        return None

    def _tail(self, decoder: msgspec.json.Decoder, buf: bytes, base: int, start: int) -> Iterator[list[Any]]:
        body = buf[start:].rstrip(_WS)
        if not body.endswith(b"]"):
            raise JSONStreamError(f"{self.path}: the JSON list is not closed with ']' (truncated file?)")
        body = body[:-1].rstrip(_WS)
        if not body:
            return
        try:
            records = decoder.decode(b"[" + body + b"]")
        except msgspec.DecodeError as exc:
            raise JSONStreamError(f"{self.path}: invalid JSON after byte {base + start}: {exc}") from None
        self.spans.append(Span(base + start, len(body), len(records)))
        yield records

    # ---- fast spans ----------------------------------------------------------------------------
    def fast_spans(self) -> Iterator[Span]:
        """Spans of about `block_bytes`, cut at the learned separator (unproven, see module doc).

        Falls back to `scan` (yielding its proven spans) when no regular separator is found.
        """
        self.spans = []
        size = os.path.getsize(self.path)
        if size == 0:
            raise JSONStreamError(f"{self.path}: empty file, expected a JSON list")
        with open(self.path, "rb") as fh:
            first, sig, start = b"", None, 0
            while sig is None and len(first) < min(size, 2 * self.block_bytes):
                first += fh.read(max(_WINDOW, len(first)))  # 1 MB, 2 MB, 4 MB, ...
                head = self._head(first, True)
                start = _lstrip_sep(first, head)
                ends = record_ends(first[start:], True)
                sig = _separator(first, start + int(ends[0])) if ends.size > 1 else None
            if sig is None or first[start:start + 1] != b"{":
                for _ in self.scan(_ANY):
                    yield self.spans[-1]
                return
            tail_end = self._list_end(fh, size)
            pos, step = start, sig.find(b"{", 1)
            while True:
                target = pos + self.block_bytes
                cut = self._find(fh, sig, target, tail_end) if target < tail_end else -1
                if cut < 0:
                    span = Span(pos, tail_end - pos)
                    self.spans.append(span)
                    yield span
                    return
                span = Span(pos, cut + 1 - pos)
                self.spans.append(span)
                yield span
                pos = cut + step

    def _list_end(self, fh: BinaryIO, size: int) -> int:
        """Offset just after the last record (before the closing ']')."""
        base = max(0, size - _WINDOW)
        fh.seek(base)
        tail = fh.read().rstrip(_WS)
        if not tail.endswith(b"]"):
            raise JSONStreamError(f"{self.path}: the JSON list is not closed with ']' (truncated file?)")
        return base + len(tail[:-1].rstrip(_WS))

    def _find(self, fh: BinaryIO, sig: bytes, target: int, limit: int) -> int:
        """Offset of the first separator at or after `target` (its closing brace), or -1."""
        while target < limit:
            fh.seek(target)
            window = fh.read(min(_WINDOW, limit - target) + len(sig))
            i = window.find(sig)
            if i >= 0 and target + i < limit:
                return target + i
            if i >= 0 or len(window) <= len(sig):
                return -1
            target += len(window) - len(sig)
        return -1
