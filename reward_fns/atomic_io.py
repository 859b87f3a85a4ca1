"""Atomic file output: write to a temp file beside the target, then `os.replace` it into place.

The temp file is created with mode 0666 and the process umask applied (as `open(path, "w")` would),
so a finished output has the same permissions as any other tool's output (0644 under umask 022),
not the 0600 of `tempfile.mkstemp`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TRIES = 100


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (changing it races other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_temp(folder: Path, name: str) -> Path:
    """Create an empty, exclusive temp file in `folder`; the kernel applies the umask to mode 0666."""
    for _ in range(_TRIES):
        path = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"{folder}: could not create a temp file for {name} in {_TRIES} tries")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success it replaces the target, else it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(target.parent, target.name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | os.PathLike[str], data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
