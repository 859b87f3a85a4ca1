"""Per-step training metrics from verl's file logger (``trainer.logger=[console,file]`` with
``VERL_FILE_LOGGER_PATH``): one JSON line per logged step, ``{"step": N, "data": {metric: value}}``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def file_log_steps(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(step, metrics) of each line of a verl file-logger JSONL."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            entry = json.loads(line)
            data = entry.get("data")
            if not isinstance(data, dict) or "step" not in entry:
                raise ValueError(f"{path}:{number}: not a verl file-logger line")
            yield int(entry["step"]), data


def read_file_log(path: str | Path, keys: dict[str, str]) -> list[dict[str, Any]]:
    """Training steps of a verl file-logger JSONL, each with `keys` (name -> verl metric) picked out."""
    steps: dict[int, dict[str, Any]] = {}
    for step, data in file_log_steps(path):
        picked = {name: data[metric] for name, metric in keys.items() if metric in data}
        if picked:
            steps.setdefault(step, {"step": step}).update(picked)
    return [steps[n] for n in sorted(steps)]
