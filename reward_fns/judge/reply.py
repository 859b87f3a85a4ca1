"""Parse a judge reply strictly: exactly five score lines, one per dimension, nothing else; never raises.

A reply line is `R2: 4` with light decoration tolerated (`**R2**: 4`, `- R2 (terminology): 4/5`,
`R2 = 4`). Any other non-empty line, a repeated or missing dimension, or a value that is not an
integer 1-5 rejects the whole reply (the client then asks again). Text quoted from the prediction,
chatter or a second set of scores therefore never turns into a score.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from reward_fns.judge.prompt import DIMENSION_KEYS

_LINE = re.compile(
    r"^[ \t]*(?:[-*+][ \t]+)?\**[ \t]*(R\d)[ \t]*\**[ \t]*(?:\([^()\n]{0,60}\)[ \t]*\**[ \t]*)?[:=][ \t]*\**[ \t]*"
    r"([-+]?\d+(?:\.\d+)?)[ \t]*(?:/[ \t]*5)?[ \t]*\**[ \t]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class JudgeReply:
    """Parsed reply: `scores` per dimension when `ok`, else the `reason` it was rejected."""

    ok: bool
    scores: Mapping[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def score(self) -> float | None:
        """Mean of the five dimension scores (1-5), None when the reply was rejected."""
        if not self.ok:
            return None
        return sum(self.scores[key] for key in DIMENSION_KEYS) / len(DIMENSION_KEYS)


def parse_reply(text: object) -> JudgeReply:
    """Read the five scores; any line that is not a score line, or a bad score, is a failure."""
    if not isinstance(text, str):
        return JudgeReply(False, reason=f"reply is {type(text).__name__}, not text")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return JudgeReply(False, reason="empty reply")
    scores: dict[str, int] = {}
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            return JudgeReply(False, reason=f"not a score line: {_clip(line)!r}")
        key, raw = match.group(1).upper(), match.group(2)
        if key not in DIMENSION_KEYS:
            return JudgeReply(False, reason=f"unknown dimension {key} in {_clip(line)!r}")
        if key in scores:
            return JudgeReply(False, reason=f"{key} given twice")
        number = float(raw)
        if not 1 <= number <= 5 or number != int(number):
            return JudgeReply(False, reason=f"{key} = {raw} is not an integer in 1..5")
        scores[key] = int(number)
    missing = [key for key in DIMENSION_KEYS if key not in scores]
    if missing:
        return JudgeReply(False, reason=f"missing {', '.join(missing)}")
    return JudgeReply(True, scores)


def reply_problem(text: str) -> str | None:
    """For `ChatClient.complete(check=...)`: why `text` is not a usable reply, or None."""
    parsed = parse_reply(text)
    return None if parsed.ok else f"malformed reply: {parsed.reason}"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
