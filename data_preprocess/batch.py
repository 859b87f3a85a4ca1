"""Pass 2 for one batch of records: JSON bytes in, the four parquet tables and the batch statistics out.

Invalid records never raise here: they are listed in the batch's `Stats.invalid` (the caller stops the
run on the first one unless `--skip-invalid`), so the same code runs in-process or in worker processes.
Rows are gathered per split from the start, so no table is filtered (copied) afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from data_preprocess.batch_media import Media
from data_preprocess.ground_truth import ground_truth_json, rl_rejection
from data_preprocess.manifest import Stats
from data_preprocess.plan import Plan
from data_preprocess.rows import RowBuffer, to_table
from data_preprocess.schema import DECODER, Checked, check_record, invalid_entry
from data_preprocess.splits import VideoSplit
from reward_fns.reference import RecordError

if TYPE_CHECKING:
    from data_preprocess.convert import ConvertConfig

SPLIT_NAMES = ("train", "val")


@dataclass
class _Part:
    """The rows of one split within a batch (region-caption rows apart), with their raw frame lists."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)  # RowBuffer fields, one tuple per row
    raws: list[Any] = field(default_factory=list)
    recs: list[Any] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one batch gives back (picklable, except `tables`, which workers spill to files).

    `deferred` holds records whose next-action classes come from every answer of their source in
    the file (EgoSurgery): they are converted last, once `answers` of all batches are known.
    `tables` maps a split to all columns of its rows (`rows.outputs` makes the RL and SFT tables).
    `ok` is False when the batch did not hold the expected number of records (a bad cut).
    """

    count: int = 0
    ok: bool = True
    tables: dict[str, pa.Table] = field(default_factory=dict)
    stats: Stats | None = None
    deferred: list[tuple[int, bytes]] = field(default_factory=list)
    answers: dict[str, set[str]] = field(default_factory=dict)
    val_videos: set[str] = field(default_factory=set)


    def shift(self, offset: int) -> None:
        """Renumber records converted with `start=0` once the batch's first record number is known."""
        if not offset:
            return
        for name, table in self.tables.items():
            extra = table.column("extra_info").combine_chunks()
            fields = extra.flatten()
            k = extra.type.get_field_index("index")
            fields[k] = pc.add(fields[k], offset)
            column = pa.StructArray.from_arrays(fields, fields=list(extra.type))
            self.tables[name] = table.set_column(table.schema.get_field_index("extra_info"), "extra_info", column)
        for entry in (*self.stats.invalid, *self.stats.rejected, *self.stats.over_listed):
            entry["index"] += offset
        self.deferred = [(i + offset, raw) for i, raw in self.deferred]


class BatchConverter:
    """Converts batches for one run (holds the plan, caches, and the I/O thread pools)."""

    def __init__(self, cfg: ConvertConfig, plan: Plan):
        self.cfg, self.plan, self.spec = cfg, plan, cfg.video_spec
        self.where = os.fspath(cfg.input)
        self.split = VideoSplit(cfg.val_fraction, cfg.seed)
        self.media = Media(self.spec, cfg.data_root, Path(cfg.out_dir, "rc_frames"), cfg.check_frames, self.where,
                           cfg.io_workers)
        self._nap: dict[tuple[str, str], Any] = {}
        self._dependent: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        self.media.close()

    def _nap_classes(self, source: str, question: str) -> Any:
        key = (source, question)
        if key not in self._nap:
            from reward_fns.tasks.nap import resolve_nap_classes

            answers = self.plan.nap_answers or {}
            self._nap[key] = resolve_nap_classes(source, question, answers.get(source, ()))
        return self._nap[key]

    def _answer_dependent(self, source: str, question: str) -> bool:
        """Does this record's class list come from the file's answers (probe with a fake answer)?"""
        key = (source, question)
        if key not in self._dependent:
            from reward_fns.tasks.nap import resolve_nap_classes

            probe = "\0medgrpo-probe"
            self._dependent[key] = probe in (resolve_nap_classes(source, question, (probe,)) or ())
        return self._dependent[key]

    def _rl_rejection(self, checked: Checked) -> str | None:
        try:
            return rl_rejection(checked.task, checked.ref)
        except Exception as exc:  # the task code could not read this ground truth
            raise RecordError(checked.index, "struc_info", f"ground truth unusable by task {checked.task.name}: "
                              f"{exc!r}", self.where) from None

    def convert(self, data: bytes, start: int, expected: int | None = None, indices: list[int] | None = None
                ) -> BatchResult:
        """Convert a JSON list of records numbered from `start` (or by `indices`); `expected`: the
        record count the batch must hold (None or -1: unknown)."""
        result = BatchResult(stats=Stats(self.cfg.max_prompt_tokens))
        try:
            records = DECODER.decode(data)
        except msgspec.DecodeError:  # only an unproven cut can get here (see jsonstream.fast_spans)
            result.ok = False
            return result
        result.count = len(records)
        if expected is not None and expected >= 0 and len(records) != expected:
            result.ok = False
            return result
        stats, selected = result.stats, self.plan.selected
        parts = {(code, rc): _Part() for code in (0, 1) for rc in (False, True)}
        for offset, rec in enumerate(records):
            index = indices[offset] if indices is not None else start + offset
            if selected is not None and not selected[index]:
                continue
            try:
                checked = check_record(rec, index, self.where, self._nap_classes)
                ref = checked.ref
                if (self.plan.nap_answers is None and checked.task.name == "NAP"
                        and self._answer_dependent(ref.data_source, ref.question)):
                    result.answers.setdefault(ref.data_source, set()).add(ref.answer)
                    result.deferred.append((index, msgspec.json.encode(rec)))
                    continue
                reason = self._rl_rejection(checked)
            except RecordError as error:
                stats.invalid.append(invalid_entry(error, rec))
                continue
            code = self.split.code(checked.video_id)
            if code:
                result.val_videos.add(checked.video_id)
            part = parts[(code, checked.rc_frame is not None)]
            part.checked.append(checked)
            part.rows.append((index, checked.id, ref.qa_type, ref.data_source, checked.task.name, ref.fps,
                              SPLIT_NAMES[code], ref.question, ref.answer, ground_truth_json(ref), ref.fps,
                              reason is None, reason, checked.video_id))
            part.raws.append(rec.video)
            part.recs.append(rec)
        for code, split in enumerate(SPLIT_NAMES):
            tables = [t for rc in (False, True) if (t := self._finish(parts[(code, rc)], rc, stats)) is not None]
            if tables:
                result.tables[split] = pa.concat_tables(tables)
        return result

    def _finish(self, part: _Part, region: bool, stats: Stats) -> pa.Table | None:
        if not part.rows:
            return None
        rows = RowBuffer.from_rows(part.rows)
        if region:
            frames, bad = self.media.region(rows, part.raws, part.checked)
        else:
            frames, bad = self.media.plain(rows, part.raws)
        if bad:
            stats.invalid += [invalid_entry(error, part.recs[row]) for row, error in sorted(bad.items())]
            keep = [i for i in range(len(rows)) if i not in bad]
            rows, frames = rows.subset(keep), frames.take(pa.array(keep, pa.int64()))
            if not len(rows):
                return None
        stats.add(rows, self.media.tokens(rows, frames))
        stats.rejected += [{"index": rows.index[i], "id": rows.id[i], "qa_type": rows.qa_type[i], "reason": why}
                           for i, why in enumerate(rows.rejection) if why is not None]
        return to_table(rows, frames, self.spec)
