"""Small pieces shared by the task modules."""

from __future__ import annotations

from collections.abc import Sequence

from reward_fns.registry import Parsed

NUM = r"\d+(?:\.\d+)?"  # the spec's `N`: digits with an optional `.digits`


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return float(sum(values) / len(values)) if values else 0.0


def group_mean(groups: Sequence[str], scores: Sequence[float]) -> float | None:
    """Mean per group, then mean over the groups present (None when there are no scores)."""
    by_group: dict[str, list[float]] = {}
    for group, score in zip(groups, scores, strict=True):
        by_group.setdefault(group, []).append(score)
    return mean([mean(v) for v in by_group.values()]) if by_group else None


def unparsed(reason: str, empty: object = None) -> Parsed:
    """A parse failure carrying its reason (parsers never raise)."""
    return Parsed(value=empty, ok=False, reason=reason)


def clip01(value: float) -> float:
    """Clamp a reward into [0, 1] (NaN becomes 0)."""
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, float(value)))


def text_of(answer: object) -> str:
    """Model output as a string; anything else (None, bytes, numbers) is coerced without raising."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, bytes):
        return answer.decode("utf-8", errors="replace")
    return "" if answer is None else str(answer)


def to_int(digits: str) -> int | None:
    """`int(digits)`, or None where Python refuses it (more than 4,300 digits): "not predicted"."""
    try:
        return int(digits)
    except ValueError:
        return None


def score_value(digits: str) -> int | None:
    """A CVS/SA score, or None ("not predicted") for a number the public scorer cannot take: longer than
    int() accepts, or too large for the float its error average needs (it crashes there; a deviation)."""
    value = to_int(digits)
    if value is None:
        return None
    try:
        float(value)
    except OverflowError:
        return None
    return value
