"""Defensive parsing of the writer's and the reviewer's replies (never raises on model output).

Both replies are asked for as JSON.
- Reviewer: an acceptance counts only from a well-formed reply: the whole reply (or one ```json
  fence) is one JSON object, with `accept` given once as true (or "true"/"yes"). A rejection is read
  more leniently (prose around the object, a bare `accept: false` line when the JSON is broken),
  since a wrongly read rejection only costs a revision. Prose such as "I cannot say accept: yes...
  reject." is unreadable (re-asked), never acceptance.
- Writer: `{"captions": [...]}` (or `"caption"`), a string for one caption, a plain paragraph for a
  one-caption task, and for a one-caption task (VS, RC) a list of sentences joined into one paragraph.
  Every caption is cleaned (invisible format/control characters removed, whitespace collapsed) and
  must keep visible text (a letter or digit), stay under MAX_CAPTION_CHARS and hold no "s-e seconds:"
  header; anything else is unreadable and says why.
A reply longer than MAX_REPLY_CHARS is unreadable before any parsing (bounded work per reply).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_BARE_ACCEPT = re.compile(r'["\']?accept(?:ed)?["\']?\s*[:=]\s*["\']?(true|false|yes|no)\b', re.IGNORECASE)
_TIME_HEADER = re.compile(r"\d+(?:\.\d+)?\s*-\s*\d+(?:\.\d+)?\s*seconds?\s*:", re.IGNORECASE)
_TRUTHY = {"true": True, "yes": True, "false": False, "no": False}
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})  # control, format (zero-width, bidi), private, unassigned
MAX_PROBLEMS = 10
MAX_PROBLEM_CHARS = 300
MAX_CAPTION_CHARS = 3000  # a VS paragraph of 3-6 sentences is under 1,500
MAX_REPLY_CHARS = 100_000


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
    if len(text) > MAX_REPLY_CHARS:
        return Verdict(None, reason=f"reply is {len(text)} characters long (limit {MAX_REPLY_CHARS})")
    strict = _strict_object(text)
    if strict is not None and not isinstance(strict, str):
        accept = _accept_value(strict)
        if accept is True:
            return Verdict(True)
        if accept is False:
            return Verdict(False, _problems_or_default(strict.get("problems")))
    elif isinstance(strict, str):
        return Verdict(None, reason=strict)
    # not a well-formed reply: only a rejection may be read from it
    obj = _json_object(text)
    if obj is not None and _accept_value(obj) is False:
        return Verdict(False, _problems_or_default(obj.get("problems")))
    bare = [_TRUTHY[m.group(1).lower()] for m in _BARE_ACCEPT.finditer(text)]
    if False in bare:
        return Verdict(False, ("rejected without a stated problem",))
    if bare or (obj is not None and _accept_value(obj)):
        return Verdict(None, reason=f"acceptance not in a well-formed JSON reply: {_clip(text)}")
    return Verdict(None, reason=f"no 'accept' true/false in reply: {_clip(text)}")


def parse_captions(text: Any, expected: int) -> Captions:
    """The writer's `{"captions": [...]}` with exactly `expected` captions with visible text, each cleaned
    to one line (a caption must stay on one line and hold no "s-e seconds:" header: either could start a new
    DVC event). For a one-caption task a list of several strings is read as one paragraph."""
    if not isinstance(text, str) or not text.strip():
        return Captions(None, "empty reply")
    if len(text) > MAX_REPLY_CHARS:
        return Captions(None, f"reply is {len(text)} characters long (limit {MAX_REPLY_CHARS})")
    obj = _json_object(text)
    if obj is None:
        if expected == 1 and "{" not in text:  # a plain-text paragraph is a usable single caption
            return _checked((clean_caption(text),))
        return Captions(None, f"reply is not a JSON object: {_clip(text)}")
    value = obj.get("captions", obj.get("caption"))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return Captions(None, "'captions' is missing or not a list of strings")
    texts = [clean_caption(v) for v in value]
    if expected == 1 and len(texts) > 1:  # a paragraph returned as a list of its sentences
        texts = [" ".join(t for t in texts if t)]
    if len(texts) != expected:
        return Captions(None, f"expected {expected} caption(s), got {len(texts)}")
    return _checked(tuple(texts))


def clean_caption(text: str) -> str:
    """`text` without invisible characters (zero-width, bidi, control), whitespace collapsed to one line."""
    if not text.isascii():
        text = "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE or ch in "\n\t")
    return " ".join(text.split())


def _checked(texts: tuple[str, ...]) -> Captions:
    for number, text in enumerate(texts, 1):
        if not text:
            return Captions(None, f"caption {number} is empty")
        if not any(ch.isalnum() for ch in text):
            return Captions(None, f"caption {number} has no visible text (letters or digits)")
        if len(text) > MAX_CAPTION_CHARS:
            return Captions(None, f"caption {number} is {len(text)} characters long (limit {MAX_CAPTION_CHARS})")
        # the DVC parser would read it as another event; NFKC also catches full-width digits
        if _TIME_HEADER.search(text) or _TIME_HEADER.search(unicodedata.normalize("NFKC", text)):
            return Captions(None, f"caption {number} contains an 's-e seconds:' time header")
    return Captions(texts)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [str(k).lower() for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(f"duplicate key(s) {sorted({k for k in keys if keys.count(k) > 1})}")
    return {str(k).lower(): v for k, v in pairs}


def _strict_object(text: str) -> dict[str, Any] | str | None:
    """The reply as one JSON object (the whole reply or one whole ```json fence); a str says why it is
    malformed (duplicate keys), None when the reply is not just one object."""
    body = text.strip()
    if len(body) >= 6 and body.startswith("```") and body.endswith("```"):  # one fence around the whole reply
        body = body[3:-3]
        body = body[4:] if body[:4].lower() == "json" else body
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return f"malformed reply: {exc}"
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _accept_value(obj: dict[str, Any]) -> bool | None:
    """`accept` (or `accepted`) as a boolean; None when missing, not boolean, or the two disagree."""
    values = {_boolean(obj[k]) for k in ("accept", "accepted") if k in obj}
    return values.pop() if len(values) == 1 else None


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


def _problems_or_default(value: Any) -> tuple[str, ...]:
    return _problems(value) or ("rejected without a stated problem",)


def _problems(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    texts = (_clip(clean_caption(str(v)), MAX_PROBLEM_CHARS) for v in value[:MAX_PROBLEMS * 10] if v not in (None, ""))
    return tuple(t for t in texts if t)[:MAX_PROBLEMS]


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text[:limit * 4].split())
    return text if len(text) <= limit else text[:limit] + "..."
