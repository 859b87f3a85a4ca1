"""Secrets out of what the recipe dry run prints: the resolved config and its messages.

A key named like a secret (`api_key`, `password`, `token`, ...; not `api_key_env`, which holds a
variable NAME) gets `[REDACTED]` as its value; every string goes through the judge client's
`Redactor` (a URL's user info `https://user:pw@host` -> `https://[REDACTED]@host`, key-shaped tokens
such as `Bearer ...`, `sk-...`). Files the recipes need (the emitted reward config) are written unredacted.
"""

from __future__ import annotations

import re
from typing import Any

from reward_fns.judge.redact import REDACTED, Redactor

SECRET_KEY = re.compile(r"(?i)^(?:api[_-]?key|apikey|x[_-]api[_-]key|secret|client[_-]?secret|secret[_-]?key|password|"
                        r"passwd|pwd|token|access[_-]?token|auth[_-]?token|hf[_-]?token|bearer|authorization|"
                        r"credentials?)$")
_REDACTOR = Redactor()


def redact_text(text: object) -> str:
    """`text` with URL passwords and key-shaped tokens replaced by [REDACTED]."""
    return _REDACTOR.redact(str(text))


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
