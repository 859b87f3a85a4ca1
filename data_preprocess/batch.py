"""One chunk of records: JSON bytes in, the rows of each split as Arrow tables and the chunk's
statistics out. Runs in worker processes (or in-process); invalid records never raise here: they
are listed in `Stats.invalid` and the caller stops on the first one unless `--skip-invalid`.

Inside a chunk, region-caption rows follow the other rows of their split (the order the converter
has always written).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import accumulate, chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from data_preprocess.frames import FrameChecker, selection
from data_preprocess.ground_truth import ground_truth_json, rl_rejection
from data_preprocess.manifest import Stats, text_tokens
from data_preprocess.rc_overlay import overlay_frame
from data_preprocess.rows import RowBuffer, to_table
from data_preprocess.schema import DECODER, RECORD_DECODER, Checked, check_record, invalid_entry
from data_preprocess.splits import VideoSplit
from reward_fns.reference import RecordError

if TYPE_CHECKING:
    from data_preprocess.convert import ConvertConfig

SPLIT_NAMES = ("train", "val")
DRAW_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


@dataclass
class Job:
    """Records to convert: their indices in the input and their JSON (a list, same order)."""

    indices: list[int]
    data: bytes
    nap_answers: Mapping[str, frozenset[str]]


@dataclass
class ChunkResult:
    """What one chunk gives back: `tables[split]` holds all RL and SFT columns plus `rl_ok`."""

    stats: Stats
    tables: dict[str, pa.Table] = field(default_factory=dict)
    val_videos: set[str] = field(default_factory=set)


def decode_records(data: bytes, indices: Sequence[int], where: str) -> list[Any]:
    """The chunk's records; a record that does not decode becomes its RecordError."""
    try:
        return DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    out: list[Any] = []
    for index, raw in zip(indices, msgspec.json.decode(data, type=list[msgspec.Raw]), strict=True):
        try:
            out.append(RECORD_DECODER.decode(raw))
        except UnicodeDecodeError as exc:
            out.append(RecordError(index, "record", f"not valid UTF-8 (byte {exc.start} of the record)", where))
        except (msgspec.DecodeError, RecursionError) as exc:
            out.append(RecordError(index, "record", f"cannot be decoded: {exc}", where))
    return out


class BatchConverter:
    """Converts chunks for one run (holds the settings, caches and the frame checker)."""

    def __init__(self, cfg: ConvertConfig):
        self.cfg, self.spec = cfg, cfg.video_spec
        self.where = os.fspath(cfg.input)
        self.root = os.path.abspath(cfg.data_root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        self.rc_cache = Path(cfg.out_dir, "rc_frames")
        self.split = VideoSplit(cfg.val_fraction, cfg.seed)
        self.checker = FrameChecker(cfg.io_workers)
        self._nap: dict[tuple[str, str], Any] = {}
        self._selections: dict[tuple[int, float, int | None], tuple[list[int] | None, float, int | None]] = {}
        self._visual: dict[tuple[int, int, int], int] = {}

    def close(self) -> None:
        self.checker.close()

    def convert(self, job: Job) -> ChunkResult:
        from reward_fns.tasks.nap import resolve_nap_classes

        def nap_classes(source: str, question: str) -> Any:
            if (source, question) not in self._nap:
                self._nap[source, question] = resolve_nap_classes(source, question, job.nap_answers.get(source, ()))
            return self._nap[source, question]

        result = ChunkResult(Stats(self.cfg.max_prompt_tokens))
        parts: dict[tuple[int, bool], list[tuple[Checked, str | None, Any]]] = {}
        for index, rec in zip(job.indices, decode_records(job.data, job.indices, self.where), strict=True):
            try:
                if isinstance(rec, RecordError):
                    raise rec
                checked = check_record(rec, index, self.where, nap_classes)
                reason = self._rl_rejection(checked)
            except RecordError as error:
                result.stats.invalid.append(invalid_entry(error, rec))
                continue
            code = self.split.code(checked.video_id)
            if code:
                result.val_videos.add(checked.video_id)
            parts.setdefault((code, checked.rc_frame is not None), []).append((checked, reason, rec))
        for code, split in enumerate(SPLIT_NAMES):
            tables = [self._table(parts[key], result.stats) for key in ((code, False), (code, True)) if key in parts]
            tables = [t for t in tables if t is not None]
            if tables:
                result.tables[split] = pa.concat_tables(tables)
        return result

    def _rl_rejection(self, checked: Checked) -> str | None:
        try:
            return rl_rejection(checked.task, checked.ref)
        except Exception as exc:  # the task code could not read this ground truth
            raise RecordError(checked.index, "struc_info", f"ground truth unusable by task {checked.task.name}: "
                              f"{exc!r}", self.where) from None

    def _select(self, count: int, fps: float, must: int | None) -> tuple[list[int] | None, float, int | None]:
        key = (count, fps, must)
        if key not in self._selections:
            self._selections[key] = selection(count, fps, self.spec, must)
        return self._selections[key]

    def _frames(self, item: Checked, stats: Stats) -> tuple[list[str], float]:
        """The frames fed to the model (relative; the start frame with its box drawn: absolute), their fps."""
        frames = item.frames
        must = frames.index(item.rc_frame) if item.rc_frame is not None else None
        positions, fps, pos = self._select(len(frames), item.ref.fps, must)
        chosen = [frames[i] for i in positions] if positions is not None else frames
        if item.rc_frame is not None and pos is not None:
            chosen = list(chosen)
            try:
                chosen[pos], clipped = overlay_frame(self.prefix + item.rc_frame, item.rc_box, self.rc_cache)
            except DRAW_ERRORS as exc:
                raise RecordError(item.index, "RC_info.start_frame_bbox" if isinstance(exc, ValueError)
                                  and "lies outside" in str(exc) else "RC_info.start_frame",
                                  f"cannot draw the region box: {exc}", self.where) from None
            if clipped != item.rc_box:
                stats.clipped.append({"index": item.index, "id": item.id, "field": "RC_info.start_frame_bbox",
                                      "box": list(item.rc_box), "clipped_to": list(clipped)})
        return chosen, fps

    def _table(self, part: list[tuple[Checked, str | None, Any]], stats: Stats) -> pa.Table | None:
        rows, lists = [], []
        for item, reason, rec in part:
            try:
                frames, fps = self._frames(item, stats)
            except RecordError as error:
                stats.invalid.append(invalid_entry(error, rec))
                continue
            ref = item.ref
            rows.append((item.index, item.id, ref.qa_type, ref.data_source, item.task.name, ref.fps,
                         "val" if self.split.code(item.video_id) else "train", ref.question, ref.answer,
                         ground_truth_json(ref), fps, reason is None, reason, item.video_id, rec))
            lists.append(frames)
        frames = self._absolute(lists, any(item.rc_frame is not None for item, _, _ in part))
        if self.cfg.check_frames and rows:
            lists = frames.to_pylist()
            problems = self.checker.problems(p for paths in lists for p in paths)
            if problems:
                keep = []
                for k, (row, paths) in enumerate(zip(rows, lists, strict=True)):
                    lost = [p for p in paths if p in problems]
                    if lost:
                        error = RecordError(row[0], "video", f"{len(lost)} frame file(s) {problems[lost[0]]}, "
                                            f"first: {lost[0]}", self.where)
                        stats.invalid.append(invalid_entry(error, row[-1]))
                    else:
                        keep.append(k)
                rows, lists = [rows[k] for k in keep], [lists[k] for k in keep]
                frames = frames.take(pa.array(keep, pa.int64()))
        if not rows:
            return None
        buffer = RowBuffer.from_rows([row[:-1] for row in rows])
        stats.add(buffer, self._tokens(buffer, lists))
        stats.rejected += [{"index": buffer.index[i], "id": buffer.id[i], "qa_type": buffer.qa_type[i], "reason": why}
                           for i, why in enumerate(buffer.rejection) if why is not None]
        return to_table(buffer, frames, self.spec)

    def _absolute(self, lists: list[list[str]], region: bool) -> pa.ListArray:
        """list<string> of the frame paths joined to the data root (drawn frames are absolute already)."""
        offsets = pa.array(list(accumulate(map(len, lists), initial=0)), pa.int32())
        flat = pa.array(list(chain.from_iterable(lists)), pa.string())
        joined = pc.binary_join_element_wise(self.prefix, flat, "")
        if region:
            joined = pc.if_else(pc.starts_with(flat, "/"), flat, joined)
        return pa.ListArray.from_arrays(offsets, joined)

    def _tokens(self, rows: RowBuffer, lists: list[list[str]]) -> list[int]:
        """Estimated prompt length per row: visual tokens (VideoSpec, smart resize) + text tokens."""
        out = []
        for i, frames in enumerate(lists):
            size = self.checker.size(rows.video_id[i], frames[0]) if self.cfg.check_frames else None
            width, height = size or self.spec.frame_size
            key = (len(frames), width, height)
            if key not in self._visual:
                try:
                    self._visual[key] = self.spec.visual_tokens(len(frames), height, width)
                except ValueError:  # qwen-vl-utils refuses aspect ratios above 200: estimate at the default size
                    self._visual[key] = self.spec.visual_tokens(len(frames))
            out.append(self._visual[key] + text_tokens(rows.question[i]))
        return out
