"""Secrets out of what the recipe dry run prints: the resolved config and its messages.

A key named like a secret (`api_key`, `password`, `token`, ...; not `api_key_env`, which holds a
variable NAME) gets `[REDACTED]` as its value; a URL's password (`https://user:pw@host`) becomes
`[REDACTED]`; anything key-shaped in any string (`Bearer ...`, `sk-...`) goes through the judge
client's `Redactor`. Files the recipes need (the emitted reward config) are written unredacted.
"""

from __future__ import annotations

import re
from typing import Any

from reward_fns.judge.redact import REDACTED, Redactor

SECRET_KEY = re.compile(r"(?i)^(?:api[_-]?key|apikey|x[_-]api[_-]key|secret|client[_-]?secret|secret[_-]?key|password|"
                        r"passwd|pwd|token|access[_-]?token|auth[_-]?token|hf[_-]?token|bearer|authorization|"
                        r"credentials?)$")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+(@)")
_REDACTOR = Redactor()


def redact_text(text: object) -> str:
    """`text` with URL passwords and key-shaped tokens replaced by [REDACTED]."""
    return _REDACTOR.redact(_URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(2), str(text)))


def redact_config(value: Any) -> Any:
    """A plain config container (dicts, lists, scalars) with secrets replaced, recursively."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and SECRET_KEY.match(k) and v not in (None, "")
                    else redact_config(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
