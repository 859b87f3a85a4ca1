"""Remove API keys and URL passwords from any text that leaves the judge client (logs, reasons, caches).

A server may echo the request's `Authorization` header in an error body or even in a reply, so
every string the client hands out passes through `Redactor.redact` first: the client's own key,
any `Bearer <token>`, anything shaped like an OpenAI-style secret (`sk-...`), the password of a URL
(`https://user:pw@host`) and a key in a URL query become `[REDACTED]`. `bare_url` shortens a URL for
a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[REDACTED]"
_MIN_SECRET_CHARS = 6  # shorter "keys" (e.g. the dummy EMPTY) are not secrets worth hiding
_NOT_DONE = r"(?!\[REDACTED\])"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)" + _NOT_DONE + r"[^\s\"',;}\]]+"),
    re.compile(r"(?i)((?:api[_-]?key|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)(?!bearer\b)" + _NOT_DONE
               + r"[^\s\"',;}\]]+"),
    re.compile(r"()\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)" + _NOT_DONE + r"[^\s/?#@]+(?=@)"),  # user:password@ in a URL
    re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|password|secret|sig|signature)=)" + _NOT_DONE
               + r"[^\s&#\"']+"),  # a secret in a URL query
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


def bare_url(url: object) -> str:
    """`url` fit for a report or a log: scheme, host, port and path only (user info such as a password,
    query string and fragment dropped, where some endpoints carry a key); "" for no URL."""
    if url is None or url == "":
        return ""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "[unparseable URL]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))
