"""Record validation: a MedVidBench record either becomes a `Checked` record or raises `RecordError`
naming the file, the record index, the field and the reason.

Field checks live in one table (`FIELD_CHECKS`). The frame list is checked for a whole batch at once
(`frame_arrays.from_raw`, with `decode_frames` naming the record when that fails); what a task's ground
truth must hold is the task modules' business (`ground_truth.rl_rejection`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any, NamedTuple

import msgspec

from reward_fns.reference import RecordError, Reference, reference_from_record, sample_id
from reward_fns.registry import SOURCES, Task, all_qa_types, task_for_qa_type

_PLACEHOLDER = re.compile(r"<(?:video|image|audio)>")
_NO_VIDEO = msgspec.Raw(b"")


class RawRecord(msgspec.Struct):
    """One record as decoded from JSON. Every field is checked in Python (any JSON type decodes);
    `video` stays raw JSON bytes: the frame paths never become Python strings on the fast path."""

    conversations: Any = None
    video: msgspec.Raw = _NO_VIDEO
    metadata: Any = None
    qa_type: Any = None
    data_source: Any = None
    struc_info: Any = None
    is_RC: Any = False
    RC_info: Any = None


DECODER = msgspec.json.Decoder(list[RawRecord | bool | int | float | str | list | None])
_FRAMES = msgspec.json.Decoder(list[str])


class Checked(NamedTuple):
    """A valid record: its reference, task and the fields the converter needs."""

    index: int
    id: str
    video_id: str
    ref: Reference
    task: Task
    rc_frame: str | None  # region caption: the frame the box is drawn on
    rc_box: tuple[float, float, float, float] | None


@cache
def _tasks() -> dict[str, Task]:
    """qa_type -> Task, read once from the registry."""
    return {qa: task_for_qa_type(qa) for qa in all_qa_types()}


def decode_frames(raw: bytes | msgspec.Raw, index: int, where: str) -> list[str]:
    """The frame list of one record, or RecordError('video', why)."""
    if not len(raw):
        raise RecordError(index, "video", "missing", where)
    try:
        frames = _FRAMES.decode(raw)
    except msgspec.DecodeError as exc:
        raise RecordError(index, "video", f"must be a list of frame paths ({exc})", where) from None
    if not frames:
        raise RecordError(index, "video", "must be a non-empty list of frame paths", where)
    if "" in frames:
        raise RecordError(index, "video", f"frame {frames.index('')} is an empty string", where)
    return frames


def _check_kind(rec: RawRecord, index: int, where: str) -> None:
    if not isinstance(rec.qa_type, str) or rec.qa_type not in _tasks():
        raise RecordError(index, "qa_type", f"unknown qa_type {rec.qa_type!r}", where)
    if rec.data_source not in SOURCES:
        raise RecordError(index, "data_source", f"unknown source {rec.data_source!r}; known: {SOURCES}", where)
    if not isinstance(rec.is_RC, bool):
        raise RecordError(index, "is_RC", "must be true or false", where)
    if not len(rec.video):
        raise RecordError(index, "video", "missing", where)


def _check_metadata(rec: RawRecord, index: int, where: str) -> None:
    meta = rec.metadata
    if not isinstance(meta, Mapping):
        raise RecordError(index, "metadata", "must be an object", where)
    vid = meta.get("video_id")
    if not isinstance(vid, str | int) or isinstance(vid, bool) or str(vid) == "":
        raise RecordError(index, "metadata.video_id", "missing or empty", where)


def _check_rc(rec: RawRecord, index: int, where: str) -> None:
    if not needs_overlay(rec):
        return
    info = rec.RC_info
    if not isinstance(info, Mapping):
        raise RecordError(index, "RC_info", "region caption record needs RC_info {start_frame, start_frame_bbox}",
                          where)
    frame, box = info.get("start_frame"), info.get("start_frame_bbox")
    if not isinstance(frame, str) or not frame:
        raise RecordError(index, "RC_info.start_frame", f"must be one of the record's frames, got {frame!r}", where)
    ok = isinstance(box, list) and len(box) == 4 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    if not ok or box[2] <= box[0] or box[3] <= box[1]:
        raise RecordError(index, "RC_info.start_frame_bbox",
                          f"must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {box!r}", where)


FIELD_CHECKS: tuple[Callable[[RawRecord, int, str], None], ...] = (_check_kind, _check_metadata, _check_rc)


def needs_overlay(rec: RawRecord) -> bool:
    """Region caption records get their box drawn on the start frame."""
    return rec.is_RC is True or _tasks()[rec.qa_type].name == "RC"


def check_record(rec: Any, index: int, where: str, nap_classes: Callable[[str, str], Sequence[str] | None]
                 ) -> Checked:
    """Validate one decoded record (frames apart); raises RecordError naming file, index and field."""
    if not isinstance(rec, RawRecord):
        raise RecordError(index, "record", f"must be a JSON object, got {type(rec).__name__}", where)
    for check in FIELD_CHECKS:
        check(rec, index, where)
    as_dict = {"conversations": rec.conversations, "metadata": rec.metadata, "qa_type": rec.qa_type,
               "data_source": rec.data_source, "struc_info": rec.struc_info}
    task = _tasks()[rec.qa_type]
    rc = rec.is_RC is True or task.name == "RC"
    ref = reference_from_record(as_dict, index, where)
    marks = _PLACEHOLDER.findall(ref.question)
    if marks != ["<video>"]:
        raise RecordError(index, "conversations", "the human turn must hold exactly one <video> placeholder and "
                          f"no other media placeholder, found {marks}", where)
    if task.name == "NAP":
        classes = nap_classes(rec.data_source, ref.question)
        ref = replace(ref, nap_classes=tuple(classes) if classes is not None else None)
    if rc:
        info = rec.RC_info
        return Checked(index, sample_id(as_dict), str(rec.metadata["video_id"]), ref, task, info["start_frame"],
                       tuple(float(v) for v in info["start_frame_bbox"]))
    return Checked(index, sample_id(as_dict), str(rec.metadata["video_id"]), ref, task, None, None)


def invalid_entry(error: RecordError, rec: Any) -> dict[str, Any]:
    """How an invalid record is listed in the manifest."""
    is_rec = isinstance(rec, RawRecord)
    meta_ok = is_rec and isinstance(rec.metadata, Mapping)
    return {"index": error.index, "id": sample_id({"metadata": rec.metadata}) if meta_ok else "",
            "qa_type": rec.qa_type if is_rec and isinstance(rec.qa_type, str) else "",
            "field": error.field, "reason": error.reason}
