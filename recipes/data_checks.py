"""Dry-run checks that read the data rows: frames on disk, the split, Megatron's video timing.

- Frames: the parquet files store absolute frame paths. A seeded sample of FRAMES_PER_PAIR records
  of every (data_source, task) of each file is read and every frame path of those records is
  stat'ed; a missing one is an error naming the record and the path (verl would otherwise drop every
  such record at start-up and report it as "over the limit").
- Split (RL): `medgrpo.data_split` (standard by default) must be the split the data was prepared
  with (`manifest.json` split.mode): one epoch of Large at batch 32 is about 15.8k steps. A Large
  set of at most STANDARD_SIZE records is its own Standard subset (the toy set): accepted.
- Megatron video timing: verl 0.9.1's Megatron forward lets the model compute its M-RoPE position ids
  (mbridge's Qwen2.5-VL calls `get_rope_index` without `second_per_grid_ts`), so temporal positions
  assume 2 fps (1 s per temporal patch); clips at another fps train with wrong timing. Refused unless
  `medgrpo.megatron.allow_wrong_video_timing=true`. Qwen3-VL has no bridge in mbridge: refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_preprocess.splits import STANDARD_SIZE
from recipes.check_report import Report, select

FRAMES_PER_PAIR = 4  # sampled records per (data_source, task) and file
SEED = 0
MEGATRON_FPS = 2.0  # the only fps at which verl 0.9.1's Megatron path gets Qwen2.5-VL timing right
FRAMES_HINT = ("the parquet holds absolute frame paths: put the frames back at that path (on every node of a "
               "multi-node run), or convert again with data_preprocess.medvidbench --data-root <their folder>")


@dataclass(frozen=True)
class SampledRecord:
    file: str
    index: int
    id: str
    source: str
    task: str
    videos: list[dict[str, Any]]

    def frames(self) -> list[str]:
        out: list[str] = []
        for item in self.videos:
            frames = item.get("video") if isinstance(item, dict) else None
            out.extend([frames] if isinstance(frames, str) else [str(f) for f in frames or []])
        return out

    def fps(self) -> list[float]:
        return [float(item["fps"]) for item in self.videos if isinstance(item, dict) and item.get("fps") is not None]

    def where(self) -> str:
        return f"record {self.index} ({self.source}/{self.task}, id {self.id}) of {self.file}"


def sample_records(path: str, video_key: str, per_pair: int = FRAMES_PER_PAIR, seed: int = SEED) -> list[SampledRecord]:
    """A seeded sample of `per_pair` rows of every (data_source, task) of `path`, with their videos."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from recipes.pair_sample import read_pairs, sample_rows

    pairs, index = read_pairs(path)
    rows = sample_rows(pairs, index, seed, per_pair=per_pair)
    table = ds.dataset(path, format="parquet").take(pa.array(rows, pa.int64()), columns=[video_key, "extra_info"])
    out = []
    for row, values in zip(rows, table.to_pylist(), strict=True):
        extra = values.get("extra_info") or {}
        out.append(SampledRecord(path, int(index[row]), str(extra.get("id")), *pairs[row],
                                 list(values.get(video_key) or [])))
    return out


def check_frames(records_by_file: dict[str, list[SampledRecord]], report: Report) -> None:
    """Every frame of the sampled records exists; one error per file naming a record and a path."""
    for path, records in records_by_file.items():
        missing = [(r, f) for r in records for f in r.frames() if not os.path.isfile(f)]
        lacking = {id(r) for r, _ in missing}
        if missing:
            record, frame = missing[0]
            report.errors.append(f"frames missing: {record.where()}: {frame} not found ({len(lacking)} of "
                                 f"{len(records)} sampled records lack frames; {FRAMES_HINT})")
        else:
            count = sum(len(r.frames()) for r in records)
            report.notes.append(f"frames: all {count} frames of {len(records)} sampled records found ({path})")


def check_split(cfg: Any, data_files: list[str], report: Report) -> None:
    """medgrpo.data_split against the split the data was prepared with (manifest.json)."""
    want = select(cfg, "medgrpo.data_split")
    if not isinstance(want, str) or not data_files:
        return
    manifest = Path(data_files[0]).parent / "manifest.json"
    try:
        info = json.loads(manifest.read_text())
        mode, records = info["split"]["mode"], (info.get("input") or {}).get("records")
    except (OSError, ValueError, KeyError, TypeError):
        report.notes.append(f"no split in {manifest}: medgrpo.data_split={want} not compared")
        return
    if (mode, want) == ("large", "standard") and isinstance(records, int) and records <= STANDARD_SIZE:
        report.notes.append(f"{manifest}: the Large split of {records} records is its own Standard subset")
        return
    if mode != want:
        report.errors.append(f"{manifest}: the data is the {mode!r} split but medgrpo.data_split is {want!r}: prepare "
                             f"RL data with data_preprocess.medvidbench --split {want} (its own RL_DATA_DIR), or set "
                             f"medgrpo.data_split={mode} to train on it (see the run plan's steps per epoch)")


def check_megatron(cfg: Any, records: list[SampledRecord], report: Report) -> None:
    """The Megatron engine's limits (module docstring): model family and video timing."""
    if select(cfg, "actor_rollout_ref.actor.strategy") != "megatron":
        return
    if select(cfg, "medgrpo.video.image_patch_size") != 14:
        report.errors.append("medgrpo_engine=megatron supports Qwen2.5-VL only here (the bridge installable from PyPI, "
                             "mbridge 0.15.1, has no Qwen3-VL); use qwen3vl_4b_medgrpo.sh (FSDP) for Qwen3-VL")
        return
    off = [r for r in records if any(abs(f - MEGATRON_FPS) > 1e-6 for f in r.fps())]
    if not off or select(cfg, "medgrpo.megatron.allow_wrong_video_timing") is True:
        return
    first = off[0]
    report.errors.append(
        f"medgrpo_engine=megatron: {len(off)} of {len(records)} sampled records are not at {MEGATRON_FPS:g} fps (e.g. "
        f"{first.where()} at {first.fps()[0]:g} fps). verl 0.9.1's Megatron forward computes Qwen2.5-VL position ids "
        f"without second_per_grid_ts (1 s per temporal patch), unlike rollout and SFT: use the FSDP recipe "
        f"(qwen25vl_7b_medgrpo.sh), prepare the data at medgrpo.video.fps=2, or accept it with "
        f"medgrpo.megatron.allow_wrong_video_timing=true (docs/recipes.md, Megatron)")


def check_records(cfg: Any, kind: str, data_files: list[str], report: Report) -> None:
    """Frames (every kind), split and Megatron limits (RL) from a sample of the data rows."""
    video_key = select(cfg, "data.video_key") or "videos"
    by_file: dict[str, list[SampledRecord]] = {}
    for path in data_files:
        try:
            by_file[path] = sample_records(path, video_key)
        except Exception as err:  # unreadable columns: check_data_files reports the file itself
            report.warnings.append(f"{path}: frames not checked ({type(err).__name__}: {err})")
    check_frames(by_file, report)
    if kind == "ppo":
        check_split(cfg, data_files, report)
        check_megatron(cfg, [r for records in by_file.values() for r in records], report)
