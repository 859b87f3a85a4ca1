"""NurViD: `NurViD_annotations.json` keyed by YouTube id ({operationID, annotations: [{actionID,
segment: [start_s, end_s]}], duration, resolution, fps}) and `Procedure&Action_ID.xlsx` (or .csv) naming
procedures and actions. Videos `<youtube id>.mp4` under --videos. Procedure names are matched to the
leaderboard's NurViD lists (nap_classes.json) case-insensitively so NAP questions resolve.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

from data_preprocess.build.adapters.base import SourceRead, adapter, require
from data_preprocess.build.adapters.tables import first_existing, read_rows
from data_preprocess.build.canonical import AnnotationError, FrameSource, Segment, Video, read_json
from data_preprocess.build.validate import MAX_DURATION, MAX_FPS, number_problem, to_number
from reward_fns.tasks.nap import class_table

ANNOTATIONS = "NurViD_annotations.json"
ID_TABLES = ("Procedure&Action_ID.xlsx", "Procedure&Action_ID.csv")
PROCEDURE_COLS = (("procedure_id", "operation_id", "operationid"), ("procedure", "procedure_name", "operation"))
ACTION_COLS = (("action_id", "actionid"), ("action", "action_name"))


def _id(value: Any) -> str:
    text = str(value).strip()
    return str(int(float(text))) if text.replace(".", "", 1).isdigit() else text


def id_names(path: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    """{procedure id: name}, {action id: name} from the ID table (a row may hold a procedure, an action or both)."""
    procedures: dict[str, str] = {}
    actions: dict[str, str] = {}
    if path is None:
        return procedures, actions
    for row in read_rows(path):
        for table, (ids, labels) in ((procedures, PROCEDURE_COLS), (actions, ACTION_COLS)):
            key = next((row[c] for c in ids if row.get(c) not in (None, "")), None)
            name = next((row[c] for c in labels if row.get(c) not in (None, "")), None)
            if key is not None and name is not None:
                table[_id(key)] = str(name).strip()
    return procedures, actions


def leaderboard_name(procedure: str) -> str:
    """The nap_classes.json spelling of a procedure name, when one matches case-insensitively."""
    known = {p.lower(): p for p in class_table()["NurViD_by_procedure"]}
    return known.get(procedure.lower(), procedure)


def _resolution(value: Any) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in str(value).lower().split("x"))
        return w, h
    except ValueError:
        return 0, 0


def _optional_number(entry: dict, key: str, path: Path, vid: str) -> float | None:
    """entry[key] as a number > 0 (bounded), None when absent or null; anything else is an error."""
    value = entry.get(key)
    if value is None:
        return None
    with contextlib.suppress(ValueError):  # numeric text is a number; other text fails the check below
        value = to_number(value)
    high = MAX_FPS if key == "fps" else MAX_DURATION
    problem = number_problem(value, 0, high, above=True)
    if problem:
        raise AnnotationError(str(path), vid, key, problem)
    return float(value)


@adapter("nurvid", "NurViD")
def read(root: Path, videos: Path | None) -> SourceRead:
    path = require(root / ANNOTATIONS, "NurViD annotation JSON")
    table = first_existing(root / name for name in ID_TABLES)
    procedures, actions = id_names(table)
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(str(path), "-", "<file>", "must map YouTube ids to video objects")
    out, skipped = [], Counter()
    for vid, entry in sorted(data.items()):
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), list):
            raise AnnotationError(str(path), vid, "annotations", "missing or not a list")
        procedure = leaderboard_name(procedures.get(_id(entry.get("operationID", "")), str(entry.get("operationID"))))
        segments = []
        for i, ann in enumerate(entry["annotations"]):
            try:
                start, end = (float(t) for t in ann["segment"])
                if isinstance(ann["actionID"], bool) or not isinstance(ann["actionID"], (int, str)):
                    raise TypeError(f"actionID must be a number or text, got {ann['actionID']!r}")
                label = actions.get(_id(ann["actionID"]), str(ann["actionID"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationError(str(path), f"{vid}.annotations[{i}]", "segment/actionID", repr(exc)) from None
            if end > start:
                segments.append(Segment(label, start, end, "action"))
            else:
                skipped["segment with end <= start"] += 1
        fps, duration = (_optional_number(entry, key, path, vid) for key in ("fps", "duration"))
        fps = fps or 30.0  # missing: the common YouTube rate
        duration = duration or max((s.end for s in segments), default=0.0)
        if duration <= 0:
            skipped["video without duration or segments"] += 1
            continue
        width, height = _resolution(entry.get("resolution"))
        out.append(Video("NurViD", vid, fps, duration, FrameSource("video", vid), width, height, procedure, segments))
    return SourceRead(out, [path] + ([table] if table else []), skipped)
