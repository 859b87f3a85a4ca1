"""Reading spreadsheet-like inputs (xlsx via openpyxl, csv) as rows keyed by normalized headers."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from data_preprocess.build.canonical import AnnotationError


def norm(header: object) -> str:
    """'Initial  Minute' / 'initial_minute' / 'Initial-Minute' -> 'initial_minute'."""
    return re.sub(r"[^a-z0-9]+", "_", str(header or "").strip().lower()).strip("_")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of the first sheet of an .xlsx, or of a .csv, as {normalized header: value}."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            raw = list(csv.reader(f))
    else:
        try:
            import openpyxl
        except ImportError:  # pragma: no cover - pinned in requirements.txt
            raise AnnotationError(str(path), "-", "<file>", "reading .xlsx needs openpyxl (or a .csv export)") from None
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        raw = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    raw = [r for r in raw if any(v not in (None, "") for v in r)]
    if not raw:
        raise AnnotationError(str(path), "-", "<header>", "empty table")
    header = [norm(h) for h in raw[0]]
    return [dict(zip(header, row, strict=False)) for row in raw[1:]]


def column(row: Mapping[str, Any], names: Sequence[str], where: str, index: int) -> Any:
    """The first of several accepted header spellings present in the row."""
    for name in names:
        if name in row and row[name] not in (None, ""):
            return row[name]
    raise AnnotationError(where, index, names[0], f"missing (accepted headers: {', '.join(names)})")


def number(value: Any, where: str, index: int, field: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnnotationError(where, index, field, f"not a number: {value!r}") from None


def first_existing(paths: Iterable[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def unread_sheets(path: Path) -> list[str]:
    """Names of an .xlsx's sheets after the first (which `read_rows` reads) that hold any value."""
    if path.suffix.lower() == ".csv":
        return []
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return [s.title for s in book.worksheets[1:]
                if any(v not in (None, "") for row in s.iter_rows(values_only=True) for v in row)]
    finally:
        book.close()
