"""JSON Lines input: the decoded value of each non-blank line and objects with typed fields, every
problem one error naming `file:line` and what the line should hold. JSON types are checked, never
coerced (`true` is no integer, `1.9` and `"1"` are none either)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

_JSON_NAMES: dict[type, str] = {int: "integer", str: "string"}
MAX_MESSAGE = 300  # a field's value is quoted; a huge one is cut


def json_lines(lines: Iterable[str], path: str | Path, expected: str,
               error: Callable[[str], Exception]) -> Iterator[tuple[str, Any]]:
    """(`path:n`, decoded value) of each non-blank line (n from 1); a line that is not JSON raises
    `error` naming `path:n` and `expected` (e.g. 'expected {"index": int}')."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{where}: {expected}: not valid JSON: {err}") from None
        yield where, value


def json_object(value: Any, where: str, fields: Mapping[str, type], expected: str,
                error: Callable[[str], Exception]) -> dict[str, Any]:
    """`value` when it is an object holding each of `fields` with a JSON value of its type (int or str);
    otherwise `error` naming `where`, `expected` and the first field at fault."""
    if not isinstance(value, dict):
        raise error(f"{where}: {expected}, got a JSON {type(value).__name__}")
    for name, kind in fields.items():
        if name not in value:
            raise error(f"{where}: {expected}: field '{name}' is missing")
        if isinstance(value[name], bool) or not isinstance(value[name], kind):
            message = f"{where}: {expected}: field '{name}' must be a JSON {_JSON_NAMES[kind]}, got {value[name]!r}"
            raise error(message[:MAX_MESSAGE])
    return value
