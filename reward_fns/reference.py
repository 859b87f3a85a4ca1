"""The ground truth one model answer is scored against, built from a MedVidBench record.

The same object feeds the benchmark scorer (built from the GT JSON) and the reward manager
(rebuilt from the parquet row's `reward_model.ground_truth` JSON string), so both score alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class RecordError(ValueError):
    """A MedVidBench record breaks the schema; the message names the record and the field."""

    def __init__(self, index: int | None, field_name: str, reason: str, where: str = ""):
        self.index, self.field, self.reason = index, field_name, reason
        loc = f"{where}: " if where else ""
        super().__init__(f"{loc}record {index}: field '{field_name}': {reason}")


@dataclass(frozen=True)
class Reference:
    """Everything a task needs to score one answer."""

    qa_type: str
    data_source: str
    answer: str  # the reference (gpt turn) text
    struc_info: list[Any] = field(default_factory=list)
    fps: float = 1.0
    question: str = ""
    nap_classes: tuple[str, ...] | None = None  # resolved next-action class list (NAP only)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON types (shares `struc_info`; no deep copy)."""
        return {"qa_type": self.qa_type, "data_source": self.data_source, "answer": self.answer,
                "struc_info": self.struc_info, "fps": self.fps, "question": self.question,
                "nap_classes": list(self.nap_classes) if self.nap_classes is not None else None}

    def to_json(self) -> str:
        """Compact JSON for parquet `reward_model.ground_truth`."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> Reference:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        classes = data.get("nap_classes")
        return cls(
            qa_type=str(data["qa_type"]),
            data_source=str(data["data_source"]),
            answer=str(data.get("answer", "")),
            struc_info=list(data.get("struc_info") or []),
            fps=float(data.get("fps", 1.0)),
            question=str(data.get("question", "")),
            nap_classes=tuple(classes) if classes is not None else None,
        )


def _turn(record: Mapping[str, Any], index: int | None, speaker: str, where: str) -> str:
    turns = record.get("conversations")
    if not isinstance(turns, list):
        raise RecordError(index, "conversations", "must be a list of {from, value} turns", where)
    for turn in turns:
        if isinstance(turn, Mapping) and turn.get("from") == speaker:
            value = turn.get("value")
            if not isinstance(value, str):
                raise RecordError(index, "conversations", f"'{speaker}' turn value is not a string", where)
            return value
    raise RecordError(index, "conversations", f"no '{speaker}' turn", where)


def record_question(record: Mapping[str, Any], index: int | None = None, where: str = "") -> str:
    """The human turn text (with its `<video>` placeholder)."""
    return _turn(record, index, "human", where)


def record_answer(record: Mapping[str, Any], index: int | None = None, where: str = "") -> str:
    """The reference answer text (the gpt turn)."""
    return _turn(record, index, "gpt", where)


def record_fps(record: Mapping[str, Any], index: int | None = None, where: str = "") -> float:
    """`metadata.fps` as a positive float (stored as a string in MedVidBench)."""
    meta = record.get("metadata")
    if not isinstance(meta, Mapping) or "fps" not in meta:
        raise RecordError(index, "metadata.fps", "missing", where)
    try:
        fps = float(meta["fps"])
    except (TypeError, ValueError):
        raise RecordError(index, "metadata.fps", f"not a number: {meta['fps']!r}", where) from None
    if not fps > 0:
        raise RecordError(index, "metadata.fps", f"must be > 0, got {fps}", where)
    return fps


def sample_id(record: Mapping[str, Any]) -> str:
    """`video_id&&start_frame&&end_frame&&fps`, the leaderboard's (non-unique) id."""
    meta = record.get("metadata") or {}
    keys = ("video_id", "input_video_start_frame", "input_video_end_frame", "fps")
    return "&&".join(str(meta.get(k, "")) for k in keys)


def reference_from_record(
    record: Mapping[str, Any],
    index: int | None = None,
    where: str = "",
    nap_classes: tuple[str, ...] | None = None,
) -> Reference:
    """Build a Reference, raising RecordError naming the field when the record is malformed."""
    if not isinstance(record, Mapping):
        raise RecordError(index, "<record>", f"must be a JSON object, got {type(record).__name__}", where)
    for key in ("qa_type", "data_source"):
        if not isinstance(record.get(key), str) or not record.get(key):
            raise RecordError(index, key, "missing or not a non-empty string", where)
    struc = record.get("struc_info", [])
    if struc is None:
        struc = []
    if not isinstance(struc, list):
        raise RecordError(index, "struc_info", "must be a list", where)
    return Reference(
        qa_type=record["qa_type"],
        data_source=record["data_source"],
        answer=record_answer(record, index, where),
        struc_info=struc,
        fps=record_fps(record, index, where),
        question=record_question(record, index, where),
        nap_classes=nap_classes,
    )
