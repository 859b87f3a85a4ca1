"""Defensive parsing of the writer's and the reviewer's replies (never raises on model output).

Both replies are asked for as JSON. Accepted too: a ```json fence, prose around the object, string or
yes/no booleans, a single problem given as a string, and, for the reviewer, a bare `accept: false`
line when the JSON is broken. Anything else is unreadable and says why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_BARE_ACCEPT = re.compile(r'["\']?accept(?:ed)?["\']?\s*[:=]\s*["\']?(true|false|yes|no)\b', re.IGNORECASE)
_TIME_HEADER = re.compile(r"\d+(?:\.\d+)?\s*-\s*\d+(?:\.\d+)?\s*seconds?\s*:", re.IGNORECASE)
_TRUTHY = {"true": True, "yes": True, "false": False, "no": False}
MAX_PROBLEMS = 10
MAX_PROBLEM_CHARS = 300


@dataclass(frozen=True)
class Verdict:
    """A reviewer reply: `accept` is None when the reply could not be read (`reason` says why)."""

    accept: bool | None
    problems: tuple[str, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.accept is not None


@dataclass(frozen=True)
class Captions:
    """A writer reply: `texts` is None when it could not be read (`reason` says why)."""

    texts: tuple[str, ...] | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.texts is not None


def parse_verdict(text: Any) -> Verdict:
    """The reviewer's `{"accept": bool, "problems": [...]}`; a rejection always carries >= 1 problem."""
    if not isinstance(text, str) or not text.strip():
        return Verdict(None, reason="empty reply")
    obj = _json_object(text)
    accept = _boolean(obj.get("accept", obj.get("accepted"))) if obj is not None else None
    if accept is None:
        bare = _BARE_ACCEPT.search(text)
        if bare is None:
            return Verdict(None, reason=f"no 'accept' true/false in reply: {_clip(text)}")
        accept = _TRUTHY[bare.group(1).lower()]
    problems = _problems(obj.get("problems") if obj is not None else None)
    if not accept and not problems:
        problems = ("rejected without a stated problem",)
    return Verdict(accept, problems if not accept else ())


def parse_captions(text: Any, expected: int) -> Captions:
    """The writer's `{"captions": [...]}` with exactly `expected` non-empty captions, whitespace collapsed
    (a caption must stay on one line and hold no "s-e seconds:" header: either could start a new DVC event)."""
    if not isinstance(text, str) or not text.strip():
        return Captions(None, "empty reply")
    obj = _json_object(text)
    if obj is None:
        if expected == 1 and "{" not in text:  # a plain-text paragraph is a usable single caption
            return _checked((_one_line(text),))
        return Captions(None, f"reply is not a JSON object: {_clip(text)}")
    value = obj.get("captions", obj.get("caption"))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return Captions(None, "'captions' is missing or not a list of strings")
    if len(value) != expected:
        return Captions(None, f"expected {expected} caption(s), got {len(value)}")
    return _checked(tuple(_one_line(v) for v in value))


def _checked(texts: tuple[str, ...]) -> Captions:
    if not all(texts):
        return Captions(None, "a caption is empty")
    if any(_TIME_HEADER.search(t) for t in texts):  # the DVC parser would read it as another event
        return Captions(None, "a caption contains an 's-e seconds:' time header")
    return Captions(texts)


def _json_object(text: str) -> dict[str, Any] | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start < 0 or end <= start:
            continue
        try:
            value = json.loads(candidate[start:end + 1])
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _TRUTHY.get(value.strip().lower())
    return None


def _problems(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    texts = (_clip(_one_line(str(v)), MAX_PROBLEM_CHARS) for v in value if v not in (None, ""))
    return tuple(t for t in texts if t)[:MAX_PROBLEMS]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int = 120) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[:limit] + "..."
