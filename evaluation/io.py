"""Reading benchmark JSON files with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_json_list(path: str | Path, what: str) -> list[Any]:
    """A JSON file holding a list; anything else is a clear error naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"{what} file {path} is not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise SystemExit(f"{what} file {path} must hold a JSON list, got {type(data).__name__}")
    return data
