"""Record validation: a decoded MedVidBench record becomes `Checked` or raises `RecordError` naming the
file, record index, field and reason. The ground truth, read with each task's own reader, must hold
finite spans with start < end and boxes of four finite numbers (`GT_VALUE_CHECKS`)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any, NamedTuple

import msgspec

from reward_fns.reference import RecordError, Reference, reference_from_record, sample_id
from reward_fns.registry import SOURCES, Task, all_qa_types, task_for_qa_type
from reward_fns.tasks.dvc_parse import gt_segments
from reward_fns.tasks.stg import gt_boxes
from reward_fns.tasks.tag import gt_spans

_PLACEHOLDER = re.compile(r"<(?:video|image|audio)>")


class RawRecord(msgspec.Struct):
    """One record as decoded from JSON (any JSON type decodes; every field is checked here)."""

    conversations: Any = None
    video: Any = None
    metadata: Any = None
    qa_type: Any = None
    data_source: Any = None
    struc_info: Any = None
    is_RC: Any = False
    RC_info: Any = None


DECODER = msgspec.json.Decoder(list[RawRecord | bool | int | float | str | list | None])
RECORD_DECODER = msgspec.json.Decoder(RawRecord | bool | int | float | str | list | None)


class Checked(NamedTuple):
    """A valid record: its reference, task, frame list and the fields the converter needs."""

    index: int
    id: str
    video_id: str
    ref: Reference
    task: Task
    frames: list[str]
    rc_frame: str | None  # region caption: the frame the box is drawn on
    rc_box: tuple[float, float, float, float] | None


@cache
def _tasks() -> dict[str, Task]:
    return {qa: task_for_qa_type(qa) for qa in all_qa_types()}


def relative_path_problem(path: str) -> str | None:
    """Why a frame path cannot be used under --data-root (None: it can)."""
    if "\0" in path:
        return f"{path!r} holds a NUL byte"
    if not path:
        return "an empty path"
    if path.startswith("/"):
        return f"{path!r} is absolute; frame paths must be relative to --data-root"
    if ".." in path and os.path.normpath(path).split(os.sep)[0] == "..":
        return f"{path!r} leaves --data-root"
    return None


def check_frames(frames: Any, index: int, where: str) -> list[str]:
    """The frame list: non-empty, strings, relative paths that stay inside the data root."""
    if not isinstance(frames, list) or not frames:
        raise RecordError(index, "video", "must be a non-empty list of frame paths", where)
    try:
        joined = "\n" + "\n".join(frames) + "\n"
    except TypeError:
        raise RecordError(index, "video", "must be a list of frame paths (strings)", where) from None
    if "\n\n" in joined or "\0" in joined or "\n/" in joined or ".." in joined:  # rare: find the culprit
        for k, path in enumerate(frames):
            if problem := relative_path_problem(path):
                raise RecordError(index, "video", f"frame {k}: {problem}", where)
    return frames


def _check_kind(rec: RawRecord, index: int, where: str) -> None:
    if not isinstance(rec.qa_type, str) or rec.qa_type not in _tasks():
        raise RecordError(index, "qa_type", f"unknown qa_type {rec.qa_type!r}", where)
    if rec.data_source not in SOURCES:
        raise RecordError(index, "data_source", f"unknown source {rec.data_source!r}; known: {SOURCES}", where)
    if not isinstance(rec.is_RC, bool):
        raise RecordError(index, "is_RC", "must be true or false", where)


def _check_metadata(rec: RawRecord, index: int, where: str) -> None:
    meta = rec.metadata
    if not isinstance(meta, Mapping):
        raise RecordError(index, "metadata", "must be an object", where)
    vid = meta.get("video_id")
    if not isinstance(vid, str | int) or isinstance(vid, bool) or str(vid) == "":
        raise RecordError(index, "metadata.video_id", "missing or empty", where)
    try:
        fps = float(meta.get("fps"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # reported by reference_from_record with the value
    if not (math.isfinite(fps) and fps > 0):
        raise RecordError(index, "metadata.fps", f"must be a finite number > 0, got {meta.get('fps')!r}", where)


def _check_rc(rec: RawRecord, index: int, where: str) -> None:
    if not (rec.is_RC is True or _tasks()[rec.qa_type].name == "RC"):
        return
    info = rec.RC_info
    if not isinstance(info, Mapping):
        raise RecordError(index, "RC_info", "region caption record needs RC_info {start_frame, start_frame_bbox}",
                          where)
    frame, box = info.get("start_frame"), info.get("start_frame_bbox")
    if not isinstance(frame, str) or frame not in (rec.video if isinstance(rec.video, list) else ()):
        raise RecordError(index, "RC_info.start_frame", f"{frame!r} is not one of the record's frames", where)
    finite = isinstance(box, list) and len(box) == 4 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    if not finite or box[2] <= box[0] or box[3] <= box[1]:
        raise RecordError(index, "RC_info.start_frame_bbox",
                          f"must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, got {box!r}", where)


def _spans(pairs: Iterable[tuple[float, float]], what: str) -> str | None:
    for k, (start, end) in enumerate(pairs):
        if not (math.isfinite(start) and math.isfinite(end) and start < end):
            return f"{what} {k}: needs finite start < end, got {start}-{end}"
    return None


def _stg_values(ref: Reference) -> str | None:
    item = ref.struc_info[0] if ref.struc_info and isinstance(ref.struc_info[0], Mapping) else {}
    span = [(float(item["start"]), float(item["end"]))] if "start" in item and "end" in item else []
    bad = [key for key, box in gt_boxes(ref).items() if len(box) != 4 or not all(map(math.isfinite, box))]
    return _spans(span, "item") or (f"bbox_dict[{bad[0]!r}] must be 4 finite numbers" if bad else None)


GT_VALUE_CHECKS: dict[str, Callable[[Reference], str | None]] = {
    "TAG": lambda ref: _spans(gt_spans(ref), "span"),
    "DVC": lambda ref: _spans(((s.start, s.end) for s in gt_segments(ref.struc_info)), "event"),
    "STG": _stg_values,
}


def check_record(rec: Any, index: int, where: str, nap_classes: Callable[[str, str], Sequence[str] | None]
                 ) -> Checked:
    """Validate one decoded record; raises RecordError naming file, index and field."""
    if not isinstance(rec, RawRecord):
        raise RecordError(index, "record", f"must be a JSON object, got {type(rec).__name__}", where)
    for check in (_check_kind, _check_metadata, _check_rc):  # in order: _check_rc needs a known qa_type
        check(rec, index, where)
    frames = check_frames(rec.video, index, where)
    as_dict = {"conversations": rec.conversations, "metadata": rec.metadata, "qa_type": rec.qa_type,
               "data_source": rec.data_source, "struc_info": rec.struc_info}
    task, ref = _tasks()[rec.qa_type], reference_from_record(as_dict, index, where)
    if (marks := _PLACEHOLDER.findall(ref.question)) != ["<video>"]:
        raise RecordError(index, "conversations", "the human turn must hold exactly one <video> placeholder and "
                          f"no other media placeholder, found {marks}", where)
    try:
        problem = GT_VALUE_CHECKS[task.name](ref) if task.name in GT_VALUE_CHECKS else None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        problem = f"ground truth unusable by task {task.name}: {exc!r}"
    if problem:
        raise RecordError(index, "struc_info", problem, where)
    if task.name == "NAP":
        classes = nap_classes(rec.data_source, ref.question)
        ref = replace(ref, nap_classes=tuple(classes) if classes is not None else None)
    rc = rec.RC_info if rec.is_RC is True or task.name == "RC" else None
    return Checked(index, sample_id(as_dict), str(rec.metadata["video_id"]), ref, task, frames,
                   rc["start_frame"] if rc else None, tuple(float(v) for v in rc["start_frame_bbox"]) if rc else None)


def invalid_entry(error: RecordError, rec: Any) -> dict[str, Any]:
    """How an invalid record is listed in the manifest."""
    rec = rec if isinstance(rec, RawRecord) else RawRecord()
    return {"index": error.index, "id": sample_id({"metadata": rec.metadata}) if isinstance(rec.metadata, Mapping)
            else "", "qa_type": rec.qa_type if isinstance(rec.qa_type, str) else "",
            "field": error.field, "reason": error.reason}
