"""NurViD as its public repository lays it out: `annotations/NurViD_annotations.json` keyed by YouTube id
({operationID, annotations: [{actionID, segment: [start_s, end_s]}], duration, resolution, fps}) and
`annotations/Procedure&Action_ID.xlsx` naming procedures and actions (the files may also sit in --root
itself; a .csv export of the table is read too). Videos `<youtube id>.mp4` under --videos.

The released table has two blocks side by side under a group row ("Procedure" | "Action"), each with the
columns ID, Chinese name, English name, ...; a flat table (`Procedure ID, Procedure, Action ID, Action`) is
read too. Every sheet is read; a sheet with no ID table is reported in the manifest's warnings. An
action id missing from the table is never turned into a label: its segment is left out and counted.
Procedure names are matched to the leaderboard's NurViD lists (nap_classes.json) case-insensitively so NAP
questions resolve.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_preprocess.builder.adapters.base import SourceRead, adapter
from data_preprocess.builder.adapters.tables import first_existing, norm
from data_preprocess.builder.canonical import AnnotationError, FrameSource, Segment, Video, read_json
from data_preprocess.builder.validate import MAX_DURATION, MAX_FPS, number_problem, to_number
from reward_fns.tasks.nap import class_table

ANNOTATIONS = "NurViD_annotations.json"
ID_TABLES = ("Procedure&Action_ID.xlsx", "Procedure&Action_ID.csv")
FOLDERS = ("annotations", ".")  # the repository layout first, then --root itself
NAME_COLS = ("english_name", "english", "name", "procedure_name", "action_name", "procedure", "action", "operation")
KINDS = {"procedure": "procedure", "operation": "procedure", "action": "action", "step": "action"}


def _id(value: Any) -> str:
    """An id as the tables write it: `7`, `007` and `7.0` (a spreadsheet's float) are all "7"; any other
    text (`7.5`, a name, a 400-digit number with a fraction) is kept as it is."""
    text = str(value).strip()
    whole, dot, fraction = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not dot or (fraction.isascii() and fraction.strip("0") == "")):
        return whole.lstrip("0") or "0"
    return text


def _kind(text: object) -> str | None:
    word = norm(text)
    return next((kind for key, kind in KINDS.items() if word.startswith(key)), None)


def _is_id(cell: str) -> bool:
    """'id', 'procedure_id', 'actionid', ... (not 'video_id')."""
    return cell == "id" or (cell.endswith("id") and _kind(cell[:-2].rstrip("_")) is not None)


def _sheets(path: Path) -> list[tuple[str, list[list[Any]]]]:
    """(sheet name, rows) of every sheet of an .xlsx, or the one table of a .csv."""
    if path.suffix.lower() == ".csv":
        import csv

        with path.open(newline="", encoding="utf-8-sig") as f:
            return [(path.name, [list(r) for r in csv.reader(f)])]
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise AnnotationError(str(path), "-", "<file>", f"unreadable workbook ({type(exc).__name__}: {exc})") from None
    try:
        return [(sheet.title, [list(r) for r in sheet.iter_rows(values_only=True)]) for sheet in book.worksheets]
    finally:
        book.close()


def _blocks(rows: Sequence[Sequence[Any]]) -> tuple[int, list[tuple[str, int, int]]] | None:
    """The header row and its ID blocks (kind, id column, name column), or None when the sheet has none."""
    for h, row in enumerate(rows):
        cells = [norm(c) for c in row]
        ids = [c for c, cell in enumerate(cells) if _is_id(cell)]
        if not ids:
            continue
        group = [norm(c) for c in rows[h - 1]] if h else []
        blocks = []
        for k, col in enumerate(ids):
            stop = ids[k + 1] if k + 1 < len(ids) else len(cells)
            name_col = next((c for want in NAME_COLS for c in range(col + 1, stop) if cells[c] == want), None)
            label = next((g for g in group[col:stop] if g), "") if group else ""
            kind = _kind(cells[col][:-2].rstrip("_")) or _kind(label)
            kind = kind or ("procedure", "action")[min(k, 1)]
            if name_col is not None:
                blocks.append((kind, col, name_col))
        if blocks:
            return h, blocks
    return None


def id_names(path: Path, warnings: Counter[str]) -> tuple[dict[str, str], dict[str, str]]:
    """{procedure id: name}, {action id: name} from every sheet of the ID table."""
    tables: dict[str, dict[str, str]] = {"procedure": {}, "action": {}}
    for title, rows in _sheets(path):
        found = _blocks(rows)
        if found is None:
            if any(any(v not in (None, "") for v in r) for r in rows):
                warnings[f"NurViD {path.name} sheet {title!r} not read (no ID / name header)"] += 1
            continue
        header, blocks = found
        for row in rows[header + 1:]:
            for kind, id_col, name_col in blocks:
                key = row[id_col] if id_col < len(row) else None
                name = row[name_col] if name_col < len(row) else None
                if key not in (None, "") and name not in (None, ""):
                    tables[kind][_id(key)] = str(name).strip()
    if not tables["action"]:
        raise AnnotationError(str(path), "-", "<header>", "no action ID / name table in any sheet")
    return tables["procedure"], tables["action"]


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


def locate(root: Path, names: Sequence[str]) -> Path | None:
    """The first of `names` under `root/annotations/`, then `root/`."""
    return first_existing(root / folder / name for folder in FOLDERS for name in names)


@adapter("nurvid", "NurViD")
def read(root: Path, videos: Path | None) -> SourceRead:
    path = locate(root, (ANNOTATIONS,))
    if path is None:
        raise AnnotationError(str(root / "annotations" / ANNOTATIONS), "-", "<file>",
                              f"missing (NurViD annotation JSON; also looked for {root / ANNOTATIONS})")
    table = locate(root, ID_TABLES)
    if table is None:
        raise AnnotationError(str(root / "annotations" / ID_TABLES[0]), "-", "<file>",
                              "missing (the Procedure&Action_ID table names the actions; .xlsx or .csv)")
    out = SourceRead([], [path, table])
    procedures, actions = id_names(table, out.warnings)
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(str(path), "-", "<file>", "must map YouTube ids to video objects")
    for vid, entry in sorted(data.items()):
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), list):
            raise AnnotationError(str(path), vid, "annotations", "missing or not a list")
        operation = _id(entry.get("operationID", ""))
        procedure = leaderboard_name(procedures.get(operation, ""))
        if operation not in procedures:
            out.warnings["NurViD operationIDs not in the Procedure&Action_ID table (video kept, no procedure "
                          "name)"] += 1
        segments = []
        for i, ann in enumerate(entry["annotations"]):
            try:
                start, end = (float(t) for t in ann["segment"])
                if isinstance(ann["actionID"], bool) or not isinstance(ann["actionID"], (int, str)):
                    raise TypeError(f"actionID must be a number or text, got {ann['actionID']!r}")
                action = _id(ann["actionID"])
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationError(str(path), f"{vid}.annotations[{i}]", "segment/actionID", repr(exc)) from None
            if action not in actions:
                out.warnings["NurViD actionIDs not in the Procedure&Action_ID table (segment left out)"] += 1
            elif end > start:
                segments.append(Segment(actions[action], start, end, "action"))
            else:
                out.skipped["segment with end <= start"] += 1
        fps, duration = (_optional_number(entry, key, path, vid) for key in ("fps", "duration"))
        fps = fps or 30.0  # missing: the common YouTube rate
        duration = duration or max((s.end for s in segments), default=0.0)
        if duration <= 0:
            out.skipped["video without duration or segments"] += 1
            continue
        width, height = _resolution(entry.get("resolution"))
        out.videos.append(Video("NurViD", vid, fps, duration, FrameSource("video", vid), width, height, procedure,
                                segments))
    return out
