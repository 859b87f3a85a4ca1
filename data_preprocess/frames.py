"""Frame lists: selection under the VideoSpec, file checks (regular files, in parallel), size probes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

from PIL import Image

from data_preprocess.video_spec import VideoSpec


def selection(count: int, record_fps: float, spec: VideoSpec, must_keep: int | None = None
              ) -> tuple[list[int] | None, float, int | None]:
    """Positions of the frames fed to the model (None: all), their fps, and where frame `must_keep` lands.

    `must_keep` (the region-caption start frame) replaces the nearest selected frame when the
    subsampling would drop it, so the drawn box always reaches the model.
    """
    keep, fps = spec.frame_indices(count, record_fps)
    if keep is None:
        return None, fps, must_keep
    if must_keep is not None and must_keep not in keep:
        nearest = min(range(len(keep)), key=lambda j: (abs(keep[j] - must_keep), j))
        keep = sorted({*keep[:nearest], must_keep, *keep[nearest + 1:]})
    return keep, fps, (keep.index(must_keep) if must_keep is not None else None)


def _problems(paths: Sequence[str]) -> list[tuple[str, str]]:
    """(path, 'not found' | 'not a file') for each path that is not a regular file."""
    out = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            out.append((path, "not found"))
            continue
        if not stat.S_ISREG(mode):
            out.append((path, "not a file"))
    return out


class FrameChecker:
    """`os.stat` on many paths from a thread pool (the syscalls release the GIL); cached size probes."""

    def __init__(self, workers: int = 16):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="stat")
        self._sizes: dict[str, tuple[int, int] | None] = {}

    def problems(self, paths: Iterable[str]) -> dict[str, str]:
        """{path: why} for the paths that are not regular files (each distinct path checked once)."""
        unique = list(set(paths))
        step = max(256, -(-len(unique) // 64))
        chunks = [unique[i:i + step] for i in range(0, len(unique), step)]
        return dict(chain.from_iterable(self._pool.map(_problems, chunks)))

    def size(self, key: str, path: str) -> tuple[int, int] | None:
        """(width, height) of `path` (header only), cached under `key` (one probe per video)."""
        if key not in self._sizes:
            try:
                with Image.open(path) as image:
                    self._sizes[key] = image.size
            except (OSError, ValueError):
                self._sizes[key] = None
        return self._sizes[key]

    def close(self) -> None:
        self._pool.shutdown()
