"""The RL ground truth of a row: its JSON string, and whether the record can give a reward at all.

- `ground_truth_json(ref)` returns exactly `ref.to_json()` (the string the reward manager reads back
  with `Reference.from_json`), about 20x faster: msgspec encodes, and the rare texts where its float
  spelling may differ from Python's (exponents, 0.0000x) go through the stdlib encoder instead.
- `rl_rejection(task, ref)` says why a record cannot teach anything through the reward (None: it
  can). Each task reads its own ground truth with the task module's reader (`GT_CHECKS`); tasks
  without an entry score their own reference answer through the registry (parse, evaluate, reward).
"""

from __future__ import annotations

from collections.abc import Callable

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


GTCheck = Callable[[Reference], str | None]
GT_CHECKS: dict[str, GTCheck] = {}


def gt_check(task_name: str) -> Callable[[GTCheck], GTCheck]:
    def register(fn: GTCheck) -> GTCheck:
        GT_CHECKS[task_name] = fn
        return fn
    return register


@gt_check("STG")
def _stg(ref: Reference) -> str | None:
    from reward_fns.tasks.stg import gt_boxes

    return None if gt_boxes(ref) else "ground truth has an empty bbox_dict"


@gt_check("TAG")
def _tag(ref: Reference) -> str | None:
    from reward_fns.tasks.tag import gt_spans

    return None if gt_spans(ref) else "ground truth has no spans"


@gt_check("DVC")
def _dvc(ref: Reference) -> str | None:
    from reward_fns.tasks.dvc_parse import gt_segments

    return None if gt_segments(ref.struc_info) else "ground truth has no event with start, end and caption"


@gt_check("CVS")
def _cvs(ref: Reference) -> str | None:
    from reward_fns.tasks.cvs import gt_components

    return None if gt_components(ref) else "ground truth has no CVS component score"


@gt_check("SA")
def _sa(ref: Reference) -> str | None:
    from reward_fns.tasks.sa import gt_aspects

    return None if gt_aspects(ref) else "ground truth has no skill level / aspect scores"


def _self_score(task: Task, ref: Reference) -> str | None:
    """Score the reference answer as if the model wrote it: left out, or worth 0, means no reward."""
    parsed = task.parse(ref.answer)
    result = task.evaluate(parsed, ref, False)
    if not result.counted:
        return result.reason or "left out by the leaderboard rules"
    pairs = task.caption_pairs(parsed, ref)
    if task.reward(parsed, ref, [1.0] * len(pairs)) > 0:
        return None
    return f"the reference answer earns no {task.name} reward" + (f" ({parsed.reason})" if parsed.reason else "")


def rl_rejection(task: Task, ref: Reference) -> str | None:
    """Why the record cannot give an RL reward; exceptions mean a malformed ground truth."""
    check = GT_CHECKS.get(task.name)
    return check(ref) if check is not None else _self_score(task, ref)
