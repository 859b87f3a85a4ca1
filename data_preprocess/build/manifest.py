"""`OUT.manifest.json`: counts per source/task/fps, drops with reasons, exclusion, inputs' sha256, licences."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from data_preprocess.build.config import BuildConfig
from data_preprocess.build.pipeline import Built


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def nested(counter: Mapping[tuple[str, ...], int]) -> dict[str, Any]:
    """{(a, b, c): n} -> {a: {b: {c: n}}}, keys sorted."""
    out: dict[str, Any] = {}
    for key in sorted(counter):
        node = out
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = counter[key]
    return out


def counts(built: Iterable[Built]) -> dict[str, Any]:
    return nested(Counter((b.video.source, b.task, f"{b.fps:.1f}") for b in built))


def inputs(files: Iterable[Path]) -> list[dict[str, Any]]:
    seen = dict.fromkeys(Path(f).resolve() for f in files)
    return [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)} for p in seen if p.is_file()]


def licences(config: BuildConfig, sources: Iterable[str]) -> dict[str, str]:
    return {s: (config.sources[s].licence if s in config.sources else "") for s in sorted(set(sources))}
