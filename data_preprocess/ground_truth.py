"""The RL ground truth of a row: its JSON string, and whether the record can give a reward at all.

- `ground_truth_json(ref)` returns exactly `ref.to_json()` (the string the reward manager reads back
  with `Reference.from_json`), about 20x faster: msgspec encodes, and the rare texts where its float
  spelling may differ from Python's (exponents, 0.0000x) go through the stdlib encoder instead.
- `rl_rejection(task, ref)` says why a record cannot teach anything through the reward (None: it
  can): the task's own `Task.reward_rejection` (its ground-truth check, or its reference answer
  scored through parse, evaluate and reward).
"""

from __future__ import annotations

import msgspec

from reward_fns.reference import Reference
from reward_fns.registry import Task

_ENCODER = msgspec.json.Encoder()
# msgspec and repr() may spell a float differently only with an exponent or below 1e-4: look for
# "<digit>e" or "0.0000" (digits folded to 0 first; a false alarm only costs the slower encoder)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")


def ground_truth_json(ref: Reference) -> str:
    """`ref.to_json()`, byte for byte."""
    try:
        fast = _ENCODER.encode(ref.to_dict())
    except (msgspec.EncodeError, TypeError, OverflowError):
        fast = b"e"  # let the stdlib (the reference implementation) handle it
    folded = fast.translate(_DIGITS_TO_ZERO)
    if b"0e" in folded or b"0.0000" in folded:
        return ref.to_json()
    return fast.decode()


def rl_rejection(task: Task, ref: Reference) -> str | None:
    """Why the record cannot give an RL reward (the task's own check); exceptions mean a malformed GT."""
    return task.reward_rejection(ref)
