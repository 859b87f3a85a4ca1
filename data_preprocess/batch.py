"""One chunk of raw JSON records in, the rows of each split as Arrow tables and the chunk's statistics
out (in a pool worker or in-process). Invalid records are listed in `Stats.invalid` (the caller stops
on the first one unless `--skip-invalid`). Inside a chunk, region-caption rows follow the other rows
of their split (the order the converter has always written)."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import accumulate, chain
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from data_preprocess.ground_truth import ground_truth_json
from data_preprocess.manifest import Stats, text_tokens
from data_preprocess.rc_overlay import overlay_frame
from data_preprocess.rows import Rows, to_table
from data_preprocess.schema import RECORD_DECODER, Checked, check_record, invalid_entry
from data_preprocess.splits import VideoSplit
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError
from reward_fns.tasks.nap import resolve_nap_classes

if TYPE_CHECKING:
    from data_preprocess.convert import ConvertConfig

DRAW_ERRORS = (OSError, ValueError, Image.DecompressionBombError)
Item = tuple[Checked, str | None, Any]  # a valid record, why it is kept out of RL (None: it is not), its JSON
_select = cache(VideoSpec.select)  # (spec, frame count, fps, region-caption frame) repeat a lot


class Job(NamedTuple):
    """Records to convert: their indices in the input, their raw JSON, the next-action answers."""

    indices: list[int]
    records: list[msgspec.Raw]
    nap_answers: dict[str, frozenset[str]]


class ChunkResult(NamedTuple):
    """`tables[split]` holds all RL and SFT columns of the chunk's rows plus `rl_ok`."""

    stats: Stats
    tables: dict[str, pa.Table]
    val_videos: set[str]


def decode_record(raw: msgspec.Raw, index: int, where: str) -> Any:
    """The record, or the RecordError saying why it does not decode (e.g. not UTF-8)."""
    try:
        return RECORD_DECODER.decode(raw)
    except UnicodeDecodeError as exc:
        return RecordError(index, "record", f"not valid UTF-8 (byte {exc.start} of the record)", where)
    except msgspec.DecodeError as exc:
        return RecordError(index, "record", f"cannot be decoded: {exc}", where)


def _not_a_file(path: str) -> str | None:
    try:
        return None if stat.S_ISREG(os.stat(path).st_mode) else "not a file"
    except OSError:
        return "not found"


@cache
def _visual_tokens(spec: VideoSpec, n_frames: int, height: int, width: int) -> int:
    try:
        return spec.visual_tokens(n_frames, height, width)
    except ValueError:  # qwen-vl-utils refuses aspect ratios above 200: estimate at the default size
        return spec.visual_tokens(n_frames)


class BatchConverter:
    """Converts chunks for one run (settings, frame-size cache, a thread pool for `os.stat`)."""

    def __init__(self, cfg: ConvertConfig):
        self.cfg, self.spec, self.where = cfg, cfg.video_spec, os.fspath(cfg.input)
        self.prefix = os.path.abspath(cfg.data_root).rstrip(os.sep) + os.sep
        self.rc_cache = os.path.join(cfg.out_dir, "rc_frames")
        self.split = VideoSplit(cfg.val_fraction, cfg.seed)
        self._stat = ThreadPoolExecutor(cfg.io_workers, thread_name_prefix="stat")
        self._sizes: dict[str, tuple[int, int] | None] = {}

    def close(self) -> None:
        self._stat.shutdown()

    def convert(self, job: Job) -> ChunkResult:
        result = ChunkResult(Stats(self.cfg.max_prompt_tokens), {}, set())
        parts: dict[tuple[int, bool], list[Item]] = {}
        for index, raw in zip(job.indices, job.records, strict=True):
            try:
                if isinstance(rec := decode_record(raw, index, self.where), RecordError):
                    raise rec
                checked = check_record(rec, index, self.where, lambda source, question: resolve_nap_classes(
                    source, question, job.nap_answers.get(source, ())))
                try:
                    reason = checked.task.reward_rejection(checked.ref)
                except Exception as exc:  # the task code could not read this ground truth
                    raise RecordError(index, "struc_info", f"ground truth unusable by task {checked.task.name}: "
                                      f"{exc!r}", self.where) from None
            except RecordError as error:
                result.stats.invalid.append(invalid_entry(error, rec))
                continue
            code = self.split.code(checked.video_id)
            if code:
                result.val_videos.add(checked.video_id)
            parts.setdefault((code, checked.rc_frame is not None), []).append((checked, reason, rec))
        for code, split in enumerate(("train", "val")):
            tables = [self._table(parts.get((code, rc), []), split, result.stats) for rc in (False, True)]
            if tables := [t for t in tables if t is not None]:
                result.tables[split] = pa.concat_tables(tables)
        return result

    def _frames(self, item: Checked, stats: Stats) -> tuple[list[str], float]:
        """The frames fed to the model (relative; the start frame with its box drawn: absolute), their fps."""
        must = item.frames.index(item.rc_frame) if item.rc_frame is not None else None
        positions, fps, pos = _select(self.spec, len(item.frames), item.ref.fps, must)
        chosen = [item.frames[i] for i in positions] if positions is not None else list(item.frames)
        if item.rc_frame is not None and pos is not None:
            try:
                chosen[pos], clipped = overlay_frame(self.prefix + item.rc_frame, item.rc_box, self.rc_cache)
            except DRAW_ERRORS as exc:
                field_name = "RC_info.start_frame_bbox" if "lies outside" in str(exc) else "RC_info.start_frame"
                raise RecordError(item.index, field_name, f"cannot draw the region box: {exc}", self.where) from None
            if clipped != item.rc_box:
                stats.clipped.append({"index": item.index, "id": item.id, "field": "RC_info.start_frame_bbox",
                                      "box": list(item.rc_box), "clipped_to": list(clipped)})
        return chosen, fps

    def _table(self, part: list[Item], split: str, stats: Stats) -> pa.Table | None:
        rows, lists, recs = [], [], []
        for item, reason, rec in part:
            try:
                frames, fps = self._frames(item, stats)
            except RecordError as error:
                stats.invalid.append(invalid_entry(error, rec))
                continue
            ref = item.ref
            rows.append((item.index, item.id, ref.qa_type, ref.data_source, item.task.name, ref.fps, split,
                         ref.question, ref.answer, ground_truth_json(ref), fps, reason is None, reason, item.video_id))
            lists.append(frames)
            recs.append(rec)
        frames = self._absolute(lists)
        if self.cfg.check_frames and rows:
            lists = frames.to_pylist()
            keep = self._files_exist(lists, [row[0] for row in rows], recs, stats)
            if len(keep) < len(rows):
                rows, lists, frames = [rows[k] for k in keep], [lists[k] for k in keep], frames.take(keep)
        if not rows:
            return None
        columns = Rows(*map(list, zip(*rows, strict=True)))
        stats.add(columns, self._tokens(columns, lists))
        stats.rejected += [{"index": row[0], "id": row[1], "qa_type": row[2], "reason": row[12]}
                           for row in rows if row[12] is not None]
        return to_table(columns, frames, self.spec)

    def _absolute(self, lists: list[list[str]]) -> pa.ListArray:
        """list<string> of the frame paths joined to the data root (drawn frames are absolute already)."""
        flat = pa.array(list(chain.from_iterable(lists)), pa.string())
        joined = pc.if_else(pc.starts_with(flat, "/"), flat, pc.binary_join_element_wise(self.prefix, flat, ""))
        return pa.ListArray.from_arrays(pa.array(list(accumulate(map(len, lists), initial=0)), pa.int32()), joined)

    def _files_exist(self, lists: list[list[str]], indices: list[int], recs: list[Any], stats: Stats) -> list[int]:
        """Positions of the rows whose frames are all regular files; the others are listed as invalid."""
        paths = list(set(chain.from_iterable(lists)))
        problems = {p: why for p, why in zip(paths, self._stat.map(_not_a_file, paths, chunksize=256), strict=True)
                    if why}
        keep = []
        for k, listed in enumerate(lists):
            if lost := [p for p in listed if p in problems]:
                error = RecordError(indices[k], "video", f"{len(lost)} frame file(s) {problems[lost[0]]}, first: "
                                    f"{lost[0]}", self.where)
                stats.invalid.append(invalid_entry(error, recs[k]))
            else:
                keep.append(k)
        return keep

    def _tokens(self, rows: Rows, lists: list[list[str]]) -> list[int]:
        """Estimated prompt length per row: visual tokens (VideoSpec, smart resize) + text tokens."""
        out = []
        for video_id, question, frames in zip(rows.video_id, rows.question, lists, strict=True):
            if self.cfg.check_frames and video_id not in self._sizes:  # one frame's header per video
                try:
                    with Image.open(frames[0]) as image:
                        self._sizes[video_id] = image.size
                except (OSError, ValueError):
                    self._sizes[video_id] = None
            width, height = self._sizes.get(video_id) or self.spec.frame_size
            out.append(_visual_tokens(self.spec, len(frames), height, width) + text_tokens(question))
        return out
