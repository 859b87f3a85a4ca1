"""All-or-nothing outputs: `--out-dir` holds `rl_train.parquet -> .current/rl_train.parquet` (likewise
the other outputs and manifest.json) and `.current -> .gen-<time>-<pid>`, a run's staging folder, switched
by one rename. A failed or killed run leaves the previous generation; the next run removes what it left
(and old converters' temp files and /dev/shm spill folders) once the process that wrote it is gone."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reward_fns.atomic_io import write_json_atomic

CURRENT, MANIFEST = ".current", "manifest.json"
_STALE = re.compile(r"^\.(?:gen-\d+-|.+\.tmp-)(\d+)$")  # what a process with that pid left


class OutputError(ValueError):
    """The output folder cannot be used; names the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError as exc:  # EPERM: alive, another user's
        return not isinstance(exc, ProcessLookupError)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _current(out: Path) -> str | None:
    return os.readlink(out / CURRENT) if (out / CURRENT).is_symlink() else None


def clean_stale(out: Path, spill_roots: Iterable[str] = ("/dev/shm",)) -> list[str]:
    """Remove what dead runs left: staging folders, temp files, old spill folders; returns what went."""
    current = _current(out)
    stale = [p for p in out.iterdir() if (m := _STALE.match(p.name)) and p.name != current
             and not _alive(int(m.group(1)))]
    stale += [p for root in spill_roots if os.path.isdir(root) for p in Path(root).glob("medgrpo-spill-*")
              if time.time() - p.stat().st_mtime > 60]  # Arrow IPC spills of converters before 2026-12
    for path in stale:
        _remove(path)
    return [p.name if p.parent == out else str(p) for p in stale]


def prepare_out_dir(path: str | os.PathLike[str]) -> Path:
    """The output folder, created if missing and cleaned of stale staging; OutputError if unusable."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out-dir {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
    except OSError as exc:
        raise OutputError(f"--out-dir {out}: cannot be used ({exc.strerror or exc})") from None
    return out


def _symlink_replace(target: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    _remove(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


class Generation:
    """The parquet writers of one run in a staging folder; `commit` publishes it, `abort` removes it."""

    def __init__(self, out: Path, schemas: Mapping[str, pa.Schema]):
        self.out, self.folder = out, out / f".gen-{time.time_ns()}-{os.getpid()}"
        self.folder.mkdir()
        self.rows = dict.fromkeys(schemas, 0)
        self._writers = {name: pq.ParquetWriter(self.folder / f"{name}.parquet", schema, compression="zstd",
                                                use_dictionary=False, write_statistics=False)
                         for name, schema in schemas.items()}

    def write(self, tables: Mapping[str, pa.Table]) -> None:
        for name, table in ((n, t) for n, t in tables.items() if t.num_rows):
            writer = self._writers[name]
            writer.write_table(table if table.schema == writer.schema else table.cast(writer.schema))
            self.rows[name] += table.num_rows

    def commit(self, manifest: dict[str, Any]) -> None:
        """Close the files, write the manifest, then switch `.current` to this generation (one rename)."""
        for writer in self._writers.values():
            writer.close()
        write_json_atomic(self.folder / MANIFEST, manifest)
        old = _current(self.out)
        _symlink_replace(self.folder.name, self.out / CURRENT)
        for file in (*(f"{name}.parquet" for name in self._writers), MANIFEST):  # replaces old plain files too
            _symlink_replace(f"{CURRENT}/{file}", self.out / file)
        if old and old != self.folder.name:
            _remove(self.out / old)

    def abort(self) -> None:
        for writer in self._writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        _remove(self.folder)
