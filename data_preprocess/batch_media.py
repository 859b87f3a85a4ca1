"""The frames of a batch's rows: selection under the VideoSpec, absolute paths, region-caption boxes,
existence checks and prompt-token estimates.

Plain rows never become Python strings (`frame_arrays`); region-caption rows (a few percent) are
handled as Python lists, so the boxed start frame is put in place without touching the big arrays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from data_preprocess import frame_arrays
from data_preprocess.frames import FrameChecker, selection
from data_preprocess.manifest import text_tokens
from data_preprocess.rc_overlay import overlay_frame
from data_preprocess.rows import RowBuffer
from data_preprocess.schema import Checked, decode_frames
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError

Selection = tuple[list[int] | None, float, int | None]


class Media:
    """Per-process frame machinery (thread pools and caches)."""

    def __init__(self, spec: VideoSpec, data_root: str, rc_cache: Path, check_frames: bool, where: str,
                 io_workers: int = 16):
        self.spec, self.root, self.rc_cache = spec, os.path.abspath(data_root), rc_cache
        self.check_frames, self.where = check_frames, where
        self.checker = FrameChecker(io_workers)
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="rc")  # drawing is CPU work: 2 threads suffice
        self._selections: dict[tuple[int, float, int | None], Selection] = {}
        self._visual: dict[tuple[int, int, int], int] = {}

    def close(self) -> None:
        self._pool.shutdown()
        self.checker.close()

    def _select(self, count: int, fps: float, must: int | None) -> Selection:
        key = (count, fps, must)
        if key not in self._selections:
            self._selections[key] = selection(count, fps, self.spec, must)
        return self._selections[key]

    def plain(self, rows: RowBuffer, raws: Sequence[Any]) -> tuple[pa.ListArray, dict[int, RecordError]]:
        """Frames of rows without a region box (vectorized); rows that failed, with the error."""
        bad: dict[int, RecordError] = {}

        def choose(counts: np.ndarray) -> dict[int, list[int]]:
            todo = set(np.flatnonzero(counts > self.spec.max_frames).tolist()) if self.spec.max_frames else set()
            if self.spec.fps is not None:
                todo.update(r for r, fps in enumerate(rows.fps) if fps > self.spec.fps)
            keep: dict[int, list[int]] = {}
            for row in sorted(todo - bad.keys()):
                positions, rows.model_fps[row], _ = self._select(int(counts[row]), rows.fps[row], None)
                if positions is not None:
                    keep[row] = positions
            return keep

        frames = frame_arrays.from_raw(raws, choose)
        if frames is None:  # something unusual: decode record by record to name the culprit
            lists = []
            for row, raw in enumerate(raws):
                try:
                    lists.append(decode_frames(raw, rows.index[row], self.where))
                except RecordError as error:
                    bad[row] = error
                    lists.append(["-"])
            frames = frame_arrays.from_lists(lists)
            frames = frame_arrays.select(frames, choose(np.diff(frames.offsets.to_numpy())))
        frames = frame_arrays.absolute(frames, self.root)
        return frames, self._missing(rows, frames, bad)

    def region(self, rows: RowBuffer, raws: Sequence[Any], checked: Sequence[Checked]
               ) -> tuple[pa.ListArray, dict[int, RecordError]]:
        """Frames of region-caption rows, the start frame replaced by its copy with the box drawn."""
        bad: dict[int, RecordError] = {}
        lists: list[list[str]] = []
        jobs: dict[int, tuple[int, Future[str]]] = {}
        drawn: dict[tuple[str, tuple[float, ...]], Future[str]] = {}
        for row, (raw, item) in enumerate(zip(raws, checked, strict=True)):
            try:
                listed = decode_frames(raw, rows.index[row], self.where)
                if item.rc_frame not in listed:
                    raise RecordError(rows.index[row], "RC_info.start_frame",
                                      f"{item.rc_frame!r} is not one of the record's frames", self.where)
            except RecordError as error:
                bad[row] = error
                lists.append(["-"])
                continue
            positions, rows.model_fps[row], pos = self._select(len(listed), rows.fps[row],
                                                               listed.index(item.rc_frame))
            lists.append([listed[i] for i in positions] if positions is not None else listed)
            source = os.path.join(self.root, item.rc_frame)
            key = (source, item.rc_box)
            if key not in drawn:  # the _gpt and _gemini questions of one clip share their drawing
                drawn[key] = self._pool.submit(overlay_frame, source, item.rc_box, self.rc_cache)
            jobs[row] = (pos, drawn[key])
        for row, (pos, future) in jobs.items():
            try:
                lists[row][pos] = future.result()
            except OSError as exc:
                bad[row] = RecordError(rows.index[row], "RC_info.start_frame",
                                       f"cannot draw the region box: {exc}", self.where)
        frames = pa.array([[os.path.join(self.root, f) for f in frames] for frames in lists],
                          type=pa.list_(pa.string()))
        return frames, self._missing(rows, frames, bad)

    def _missing(self, rows: RowBuffer, frames: pa.ListArray, bad: dict[int, RecordError]
                 ) -> dict[int, RecordError]:
        """`bad` plus rows with a frame file that does not exist (parallel stat of distinct paths)."""
        if not self.check_frames:
            return bad
        missing = self.checker.missing(frames.flatten().to_pylist())
        if missing:
            for row, paths in enumerate(frames.to_pylist()):
                lost = [p for p in paths if p in missing]
                if lost and row not in bad:
                    bad[row] = RecordError(rows.index[row], "video", f"{len(lost)} frame file(s) not found, "
                                           f"first: {lost[0]}", self.where)
        return bad

    def tokens(self, rows: RowBuffer, frames: pa.ListArray) -> list[int]:
        """Estimated prompt length per row: visual tokens (VideoSpec, smart resize) + text tokens."""
        offsets = frames.offsets.to_numpy()
        counts = np.diff(offsets).tolist()
        firsts = None
        if self.check_frames:  # probe one frame per video for its size
            firsts = frames.flatten().take(pa.array(offsets[:-1] - offsets[0])).to_pylist()
        out = []
        for i, n in enumerate(counts):
            size = self.checker.size(rows.video_id[i], firsts[i]) if firsts is not None else None
            width, height = size or self.spec.frame_size
            key = (n, width, height)
            if key not in self._visual:
                self._visual[key] = self.spec.visual_tokens(n, height, width)
            out.append(self._visual[key] + text_tokens(rows.question[i]))
        return out
