"""`--source canonical`: the builder's own documented JSON format (see canonical.py, docs/builder.md)."""

from __future__ import annotations

from pathlib import Path

from data_preprocess.builder.adapters.base import SourceRead, adapter
from data_preprocess.builder.canonical import read_canonical


@adapter("canonical", "")
def read(root: Path, videos: Path | None) -> SourceRead:
    files = [root] if root.is_file() else sorted(root.glob("*.json"))
    return SourceRead(list(read_canonical(root)), files)
