"""The adapter registry: one reader per source release (`--source NAME`), each -> canonical videos."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from data_preprocess.builder.canonical import AnnotationError, Video


@dataclass
class SourceRead:
    """What an adapter read: the videos, the input files (for the manifest's sha256s), what it skipped, and
    warnings (message -> count) about what the release lacks or what was left out (the manifest's
    `warnings`, also printed): unknown ids, releases without boxes, null triplets, sheets not read."""

    videos: list[Video]
    files: list[Path]
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)


Reader = Callable[[Path, Path | None], SourceRead]


@dataclass(frozen=True)
class Adapter:
    name: str  # CLI name, e.g. "cholect50"
    data_source: str  # MedVidBench data_source ("" for the canonical format: each video names its own)
    read: Reader


ADAPTERS: dict[str, Adapter] = {}


def adapter(name: str, data_source: str) -> Callable[[Reader], Reader]:
    """Register the reader of one source release."""
    def register(fn: Reader) -> Reader:
        if name in ADAPTERS:
            raise ValueError(f"adapter {name!r} registered twice")
        ADAPTERS[name] = Adapter(name, data_source, fn)
        return fn
    return register


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {sorted(ADAPTERS)}") from None


def image_size(folder: Path, default: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the first image of a frame folder; `default` when it holds none."""
    from PIL import Image

    first = next(iter(sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg"))), None)
    if first is None:
        return default
    try:
        with Image.open(first) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
        raise AnnotationError(str(first), "-", "<image>", f"not a readable image ({type(exc).__name__}); "
                              "the frame size is read from a folder's first image") from None


def require(path: Path, what: str) -> Path:
    """The path, or an AnnotationError saying which file of the release is missing."""
    if not path.exists():
        raise AnnotationError(str(path), "-", "<file>", f"missing ({what})")
    return path
