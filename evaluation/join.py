"""Join predictions to ground-truth records: by position (the leaderboard's way) or by id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from reward_fns.reference import sample_id


class JoinError(ValueError):
    """Predictions do not line up with the ground truth; the message names the positions or keys."""


class NonStringPrediction(str):
    """An empty answer standing in for a prediction that was not a string (`--lenient`); counted per task."""


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {list: "list", dict: "object", str: "string"}.get(type(value), type(value).__name__)


def _prediction_text(pred: Mapping[str, Any], position: int, lenient: bool) -> str:
    if not isinstance(pred, Mapping) or "prediction" not in pred:
        raise JoinError(f"prediction {position}: field 'prediction' missing")
    value = pred["prediction"]
    if isinstance(value, str):
        return value
    if lenient:
        return NonStringPrediction("")
    raise JoinError(f"prediction {position}: field 'prediction' is a {json_type(value)}, not a string "
                    "(--lenient scores it as an empty answer)")


def _listing(items: Sequence[object], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def join_by_position(gt: Sequence[Mapping[str, Any]], preds: Sequence[Mapping[str, Any]],
                     lenient: bool = False) -> list[str]:
    """Prediction i scores GT record i; `id` / `qa_type`, where given, must agree with that record.

    A prediction that is not a string is an error naming its position, or (`lenient`) an empty answer.
    """
    if len(gt) != len(preds):
        raise JoinError(f"{len(preds)} predictions for {len(gt)} ground-truth records (join by position)")
    bad = []
    for i, (record, pred) in enumerate(zip(gt, preds, strict=True)):
        if not isinstance(pred, Mapping):
            raise JoinError(f"prediction {i}: not a JSON object")
        if "id" in pred and pred["id"] != sample_id(record):
            bad.append(f"{i} (id {pred['id']!r} != {sample_id(record)!r})")
        elif "qa_type" in pred and pred["qa_type"] != record.get("qa_type"):
            bad.append(f"{i} (qa_type {pred['qa_type']!r} != {record.get('qa_type')!r})")
    if bad:
        raise JoinError(f"predictions disagree with the ground truth at positions: {_listing(bad)}")
    return [_prediction_text(p, i, lenient) for i, p in enumerate(preds)]


def _keys(items: Sequence[tuple[str, str]]) -> list[tuple[str, str, int]]:
    seen: dict[tuple[str, str], int] = defaultdict(int)
    keys = []
    for item in items:
        keys.append((*item, seen[item]))
        seen[item] += 1
    return keys


def join_by_id(gt: Sequence[Mapping[str, Any]], preds: Sequence[Mapping[str, Any]],
               lenient: bool = False) -> list[str]:
    """Join on (id, qa_type, n-th occurrence), naming every missing or unknown key."""
    for i, pred in enumerate(preds):
        for field in ("id", "qa_type"):
            if not isinstance(pred, Mapping) or field not in pred:
                raise JoinError(f"prediction {i}: field '{field}' missing (needed by --join id)")
    gt_keys = _keys([(sample_id(r), str(r.get("qa_type"))) for r in gt])
    pred_keys = _keys([(str(p["id"]), str(p["qa_type"])) for p in preds])
    by_key = {k: _prediction_text(p, i, lenient) for i, (k, p) in enumerate(zip(pred_keys, preds, strict=True))}
    missing = [k for k in gt_keys if k not in by_key]
    unknown = sorted(set(by_key) - set(gt_keys))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing predictions for {_listing(missing)}")
        if unknown:
            parts.append(f"unknown keys {_listing(unknown)}")
        raise JoinError("; ".join(parts) + " (key = (id, qa_type, occurrence))")
    return [by_key[k] for k in gt_keys]


JOINS = {"position": join_by_position, "id": join_by_id}
