"""The converter's outputs: plain files in `--out-dir`, each replaced atomically, `manifest.json` last.

A run writes each parquet file to a hidden temp file beside it (`.rl_train.parquet.tmp-<pid>`), then
replaces the outputs one by one (`os.replace`) and writes the manifest last. Every parquet file carries
the id of the conversion that wrote it (footer key `medgrpo.conversion`), and so does the manifest:
`check_outputs` (the readers' check) names the file that does not match, e.g. after a run killed between
two replacements. A failed or killed run before its first replacement leaves the previous outputs; the
next run removes the temp files of dead runs (and what older converters left: their `.current` /
`.gen-*` staging folders once the outputs are plain files, and /dev/shm spill folders)."""

from __future__ import annotations

import contextlib
import json
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

MANIFEST = "manifest.json"
CONVERSION_KEY = b"medgrpo.conversion"  # parquet footer metadata: the id of the conversion that wrote the file
_STALE = re.compile(r"^\..+\.tmp-(\d+)$")  # a temp file the process with that pid left
_OLD_LAYOUT = re.compile(r"^\.(?:current|gen-\d+-\d+)$")  # staging folders of converters before 2027-01


class OutputError(ValueError):
    """The output folder cannot be used, or its files do not match its manifest; names the folder or file."""


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


def clean_stale(out: Path, spill_roots: Iterable[str] = ("/dev/shm",)) -> list[str]:
    """Remove what dead runs left: temp files, old spill folders; returns what went."""
    stale = [p for p in out.iterdir() if (m := _STALE.match(p.name)) and not _alive(int(m.group(1)))]
    stale += [p for root in spill_roots if os.path.isdir(root) for p in Path(root).glob("medgrpo-spill-*")
              if time.time() - p.stat().st_mtime > 60]  # Arrow IPC spills of converters before 2026-12
    for path in stale:
        _remove(path)
    return [p.name if p.parent == out else str(p) for p in stale]


def prepare_out_dir(path: str | os.PathLike[str]) -> Path:
    """The output folder, created if missing and cleaned of stale temp files; OutputError if unusable."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out-dir {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
    except OSError as exc:
        raise OutputError(f"--out-dir {out}: cannot be used ({exc.strerror or exc})") from None
    return out


class OutputWriter:
    """The parquet writers of one run, into temp files; `commit` publishes them, `abort` removes them."""

    def __init__(self, out: Path, schemas: Mapping[str, pa.Schema]):
        self.out, self.conversion = out, f"{time.time_ns()}-{os.getpid()}"
        self.rows = dict.fromkeys(schemas, 0)
        self._temps = {name: out / f".{name}.parquet.tmp-{os.getpid()}" for name in schemas}
        self._writers = {name: pq.ParquetWriter(self._temps[name], schema.with_metadata(
                             {**(schema.metadata or {}), CONVERSION_KEY: self.conversion.encode()}),
                             compression="zstd", use_dictionary=False, write_statistics=False)
                         for name, schema in schemas.items()}

    def write(self, tables: Mapping[str, pa.Table]) -> None:
        for name, table in ((n, t) for n, t in tables.items() if t.num_rows):
            writer = self._writers[name]
            writer.write_table(table if table.schema == writer.schema else table.cast(writer.schema))
            self.rows[name] += table.num_rows

    def commit(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Close the files, replace the outputs one by one, then write the manifest with this run's id;
        returns the manifest written."""
        for writer in self._writers.values():
            writer.close()
        for name, temp in self._temps.items():
            os.replace(temp, self.out / f"{name}.parquet")
        manifest = {**manifest, "conversion": self.conversion}
        write_json_atomic(self.out / MANIFEST, manifest)
        for path in (p for p in self.out.iterdir() if _OLD_LAYOUT.match(p.name)):
            _remove(path)
        return manifest

    def abort(self) -> None:
        for writer in self._writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        for temp in self._temps.values():
            temp.unlink(missing_ok=True)


def _footer(path: Path) -> tuple[str | None, int]:
    """(conversion id or None, rows) from a parquet file's footer; OutputError if it is not readable."""
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise OutputError(f"{path}: not a readable parquet file ({exc})") from None
    value = (metadata.metadata or {}).get(CONVERSION_KEY)
    return (value.decode("utf-8", "replace") if value is not None else None), metadata.num_rows


def check_outputs(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The readers' check of a converter output folder: its manifest (None: it has none), after checking
    that every output it lists was written by the conversion it describes; OutputError naming the first
    file that was not (a conversion interrupted midway)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: unreadable ({exc})") from None
    conversion = manifest.get("conversion") if isinstance(manifest, dict) else None
    rows = manifest.get("rows_written") if isinstance(manifest, dict) else None
    if not isinstance(conversion, str) or not isinstance(rows, dict):
        return manifest  # written by hand or by a converter before 2027-01: nothing to compare
    for name, count in rows.items():
        output = folder / f"{name}.parquet"
        if not output.is_file():
            raise OutputError(f"{output}: missing, but {path} lists it; run the conversion into {folder} again")
        found, written = _footer(output)
        if found != conversion or written != count:
            raise OutputError(f"{output}: not the file {path} describes (written by conversion {found or 'unknown'}, "
                              f"the manifest's is {conversion}): a conversion into {folder} was interrupted "
                              f"midway; run it again")
    return manifest
