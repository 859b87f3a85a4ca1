"""The RL row's ground truth: `ref.to_json()` byte for byte (the string the reward manager reads back
with `Reference.from_json`), about 20x faster. msgspec encodes; a text where its float spelling may
differ from Python's repr (an exponent, or below 1e-4) goes through the stdlib encoder instead."""

from __future__ import annotations

import msgspec

from reward_fns.reference import Reference

_ENCODER = msgspec.json.Encoder()
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")  # then look for "0e" and "0.0000"


def ground_truth_json(ref: Reference) -> str:
    """`ref.to_json()`, byte for byte."""
    try:
        fast = _ENCODER.encode(ref.to_dict())
    except (msgspec.EncodeError, TypeError, OverflowError):
        return ref.to_json()  # the stdlib (the reference implementation) decides
    folded = fast.translate(_DIGITS_TO_ZERO)
    return ref.to_json() if b"0e" in folded or b"0.0000" in folded else fast.decode()
