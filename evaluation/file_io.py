"""Reading benchmark JSON files and checking output paths, with one-line errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_text(path: str | Path, what: str) -> str:
    """The file as UTF-8 text; a missing file, a folder or non-UTF-8 bytes are one-line errors."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SystemExit(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise SystemExit(f"{what} file {path} is a folder, not a file") from None
    except OSError as err:
        raise SystemExit(f"{what} file {path} cannot be read: {err.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise SystemExit(f"{what} file {path} is not UTF-8: byte 0x{raw[err.start]:02x} at byte offset "
                         f"{err.start} (line {line})") from None


def _depth_position(text: str, limit: int) -> int:
    """Offset of the first bracket that nests deeper than `limit` (brackets inside strings ignored)."""
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return i
        elif ch in "]}":
            depth -= 1
    return len(text)


def parse_json(text: str, where: str) -> Any:
    """`json.loads`, with invalid JSON and absurd nesting as one-line errors naming `where` and the position."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"{where} is not valid JSON: {err}") from None
    except RecursionError:
        pos = _depth_position(text, 500)
        line = text.count("\n", 0, pos) + 1
        raise SystemExit(f"{where} is not usable JSON: nested too deeply at line {line}, "
                         f"char offset {pos}") from None


def load_json_list(path: str | Path, what: str) -> list[Any]:
    """A JSON file holding a list; anything else is a clear error naming the file."""
    data = parse_json(read_text(path, what), f"{what} file {path}")
    if not isinstance(data, list):
        raise SystemExit(f"{what} file {path} must hold a JSON list, got {type(data).__name__}")
    return data


def check_output_path(path: str | Path, flag: str = "--out") -> None:
    """Fail early (before any work) when an output path is a folder or sits under a file."""
    path = Path(path)
    if path.is_dir():
        raise SystemExit(f"error: {flag} {path} is a folder; give a file path")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise SystemExit(f"error: {flag} {path}: {parent} is a file, not a folder")
