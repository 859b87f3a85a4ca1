"""Pass 1: a light index of the input (task, source, video per record) and the split plan made from it."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from data_preprocess.jsonstream import RecordStream, Span, read_span
from data_preprocess.splits import standard_subset
from reward_fns.registry import all_tasks


class IndexRecord(msgspec.Struct):
    """The few fields pass 1 reads (all optional: pass 2 reports what is missing)."""

    metadata: Any = None
    qa_type: Any = None
    data_source: Any = None
    conversations: msgspec.Raw = msgspec.Raw(b"")  # decoded only for next-action records


INDEX_DECODER = msgspec.json.Decoder(list[IndexRecord | bool | int | float | str | list | None])


@dataclass
class Index:
    """Per-record task name ('' when unknown), source and video id, plus next-action answers."""

    tasks: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    nap: list[tuple[int, str, str]] = field(default_factory=list)  # (index, source, answer)


@dataclass
class Plan:
    """Which records to convert: all (`selected` None) or a subset; the next-action answers per
    source when known in advance (else classes built from the answers are resolved at the end)."""

    selected: np.ndarray | None = None
    nap_answers: Mapping[str, frozenset[str]] | None = None
    standard_table: dict[str, dict[str, int]] | None = None


def _answer(raw: msgspec.Raw) -> str | None:
    try:
        conversations = msgspec.json.decode(raw) if len(raw) else None
    except msgspec.DecodeError:
        return None
    if isinstance(conversations, list):
        for turn in conversations:
            if isinstance(turn, dict) and turn.get("from") == "gpt" and isinstance(turn.get("value"), str):
                return turn["value"]
    return None


def _index_one(rec: Any, i: int, task_of: dict[str, str]) -> tuple[str, str, str]:
    """(task, source, video) of a record that may be malformed (pass 2 reports what is wrong)."""
    if not isinstance(rec, IndexRecord):
        return "", "", f"\0invalid-{i}"
    qa, source = rec.qa_type, rec.data_source
    meta = rec.metadata if isinstance(rec.metadata, dict) else {}
    video = meta.get("video_id")
    return (task_of.get(qa, "") if isinstance(qa, str) else "", source if isinstance(source, str) else "",
            str(video) if isinstance(video, str | int) else f"\0missing-{i}")


def _task_names() -> dict[str, str]:
    return {qa: task.name for task in all_tasks().values() for qa in task.qa_types}


def _index_batch(batch: list[Any], task_of: dict[str, str]) -> Index:
    """The index entries of one decoded batch (next-action indices relative to the batch)."""
    try:  # fast path: well-formed records, list comprehensions
        tasks = [task_of.get(r.qa_type, "") for r in batch]
        sources = [r.data_source for r in batch]
        videos = [r.metadata["video_id"] for r in batch]
        if not all(type(s) is str for s in sources) or not all(type(v) is str for v in videos):
            raise TypeError
    except (AttributeError, TypeError, KeyError):
        triples = [_index_one(r, k, task_of) for k, r in enumerate(batch)]
        tasks, sources, videos = (list(col) for col in zip(*triples, strict=True)) if triples else ([], [], [])
    nap = []
    for k in (k for k, task in enumerate(tasks) if task == "NAP"):
        answer = _answer(batch[k].conversations)
        if answer is not None:
            nap.append((k, sources[k], answer))
    return Index(tasks, sources, videos, nap)


_WORKER: dict[str, Any] = {}


def _init_worker(path: str) -> None:
    _WORKER.update(input=open(path, "rb"), task_of=_task_names())  # noqa: SIM115


def _index_span(span: Span) -> Index | None:
    """Worker: decode one unproven span (None if it is not a run of whole records)."""
    fh = _WORKER["input"]
    try:
        batch = INDEX_DECODER.decode(read_span(fh, span))
    except msgspec.DecodeError:
        return None
    return _index_batch(batch, _WORKER["task_of"])


class _Merger:
    """Appends batch indexes in input order, interning the repeated strings."""

    def __init__(self) -> None:
        self.index: Index = Index()
        self._intern: dict[str, str] = {}

    def add(self, part: Index) -> int:
        base, intern = len(self.index.tasks), self._intern
        self.index.tasks += part.tasks
        self.index.sources += [intern.setdefault(s, s) for s in part.sources]
        self.index.videos += [intern.setdefault(v, v) for v in part.videos]
        self.index.nap += [(base + k, source, answer) for k, source, answer in part.nap]
        return len(part.tasks)


def index_pass(stream: RecordStream, workers: int = 1) -> Index:
    """Read the file once and keep the light per-record index (the sha256 is computed on the side).

    With `workers > 1`, worker processes decode the spans found by `fast_spans`; if one of them is
    not a run of whole records, the file is read again the careful way.
    """
    if workers > 1:
        index = _parallel_index(stream, workers)
        if index is not None:
            return index
    stream.hash_async()
    task_of, merger = _task_names(), _Merger()
    for batch in stream.scan(INDEX_DECODER):
        merger.add(_index_batch(batch, task_of))
    return merger.index


def _parallel_index(stream: RecordStream, workers: int) -> Index | None:
    merger = _Merger()
    pending: deque[tuple[int, Any]] = deque()

    def drain(limit: int) -> bool:
        while len(pending) > limit:
            k, future = pending.popleft()
            part = future.get()
            if part is None:
                return False
            span = stream.spans[k]
            stream.spans[k] = Span(span.offset, span.length, merger.add(part))
        return True

    with multiprocessing.get_context("fork").Pool(workers, _init_worker, (stream.path,)) as pool:
        stream.hash_async()  # after the fork: no thread is running when the workers are created
        for k, span in enumerate(stream.fast_spans()):
            pending.append((k, pool.apply_async(_index_span, (span,))))
            if not drain(4 * workers):
                return None
        if not drain(0):
            return None
    return merger.index


def standard_plan(index: Index, size: int, seed: int) -> Plan:
    """The Standard subset of an indexed Large set, with the next-action answers of that subset."""
    selected, table = standard_subset(index.tasks, index.sources, size, seed)
    answers: dict[str, set[str]] = {}
    for i, source, answer in index.nap:
        if selected[i]:
            answers.setdefault(source, set()).add(answer)
    return Plan(selected, {s: frozenset(a) for s, a in answers.items()}, table)
