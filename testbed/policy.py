"""A "reference policy" for CPU tests and the demo: groups of answers with spread, per RL row.

Response k of a group cycles through: the reference answer, the toy set's noisy prediction for the
record, an answer with nothing the parser can read, and the reference again, so GRPO groups have
both good and bad members (and therefore non-zero advantages).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

UNREADABLE = "I cannot tell from this video."


def reference_answer(row: Mapping[str, Any]) -> str:
    """The reference answer stored in the row's ground truth."""
    return json.loads(row["reward_model"]["ground_truth"])["answer"]


def group_responses(row: Mapping[str, Any], noisy: str, n: int) -> list[str]:
    """n answers for one prompt: reference, noisy prediction, unreadable, reference, ..."""
    cycle = (reference_answer(row), noisy, UNREADABLE)
    return [cycle[k % len(cycle)] if k < 3 else cycle[0] for k in range(n)]


def noisy_predictions(path: str) -> dict[int, str]:
    """record index -> prediction, from the toy set's `toy_predictions.json` (record order)."""
    with open(path, encoding="utf-8") as handle:
        rows: Sequence[Mapping[str, Any]] = json.load(handle)
    return {i: str(row["prediction"]) for i, row in enumerate(rows)}
