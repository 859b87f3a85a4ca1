"""Detect predictions that try to steer the judge instead of describing the video.

The checks look for judge-output lines (`R2: 5`), instruction overrides, role markers, chat
template tokens and our own delimiter strings. A hit returns `(True, reason)`; the caller scores
the prediction at the judge minimum without sending it.
"""

from __future__ import annotations

import re
import unicodedata

_FLAGS = re.IGNORECASE | re.MULTILINE
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, _FLAGS))
    for reason, pattern in (
        ("judge score line", r"(?<![A-Za-z0-9])\**\s*R\d\s*\**\s*[:=]\s*\**\s*\d"),
        ("score claim", r"\b(?:scores?|ratings?)\s*[:=]\s*\**\s*[1-5]\b|"
         r"\b(?:perfect|full|maximum|maximal|highest|top)\s+(?:score|marks|rating)s?\b"),
        ("score request", r"\b(?:give|assign|award)\s+(?:(?:this|it|me|us|the|my|our|answer|caption|"
         r"prediction|response)\s+){0,3}(?:an?\s+)?(?:score|rating|grade|marks)\b"),
        ("instruction override", r"\b(?:ignore|disregard|forget|override)\s+(?:\w+\s+){0,3}?"
         r"(?:instructions?|prompts?|rules?|guidelines?|context|above|system)\b"),
        ("system prompt", r"\b(?:system|developer)\s+(?:prompt|message|instructions?)\b"),
        ("role change", r"\byou\s+are\s+now\b|\bact\s+as\s+(?:an?\s+)?(?:judge|grader|evaluator|system)\b"),
        ("new instructions", r"\b(?:new|updated|real|actual)\s+instructions?\b"),
        ("address to judge", r"\b(?:dear|to the|attention,?)\s+(?:judge|grader|evaluator)\b|"
         r"\b(?:judge|grader|evaluator)\s*[:,]\s"),
        ("role prefix", r"(?:^|[.!?;]\s*)[#>*\-\[(]*\s*(?:system|assistant|user|developer)\s*[\])]?\s*:"),
        ("role tag", r"<\|[^|>\n]{1,30}\|>|</?\s*(?:system|assistant|user|developer|s|im_start|im_end)\s*>|"
         r"\[/?\s*(?:INST|SYS)\s*\]|<<\s*/?\s*SYS\s*>>"),
        ("markdown instruction header", r"^\s*#{2,}\s*(?:instruction|system|response|assistant)\b"),
        ("delimiter", r"<<<|>>>|\b(?:END\s+)?(?:PREDICTION|REFERENCE)\s*>{1,3}"),
    )
)


def detect_injection(prediction: str) -> tuple[bool, str]:
    """(True, reason) when the prediction tries to steer the judge, else (False, "")."""
    text = unicodedata.normalize("NFKC", "".join(
        ch for ch in prediction if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf"}
    ))
    for reason, pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return True, f"{reason}: {match.group(0).strip()[:60]!r}"
    return False, ""
