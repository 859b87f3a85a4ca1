"""Reading spreadsheet-like inputs (xlsx via openpyxl, csv) as rows keyed by normalized headers."""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from data_preprocess.builder.canonical import AnnotationError, read_text_file
from data_preprocess.builder.validate import to_number


def norm(header: object) -> str:
    """'Initial  Minute' / 'initial_minute' / 'Initial-Minute' -> 'initial_minute'."""
    return re.sub(r"[^a-z0-9]+", "_", str(header or "").strip().lower()).strip("_")


def _xlsx_rows(path: Path) -> list[list[Any]]:
    """The first sheet's rows; a truncated, fake or broken workbook is an AnnotationError naming the file."""
    try:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        raise AnnotationError(str(path), "-", "<file>", "reading .xlsx needs openpyxl (or a .csv export)") from None
    if not path.is_file():
        raise AnnotationError(str(path), "-", "<file>", "not a regular file")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    except (zipfile.BadZipFile, zlib.error, InvalidFileException, KeyError, ValueError, TypeError, IndexError,
            AttributeError, EOFError, OSError, SyntaxError) as exc:  # SyntaxError: the XML parser's errors
        raise AnnotationError(str(path), "-", "<file>", f"not a readable .xlsx workbook ({type(exc).__name__}: "
                              f"{str(exc)[:120]}); export it as .csv (UTF-8) if it opens elsewhere") from None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of the first sheet of an .xlsx, or of a .csv (UTF-8), as {normalized header: value}."""
    if path.suffix.lower() == ".csv":
        try:
            raw = list(csv.reader(io.StringIO(read_text_file(path), newline="")))
        except csv.Error as exc:
            raise AnnotationError(str(path), "-", "<file>", f"not a readable CSV ({exc})") from None
    else:
        raw = _xlsx_rows(path)
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
    """A finite number cell (numeric text accepted); anything else is an AnnotationError naming the cell."""
    try:
        out = to_number(value)
    except (TypeError, ValueError):
        raise AnnotationError(where, index, field, f"not a number: {str(value)[:60]!r}") from None
    if not math.isfinite(out):
        raise AnnotationError(where, index, field, f"not a finite number: {value!r}")
    return out


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
