"""One chunk of raw JSON records in (in a pool worker or in-process), the rows of each split as one
Arrow table and the chunk's statistics out; invalid records are listed in `Stats.invalid`. Inside a
chunk, region-caption rows follow the other rows of their split (the order the converter always had)."""

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

from data_preprocess.manifest import Stats, text_tokens
from data_preprocess.rc_overlay import overlay_frame
from data_preprocess.rows import Rows, ground_truth_json, to_table
from data_preprocess.schema import DECODER, RECORD_DECODER, Checked, check_record, invalid_entry
from data_preprocess.splits import VideoSplit
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError
from reward_fns.tasks.nap import resolve_nap_classes

if TYPE_CHECKING:
    from data_preprocess.convert import ConvertConfig

Item = tuple[Checked, str | None, Any, list[str], float]  # record, why not in RL (or None), JSON, frames, fps
_select, _visual_tokens = cache(VideoSpec.select), cache(VideoSpec.visual_tokens)  # few distinct arguments


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


def decode_records(raws: list[msgspec.Raw], indices: list[int], where: str) -> list[Any]:
    """The chunk's records in one msgspec call (faster), else one by one, a bad one as its RecordError."""
    try:
        return DECODER.decode(b"[" + b",".join(raws) + b"]")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return [_decode_one(raw, i, where) for i, raw in zip(indices, raws, strict=True)]


def _decode_one(raw: msgspec.Raw, index: int, where: str) -> Any:
    try:
        return RECORD_DECODER.decode(raw)
    except UnicodeDecodeError as exc:
        return RecordError(index, "record", f"not valid UTF-8 (byte {exc.start} of the record)", where)
    except msgspec.DecodeError as exc:
        return RecordError(index, "record", f"cannot be decoded: {exc}", where)


class BatchConverter:
    """Converts the chunks of one run (its settings, a frame-size cache per video)."""

    def __init__(self, cfg: ConvertConfig):
        self.cfg, self.spec, self.where = cfg, cfg.video_spec, os.fspath(cfg.input)
        self.prefix = os.path.abspath(cfg.data_root).rstrip(os.sep) + os.sep
        self.rc_cache = os.path.join(cfg.out_dir, "rc_frames")
        self.split = VideoSplit(cfg.val_fraction, cfg.seed)
        self._sizes: dict[str, tuple[int, int] | None] = {}

    def convert(self, job: Job) -> ChunkResult:
        result = ChunkResult(Stats(self.cfg.max_prompt_tokens), {}, set())
        parts: dict[int, list[Item]] = {}  # split code -> items
        for index, rec in zip(job.indices, decode_records(job.records, job.indices, self.where), strict=True):
            try:
                if isinstance(rec, RecordError):
                    raise rec
                checked = check_record(rec, index, self.where, lambda source, question: resolve_nap_classes(
                    source, question, job.nap_answers.get(source, ())))
                try:
                    reason = checked.task.reward_rejection(checked.ref)
                except Exception as exc:  # the task code could not read this ground truth
                    raise RecordError(index, "struc_info", f"ground truth unusable by task {checked.task.name}: "
                                      f"{exc!r}", self.where) from None
                if code := self.split.code(checked.video_id):
                    result.val_videos.add(checked.video_id)  # also when its frames fail below, as always
                frames, fps = self._frames(checked, result.stats)
            except RecordError as error:
                result.stats.invalid.append(invalid_entry(error, rec))
                continue
            parts.setdefault(code, []).append((checked, reason, rec, frames, fps))
        for code, split in enumerate(("train", "val")):
            part = sorted(parts.get(code, []), key=lambda item: item[0].rc_frame is not None)  # region captions last
            if (table := self._table(part, split, result.stats)) is not None:
                result.tables[split] = table
        return result

    def _frames(self, item: Checked, stats: Stats) -> tuple[list[str], float]:
        """The frames fed to the model (relative; the start frame with its box drawn: absolute), their fps."""
        must = item.frames.index(item.rc_frame) if item.rc_frame is not None else None
        positions, fps, pos = _select(self.spec, len(item.frames), item.ref.fps, must)
        chosen = [item.frames[i] for i in positions] if positions is not None else list(item.frames)
        if item.rc_frame is not None and pos is not None:
            try:
                chosen[pos], clipped = overlay_frame(self.prefix + item.rc_frame, item.rc_box, self.rc_cache)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                field_name = "RC_info.start_frame_bbox" if "lies outside" in str(exc) else "RC_info.start_frame"
                raise RecordError(item.index, field_name, f"cannot draw the region box: {exc}", self.where) from None
            if clipped != item.rc_box:
                stats.clipped.append({"index": item.index, "id": item.id, "field": "RC_info.start_frame_bbox",
                                      "box": list(item.rc_box), "clipped_to": list(clipped)})
        return chosen, fps

    def _table(self, chosen: list[Item], split: str, stats: Stats) -> pa.Table | None:
        if self.cfg.check_frames:
            chosen = self._files_exist(chosen, stats)
        if not chosen:
            return None
        rows = Rows(*map(list, zip(*((item.index, item.id, item.ref.qa_type, item.ref.data_source, item.task.name,
                                      item.ref.fps, split, item.ref.question, item.ref.answer,
                                      ground_truth_json(item.ref), fps, reason is None, reason, item.video_id)
                                     for item, reason, _, _, fps in chosen), strict=True)))
        lists = [frames for *_, frames, _ in chosen]
        stats.add(rows, self._tokens(rows, lists))
        stats.rejected += [{"index": i, "id": d, "qa_type": q, "reason": r}
                           for i, d, q, r in zip(rows.index, rows.id, rows.qa_type, rows.rejection, strict=True)
                           if r is not None]
        return to_table(rows, self._absolute(lists), self.spec)

    def _absolute(self, lists: list[list[str]]) -> pa.ListArray:
        """list<string> of the frame paths joined to the data root (drawn frames are absolute already)."""
        flat = pa.array(list(chain.from_iterable(lists)), pa.string())
        joined = pc.if_else(pc.starts_with(flat, "/"), flat, pc.binary_join_element_wise(self.prefix, flat, ""))
        return pa.ListArray.from_arrays(pa.array(list(accumulate(map(len, lists), initial=0)), pa.int32()), joined)

    def _files_exist(self, chosen: list[Item], stats: Stats) -> list[Item]:
        """The rows whose frames are all regular files; the others are listed as invalid."""
        paths = list({path for *_, frames, _ in chosen for path in frames})
        with ThreadPoolExecutor(self.cfg.io_workers) as threads:  # os.stat waits on network file systems
            batches = threads.map(lambda part: [self._not_a_file(p) for p in part],
                                  [paths[k:k + 512] for k in range(0, len(paths), 512)])
            problems = {p: why for p, why in zip(paths, chain.from_iterable(batches), strict=True) if why}
        kept = []
        for row in chosen:
            item, _, rec, frames, _ = row
            if lost := [p for p in frames if p in problems]:
                error = RecordError(item.index, "video", f"{len(lost)} frame file(s) {problems[lost[0]]}, first: "
                                    f"{os.path.join(self.prefix, lost[0])}", self.where)
                stats.invalid.append(invalid_entry(error, rec))
            else:
                kept.append(row)
        return kept

    def _not_a_file(self, path: str) -> str | None:
        try:
            return None if stat.S_ISREG(os.stat(os.path.join(self.prefix, path)).st_mode) else "not a file"
        except OSError:
            return "not found"

    def _tokens(self, rows: Rows, lists: list[list[str]]) -> list[int]:
        """Estimated prompt length per row: visual tokens (VideoSpec, smart resize) + text tokens."""
        out = []
        for video_id, question, frames in zip(rows.video_id, rows.question, lists, strict=True):
            if self.cfg.check_frames and video_id not in self._sizes:  # one frame's header per video
                try:
                    with Image.open(os.path.join(self.prefix, frames[0])) as image:
                        self._sizes[video_id] = image.size
                except (OSError, ValueError):
                    self._sizes[video_id] = None
            width, height = self._sizes.get(video_id) or self.spec.frame_size
            out.append(_visual_tokens(self.spec, len(frames), height, width) + text_tokens(question))
        return out
