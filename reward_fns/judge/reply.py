"""Parse a judge reply (`R2: 4` per line) into the five dimension scores; never raises."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from reward_fns.judge.prompt import DIMENSION_KEYS

# `R2: 4`, `R2 = 4`, `R2:4`, `**R2**: 4`, `- R2 (terminology): 4/5`, `R2: **4**`
_LINE = re.compile(
    r"(?<![A-Za-z0-9])\**\s*(R\d)\s*\**\s*(?:\([^()\n]{0,60}\)\s*\**\s*)?[:=]\s*\**\s*([-+]?\d+(?:\.\d+)?)",
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
    """Read the five scores; a missing, conflicting or out-of-range dimension is a failure."""
    if not isinstance(text, str):
        return JudgeReply(False, reason=f"reply is {type(text).__name__}, not text")
    if not text.strip():
        return JudgeReply(False, reason="empty reply")
    found: dict[str, str] = {}
    for match in _LINE.finditer(text):
        key, value = match.group(1).upper(), match.group(2)
        if key not in DIMENSION_KEYS:
            continue
        if key in found and found[key] != value:
            return JudgeReply(False, reason=f"{key} given twice ({found[key]} and {value})")
        found[key] = value
    missing = [key for key in DIMENSION_KEYS if key not in found]
    if missing:
        return JudgeReply(False, reason=f"missing {', '.join(missing)} in reply {_clip(text)!r}")
    scores: dict[str, int] = {}
    for key in DIMENSION_KEYS:
        raw = found[key]
        try:
            number = float(raw)
        except ValueError:  # pragma: no cover - the regex only captures numbers
            return JudgeReply(False, reason=f"{key} is not a number: {raw!r}")
        if number != int(number) or not 1 <= number <= 5:
            return JudgeReply(False, reason=f"{key} = {raw} is not an integer in 1..5")
        scores[key] = int(number)
    return JudgeReply(True, scores)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
