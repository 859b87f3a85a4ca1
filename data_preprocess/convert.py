"""MedVidBench JSON -> verl RL and SFT parquet, streaming.

One pass for the Large set: the input is cut into batches of whole records, converted by worker
processes (`batch.BatchConverter`) and appended in input order to the four parquet files by a
background thread. Train/val is decided per video id (`splits.VideoSplit`), so no pre-pass is needed;
next-action records whose class list is built from their source's answers in the file (EgoSurgery)
are held back and converted last. The Standard split first reads a light index of the file
(`plan.index_pass`) to choose its records.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from data_preprocess.batch import BatchConverter, BatchResult
from data_preprocess.jsonstream import RecordStream
from data_preprocess.manifest import OUTPUTS, Stats, format_counts
from data_preprocess.parallel import BadCut, BatchMapper, tune_malloc
from data_preprocess.parquet_io import WriterSet, atomic_write_json
from data_preprocess.plan import Plan, index_pass, standard_plan
from data_preprocess.rows import RL_SCHEMA, SFT_SCHEMA, outputs
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError


@dataclass
class ConvertConfig:
    """Everything one conversion run depends on (the CLI flags)."""

    input: str
    data_root: str
    out_dir: str
    val_fraction: float = 0.05
    seed: int = 0
    split: str = "large"  # "large" (every record) or "standard" (task-balanced subset)
    standard_size: int = 51_505
    video_spec: VideoSpec = field(default_factory=VideoSpec)
    skip_invalid: bool = False
    check_frames: bool = True
    max_prompt_tokens: int | None = 4096
    io_workers: int = 16
    workers: int = 0  # processes; 0 = one per CPU for inputs of more than two blocks (1 = in-process)
    block_bytes: int = 8 << 20  # input bytes per batch (8 MB measured fastest: the batch stays in cache)

    def n_workers(self) -> int:
        if self.workers:
            return self.workers
        small = os.path.getsize(self.input) <= 2 * self.block_bytes
        return 1 if small else (os.cpu_count() or 1)


class Converter:
    """One run: `run()` writes the four parquet files and `manifest.json`, each atomically."""

    def __init__(self, config: ConvertConfig):
        self.cfg = config
        self.where = os.fspath(config.input)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        if os.path.getsize(cfg.input) > 2 * cfg.block_bytes:  # a big input: keep freed batch buffers
            tune_malloc()
        stream = RecordStream(cfg.input, cfg.block_bytes)
        plan = Plan()
        if cfg.split == "standard":
            plan = standard_plan(index_pass(stream, cfg.n_workers()), cfg.standard_size, cfg.seed)
        elif cfg.split != "large":
            raise ValueError(f"unknown split {cfg.split!r} (standard|large)")
        try:
            return self._convert(stream, plan, safe=False)
        except BadCut:  # a nested object that looks like a record start fooled the fast cut: check every cut
            return self._convert(stream, plan, safe=True)

    def _convert(self, stream: RecordStream, plan: Plan, safe: bool) -> dict[str, Any]:
        cfg, out = self.cfg, Path(self.cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stats = Stats(cfg.max_prompt_tokens)
        deferred: list[tuple[int, bytes]] = []
        answers: dict[str, set[str]] = {}
        val_videos: set[str] = set()
        schemas = {n: RL_SCHEMA if n.startswith("rl") else SFT_SCHEMA for n in OUTPUTS}
        with BatchMapper(cfg, plan, stream, safe) as batches:  # workers fork before any writer thread
            writers = WriterSet({n: out / f"{n}.parquet" for n in OUTPUTS}, schemas)
            try:
                for result in batches:
                    self._take(result, stats, writers)
                    deferred += result.deferred
                    val_videos |= result.val_videos
                    for source, found in result.answers.items():
                        answers.setdefault(source, set()).update(found)
                if deferred:  # next-action records whose classes are the file's answers
                    final = replace(plan, nap_answers={s: frozenset(a) for s, a in answers.items()})
                    batcher = BatchConverter(cfg, final)
                    deferred.sort()
                    data = b"[" + b",".join(raw for _, raw in deferred) + b"]"
                    result = batcher.convert(data, 0, indices=[i for i, _ in deferred])
                    batcher.close()
                    val_videos |= result.val_videos
                    self._take(result, stats, writers)
                written = writers.commit()
            except BaseException:
                writers.abort()
                raise
        stats.invalid.sort(key=lambda entry: entry["index"])
        stats.rejected.sort(key=lambda entry: entry["index"])
        manifest = stats.manifest(
            video_spec=cfg.video_spec.to_dict(), input_sha256=stream.sha256,
            input={"path": os.path.abspath(cfg.input), "records": batches.records,
                   "data_root": os.path.abspath(cfg.data_root)},
            split={"mode": cfg.split, "val_fraction": cfg.val_fraction, "seed": cfg.seed,
                   "val_videos": len(val_videos), "standard": plan.standard_table},
            frames_checked=cfg.check_frames, rows_written=written)
        atomic_write_json(out / "manifest.json", manifest)
        return manifest

    def _take(self, result: BatchResult, stats: Stats, writers: WriterSet) -> None:
        """Merge a batch's statistics and queue its tables; the first invalid record stops the run."""
        if not self.cfg.skip_invalid and result.stats.invalid:
            first = min(result.stats.invalid, key=lambda entry: entry["index"])
            raise RecordError(first["index"], first["field"], first["reason"], self.where)
        stats.merge(result.stats)
        if result.tables:
            writers.submit({name: t for split, table in result.tables.items()
                            for name, t in outputs(table, split).items()})


def summary(manifest: dict[str, Any]) -> str:
    """What the CLI prints at the end."""
    tok = manifest["prompt_tokens"]
    lines = [format_counts(manifest["counts"]), "", "prompt tokens (estimate)    p50     p95     max   >limit"]
    for task, s in tok["per_task"].items():
        lines.append(f"  {task:<24}{s['p50']:>6}{s['p95']:>8}{s['max']:>8}{s['over_limit']:>9}")
    if tok["over_limit_total"]:
        lines.append(f"WARNING: {tok['over_limit_total']} rows exceed --max-prompt-tokens "
                     f"{tok['max_prompt_tokens']} (video-token OOM risk); see manifest.json prompt_tokens")
    lines.append(f"rejected from RL: {len(manifest['rejected'])}; invalid records skipped: {len(manifest['invalid'])}")
    reasons = Counter(r["reason"].split(" (")[0] for r in manifest["rejected"])
    lines += [f"  {n:>7} x {reason}" for reason, n in reasons.most_common(5)]
    return "\n".join(lines)
