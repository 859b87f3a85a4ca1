"""MedVidBench JSON -> verl RL and SFT parquet. The input is read whole as raw records (`msgspec.Raw`); a
light index of each plans the run (Standard subset, next-action answers per source, duplicates, order).
Chunks go through a process pool (`imap`, a few in flight, `batch.py`); their rows are appended in order
to temp parquet files, which replace the outputs one by one, the manifest last (`outputs.py`)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from data_preprocess.batch import BatchConverter, ChunkResult, Job
from data_preprocess.manifest import OUTPUTS, Stats
from data_preprocess.outputs import OutputError, OutputWriter, prepare_out_dir
from data_preprocess.rows import RL_SCHEMA, SFT_SCHEMA, outputs
from data_preprocess.splits import STANDARD_SIZE, standard_subset
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError
from reward_fns.registry import all_tasks
from reward_fns.tasks.nap import resolve_nap_classes

MAX_LISTED = 1000  # duplicates listed in the manifest (all are counted)


class InputError(ValueError):
    """The input cannot be read as a JSON list of records; names the file (and the position)."""


@dataclass
class ConvertConfig:
    """Everything one conversion run depends on (the CLI flags)."""

    input: str
    data_root: str
    out_dir: str
    val_fraction: float = 0.05
    seed: int = 0
    split: str = "large"  # "large" (every record) or "standard" (task-balanced subset)
    standard_size: int = STANDARD_SIZE
    video_spec: VideoSpec = field(default_factory=VideoSpec)
    skip_invalid: bool = False
    check_frames: bool = True
    max_prompt_tokens: int | None = 4096
    io_workers: int = 16
    workers: int = 0  # processes; 0 = one per CPU for inputs over `chunk_bytes` (1 = in-process)
    chunk_bytes: int = 4 << 20  # input bytes per job
    allow_empty: bool = False  # may an input without valid records replace existing outputs?
    dedupe: bool = False  # drop records identical to an earlier one


class _Index(msgspec.Struct):
    qa_type: Any = None
    data_source: Any = None
    conversations: Any = None


_INDEX = msgspec.json.Decoder(_Index)


@dataclass
class Plan:
    """Records to convert in order (`deferred` after `order`) and the next-action answers per source."""

    order: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)  # next-action records whose classes are the answers
    nap_answers: dict[str, frozenset[str]] = field(default_factory=dict)
    standard_table: dict[str, dict[str, int]] | None = None
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (index, index of the first copy)


def read_records(path: str) -> tuple[bytes, list[msgspec.Raw]]:
    """The file's bytes and its records as raw JSON; InputError naming the file and what is wrong."""
    try:
        data = Path(path).read_bytes()
        return data, msgspec.json.decode(data, type=list[msgspec.Raw])
    except OSError as exc:
        raise InputError(f"{path}: cannot read the input ({exc.strerror or exc})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deep to decode (thousands of nested lists or objects)") from None
    except msgspec.ValidationError as exc:
        raise InputError(f"{path}: not a JSON list of records ({exc})") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def _index(raw: msgspec.Raw, task_of: dict[str, str]) -> tuple[str, str, str | None]:
    """(task, source, next-action answer) of a raw record; '' / None where unreadable (reported later)."""
    try:
        rec = _INDEX.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # not an object, or not UTF-8
        return "", "", None
    task = task_of.get(rec.qa_type, "") if isinstance(rec.qa_type, str) else ""
    turns = rec.conversations if task == "NAP" and isinstance(rec.conversations, list) else []
    answer = next((t.get("value") for t in turns if isinstance(t, dict) and t.get("from") == "gpt"), None)
    source = rec.data_source if isinstance(rec.data_source, str) else ""
    return task, source, answer if isinstance(answer, str) else None


def make_plan(raws: list[msgspec.Raw], split: str, standard_size: int, seed: int, dedupe: bool) -> Plan:
    """Index every record and decide what to convert, in which order."""
    task_of = {qa: task.name for task in all_tasks().values() for qa in task.qa_types}
    plan, first, answers = Plan(), {}, {}
    for i, raw in enumerate(raws):
        if (earlier := first.setdefault(hashlib.blake2b(raw, digest_size=16).digest(), i)) != i:
            plan.duplicates.append((i, earlier))
    tasks, sources, found = zip(*(_index(raw, task_of) for raw in raws), strict=True) if raws else ((), (), ())
    if split not in ("large", "standard"):
        raise ValueError(f"unknown split {split!r} (standard|large)")
    selected, plan.standard_table = standard_subset(tasks, sources, standard_size, seed) if split == "standard" \
        else (None, None)
    dropped = {i for i, _ in plan.duplicates} if dedupe else set()
    chosen = [i for i in range(len(raws)) if (selected is None or selected[i]) and i not in dropped]
    for i in (i for i in chosen if found[i] is not None):
        answers.setdefault(sources[i], set()).add(found[i])
    plan.nap_answers = {source: frozenset(a) for source, a in answers.items()}
    from_answers = {s for s in answers if s and not resolve_nap_classes(s, "", ())}  # classes = the answers
    for i in chosen:
        (plan.deferred if tasks[i] == "NAP" and sources[i] in from_answers else plan.order).append(i)
    return plan


def _jobs(raws: list[msgspec.Raw], plan: Plan, chunk_bytes: int, gate: threading.Semaphore) -> Iterator[Job]:
    """Chunks of about `chunk_bytes` in plan order (deferred records in chunks of their own); each
    waits on `gate`, so only a few are in flight."""
    for indices in (plan.order, plan.deferred):
        start, size = 0, 0
        for k, i in enumerate(indices):
            size += len(raws[i])
            if size >= chunk_bytes or k == len(indices) - 1:
                gate.acquire()
                batch, start, size = indices[start:k + 1], k + 1, 0
                yield Job(batch, [raws[j] for j in batch], plan.nap_answers)


_WORKER: list[BatchConverter] = []  # this process's converter (a pool worker's, or the parent's with 1 worker)


def _init_worker(cfg: ConvertConfig) -> None:
    _WORKER[:] = [BatchConverter(cfg)]


def _work(job: Job) -> ChunkResult:
    return _WORKER[0].convert(job)


def convert(cfg: ConvertConfig) -> dict[str, Any]:
    """One run: the four parquet files, then `manifest.json` (outputs.py); returns the manifest."""
    out = prepare_out_dir(cfg.out_dir)
    big = os.path.isfile(cfg.input) and os.path.getsize(cfg.input) > cfg.chunk_bytes
    workers = cfg.workers or ((os.cpu_count() or 1) if big else 1)
    gate = threading.Semaphore(2 * workers)
    # fork the pool before the input is read, so the workers do not share (and count) its pages
    pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (cfg,)) if workers > 1 else None
    if pool is None:
        _init_worker(cfg)
    try:
        return _run(cfg, out, pool.imap if pool else map, gate)
    finally:
        if pool is not None:
            gate.release(1 << 16)  # unblock imap's feeder thread so that terminate can join it
            pool.terminate()
            pool.join()


def _run(cfg: ConvertConfig, out: Path, imap: Any, gate: threading.Semaphore) -> dict[str, Any]:
    data, raws = read_records(cfg.input)
    plan = make_plan(raws, cfg.split, cfg.standard_size, cfg.seed, cfg.dedupe)
    stats, val_videos = Stats(cfg.max_prompt_tokens), set()
    writer = OutputWriter(out, {n: RL_SCHEMA if n.startswith("rl") else SFT_SCHEMA for n in OUTPUTS})
    try:
        for result in imap(_work, _jobs(raws, plan, cfg.chunk_bytes, gate)):
            gate.release()
            if not cfg.skip_invalid and result.stats.invalid:
                first = min(result.stats.invalid, key=lambda entry: entry["index"])
                raise RecordError(first["index"], first["field"], first["reason"], cfg.input)
            stats.merge(result.stats)
            val_videos |= result.val_videos
            for split, table in result.tables.items():
                writer.write(outputs(table, split))
        if not (sum(writer.rows.values()) or cfg.allow_empty) and any(
                (out / f"{name}.parquet").exists() for name in OUTPUTS):
            raise OutputError(f"{cfg.input}: no valid record to write; refusing to replace the outputs in "
                              f"{out} (pass --allow-empty to do so)")
        manifest = stats.manifest(
            video_spec=cfg.video_spec.to_dict(), input_sha256=hashlib.sha256(data).hexdigest(),
            input={"path": os.path.abspath(cfg.input), "records": len(raws),
                   "data_root": os.path.abspath(cfg.data_root)},
            split={"mode": cfg.split, "val_fraction": cfg.val_fraction, "seed": cfg.seed,
                   "val_videos": len(val_videos), "standard": plan.standard_table},
            duplicates={"count": len(plan.duplicates), "dropped": cfg.dedupe, "listed": [
                {"index": i, "duplicate_of": j} for i, j in plan.duplicates[:MAX_LISTED]]},
            frames_checked=cfg.check_frames, rows_written=dict(writer.rows))
        manifest = writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    return manifest
