"""All-or-nothing outputs: a run writes a new generation folder and publishes it with one rename.

Layout of `--out-dir` (readers open the plain names, which are symlinks):

    rl_train.parquet -> .current/rl_train.parquet      (same for rl_val, sft_train, sft_val, manifest.json)
    .current -> .gen-<time>-<pid>                     (the one rename that commits a run)
    .gen-<time>-<pid>/                                (the four parquet files and manifest.json of one run)
    rc_frames/                                        (drawn region-caption frames, content-addressed)

A run that fails or is killed leaves the previous generation in place; its staging folder (and the
temp files of older converter versions, and their /dev/shm spill folders) are removed by the next run
once the process that wrote them is gone.
"""

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

COMPRESSION = "zstd"
CURRENT = ".current"
MANIFEST = "manifest.json"
_STALE = re.compile(r"^\.(?:gen-\d+-|current\.tmp-|.+\.tmp-)(\d+)$")  # name of something a process left


class OutputError(ValueError):
    """The output folder cannot be used; names the folder."""


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(out: Path, spill_roots: Iterable[str] = ("/dev/shm",)) -> list[str]:
    """Remove what dead runs left: staging folders, temp files, old spill folders. Returns their names."""
    current = os.readlink(out / CURRENT) if (out / CURRENT).is_symlink() else None
    removed = []
    for entry in out.iterdir():
        match = _STALE.match(entry.name)
        if match and entry.name != current and not _alive(int(match.group(1))):
            _remove(entry)
            removed.append(entry.name)
    for root in spill_roots:  # Arrow IPC spill folders of converter versions before 2026-12
        for spill in Path(root).glob("medgrpo-spill-*") if os.path.isdir(root) else ():
            if time.time() - spill.stat().st_mtime > 60:
                _remove(spill)
                removed.append(str(spill))
    return removed


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


def has_outputs(out: Path, names: Iterable[str]) -> bool:
    """Does the folder hold parquet outputs of an earlier run?"""
    return any((out / f"{name}.parquet").exists() for name in names)


class Generation:
    """The parquet writers of one run in a staging folder; `commit` publishes it, `abort` removes it."""

    def __init__(self, out: Path, schemas: Mapping[str, pa.Schema]):
        self.out = out
        self.folder = out / f".gen-{time.time_ns()}-{os.getpid()}"
        self.folder.mkdir()
        self.rows = dict.fromkeys(schemas, 0)
        self._writers = {name: pq.ParquetWriter(self.folder / f"{name}.parquet", schema, compression=COMPRESSION,
                                                use_dictionary=False, write_statistics=False)
                         for name, schema in schemas.items()}

    def write(self, tables: Mapping[str, pa.Table]) -> None:
        for name, table in tables.items():
            if table.num_rows:
                writer = self._writers[name]
                writer.write_table(table if table.schema == writer.schema else table.cast(writer.schema))
                self.rows[name] += table.num_rows

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def commit(self, manifest: dict[str, Any]) -> None:
        """Close the files, write the manifest, then switch `.current` to this generation (one rename)."""
        self._close()
        write_json_atomic(self.folder / MANIFEST, manifest)
        old = os.readlink(self.out / CURRENT) if (self.out / CURRENT).is_symlink() else None
        _symlink_replace(self.folder.name, self.out / CURRENT)
        for name in (*self._writers, MANIFEST):
            file = f"{name}.parquet" if name != MANIFEST else name
            link = self.out / file
            if not (link.is_symlink() and os.readlink(link) == f"{CURRENT}/{file}"):
                _symlink_replace(f"{CURRENT}/{file}", link)  # once per folder (first run of this layout)
        if old and old != self.folder.name:
            _remove(self.out / old)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        _remove(self.folder)


def _symlink_replace(target: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    _remove(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)
