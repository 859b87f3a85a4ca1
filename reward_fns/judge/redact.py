"""Remove API keys from any text that leaves the judge client (logs, reasons, exceptions, caches).

A server may echo the request's `Authorization` header in an error body or even in a reply, so
every string the client hands out passes through `Redactor.redact` first: the client's own key,
any `Bearer <token>` and anything shaped like an OpenAI-style secret (`sk-...`) become `[REDACTED]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
_MIN_SECRET_CHARS = 6  # shorter "keys" (e.g. the dummy EMPTY) are not secrets worth hiding
_NOT_DONE = r"(?!\[REDACTED\])"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)" + _NOT_DONE + r"[^\s\"',;}\]]+"),
    re.compile(r"(?i)((?:api[_-]?key|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)(?!bearer\b)" + _NOT_DONE
               + r"[^\s\"',;}\]]+"),
    re.compile(r"()\bsk-[A-Za-z0-9_\-]{8,}"),
)


class Redactor:
    """Replaces the given secrets and key-shaped tokens by `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True)

    def redact(self, text: object) -> str:
        """`text` as a string without any secret in it."""
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            out = pattern.sub(lambda m: m.group(1) + REDACTED, out)
        return out

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secret(s))"
