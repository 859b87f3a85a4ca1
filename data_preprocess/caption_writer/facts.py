"""Read and check caption-facts records (the builder's `--captions facts` output).

A facts record is a MedVidBench record whose `qa_type` is a bare caption-task stem, whose gpt turn and
caption fields are empty, and which carries a top-level `caption_facts` block (see docs/captions.md).
Every problem is a `FactsError` naming the file, the record index and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_preprocess.builder.canonical import Segment
from reward_fns.registry import caption_task_names, get_task

TASK_STEMS: dict[str, str] = {name.lower(): get_task(name).stem for name in caption_task_names()}  # dvc, vs, rc
SEGMENT_KINDS = frozenset({"phase", "action", "gesture", "motion"})
DETAIL_LIST_KEYS = ("instruments", "verbs", "targets", "triplets", "anatomy")


class FactsError(ValueError):
    """An invalid facts record: the message names file, record index and field."""


@dataclass(frozen=True)
class Region:
    """The boxed object of a region-caption item (pixel xyxy on the RC start frame)."""

    object: str
    bbox: tuple[float, float, float, float]
    time: float
    image_size: tuple[int, int] | None = None
    frame: str | None = None


@dataclass(frozen=True)
class CaptionFacts:
    """The structured facts of one caption item."""

    task: str
    source: str
    procedure: str
    clip_start: float
    clip_end: float
    fps: float
    segments: tuple[Segment, ...] = ()  # clip-relative seconds, details = the facts the annotations support
    region: Region | None = None
    keyframes: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        return TASK_STEMS[self.task]


@dataclass(frozen=True)
class FactsItem:
    """A facts record with its parsed facts, question and a digest identifying its content."""

    index: int
    record: Mapping[str, Any]
    facts: CaptionFacts
    question: str
    digest: str


def load_input(path: str | Path) -> tuple[list[Any], list[FactsItem]]:
    """All records of the builder's output and the checked facts items among them (records with a
    `caption_facts` key). Other records pass through unchanged; a bare caption stem without facts is an
    error. The first problem raises `FactsError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FactsError(f"{path}: cannot read a JSON list: {exc}") from None
    if not isinstance(data, list):
        raise FactsError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    items = []
    for index, record in enumerate(data):
        if isinstance(record, Mapping) and "caption_facts" not in record:
            if record.get("qa_type") in TASK_STEMS.values():
                raise _Ctx(str(path), index).error("caption_facts", f"missing for a {record['qa_type']!r} record")
            continue
        items.append(parse_item(record, index, str(path)))
    return data, items


def load_items(path: str | Path) -> list[FactsItem]:
    """The facts items of a file in which every record must be one."""
    data, items = load_input(path)
    if len(items) != len(data):
        index = next(i for i, r in enumerate(data) if not isinstance(r, Mapping) or "caption_facts" not in r)
        raise _Ctx(str(path), index).error("caption_facts", "missing (this file must hold only facts records)")
    return items


def parse_item(record: Any, index: int, where: str = "<input>") -> FactsItem:
    """Check one facts record and return it parsed."""
    ctx = _Ctx(where, index)
    if not isinstance(record, Mapping):
        raise ctx.error("<record>", f"expected an object, got {type(record).__name__}")
    raw = record.get("caption_facts")
    if not isinstance(raw, Mapping):
        raise ctx.error("caption_facts", "missing or not an object (is this the builder's --captions facts output?)")
    facts = _facts(raw, ctx)
    qa_type = record.get("qa_type")
    if qa_type != facts.stem:
        raise ctx.error("qa_type", f"expected the bare stem {facts.stem!r} for task {facts.task!r}, got {qa_type!r}")
    if record.get("data_source") != facts.source:
        raise ctx.error("data_source", f"{record.get('data_source')!r} differs from caption_facts.source "
                                       f"{facts.source!r}")
    question = _question(record, ctx)
    if not isinstance(record.get("struc_info"), list):
        raise ctx.error("struc_info", "missing or not a list")
    if facts.task == "dvc":
        caption_slots(record["struc_info"], facts.segments, ctx)
    digest = canonical_hash({"facts": raw, "question": question})
    return FactsItem(index, record, facts, question, digest)


def canonical_hash(value: Any) -> str:
    """sha256 of the canonical JSON of `value` (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def caption_slots(struc_info: Sequence[Any], segments: Sequence[Segment], ctx: _Ctx | None = None
                  ) -> list[tuple[dict[str, Any], int]]:
    """Each struc_info span/segment dict that holds a caption, with the index of the facts segment it
    belongs to (matched by start, end and, in the `{action, spans}` layout, the label)."""
    ctx = ctx or _Ctx("<input>", -1)
    slots: list[tuple[dict[str, Any], int]] = []
    for entry, label in _caption_dicts(struc_info):
        match = next((i for i, seg in enumerate(segments)
                      if _close(seg.start, entry.get("start")) and _close(seg.end, entry.get("end"))
                      and (label is None or label == seg.label)), None)
        if match is None:
            raise ctx.error("struc_info", f"caption slot {entry.get('start')}-{entry.get('end')} "
                                          f"({label or 'no label'}) matches no caption_facts segment")
        slots.append((entry, match))
    if not slots:
        raise ctx.error("struc_info", "no caption slot ({start, end, caption}) for a dvc item")
    return slots


def _caption_dicts(struc_info: Sequence[Any]) -> list[tuple[dict[str, Any], str | None]]:
    found: list[tuple[dict[str, Any], str | None]] = []
    for item in struc_info:
        if isinstance(item, list):
            found.extend(_caption_dicts(item))
        elif isinstance(item, dict) and isinstance(item.get("spans"), list):
            label = item.get("action")
            found.extend((span, label if isinstance(label, str) else None)
                         for span in item["spans"] if isinstance(span, dict) and "caption" in span)
        elif isinstance(item, dict) and isinstance(item.get("dc_segments"), list):
            found.extend((seg, None) for seg in item["dc_segments"] if isinstance(seg, dict) and "caption" in seg)
        elif isinstance(item, dict) and "caption" in item:
            found.append((item, None))
    return found


def _close(a: float, b: Any) -> bool:
    return isinstance(b, (int, float)) and not isinstance(b, bool) and abs(float(b) - a) < 1e-6


@dataclass(frozen=True)
class _Ctx:
    where: str
    index: int

    def error(self, field_name: str, reason: str) -> FactsError:
        return FactsError(f"{self.where}: record {self.index}: field '{field_name}': {reason}")


def _question(record: Mapping[str, Any], ctx: _Ctx) -> str:
    turns = record.get("conversations")
    if not (isinstance(turns, list) and len(turns) >= 2 and all(isinstance(t, Mapping) for t in turns[:2])):
        raise ctx.error("conversations", "expected a human turn and a gpt turn")
    value = turns[0].get("value")
    if not isinstance(value, str) or not value.strip():
        raise ctx.error("conversations[0].value", "empty or not a string")
    if not isinstance(turns[1].get("value"), str):
        raise ctx.error("conversations[1].value", "not a string")
    return value.replace("<video>", "").strip()


def _facts(raw: Mapping[str, Any], ctx: _Ctx) -> CaptionFacts:
    task = raw.get("task")
    if task not in TASK_STEMS:
        raise ctx.error("caption_facts.task", f"expected one of {sorted(TASK_STEMS)}, got {task!r}")
    source = _text(raw, "source", ctx)
    procedure = raw.get("procedure") or ""
    if not isinstance(procedure, str):
        raise ctx.error("caption_facts.procedure", "not a string")
    clip = raw.get("clip")
    if not isinstance(clip, Mapping):
        raise ctx.error("caption_facts.clip", "missing or not an object {start, end, fps}")
    start, end = _num(clip, "start", ctx, "clip."), _num(clip, "end", ctx, "clip.")
    fps = _num(clip, "fps", ctx, "clip.")
    if end < start or fps <= 0:
        raise ctx.error("caption_facts.clip", f"needs start <= end and fps > 0, got {dict(clip)}")
    segments = tuple(_segment(s, i, ctx) for i, s in enumerate(_list(raw, "segments", ctx)))
    length = end - start + 1.0 / fps  # one frame of slack
    for i, seg in enumerate(segments):
        if seg.start < 0 or seg.end > length:
            raise ctx.error(f"caption_facts.segments[{i}]", f"{seg.start}-{seg.end} s lies outside the clip "
                                                           f"(0-{end - start:g} s, clip-relative)")
    if task in ("dvc", "vs") and not segments:
        raise ctx.error("caption_facts.segments", f"a {task} item needs at least one segment")
    region = _region(raw.get("region"), ctx) if task == "rc" else None
    keyframes = tuple(_list(raw, "keyframes", ctx))
    if not all(isinstance(k, str) for k in keyframes):
        raise ctx.error("caption_facts.keyframes", "every keyframe must be a path string")
    return CaptionFacts(task, source, procedure, start, end, fps, segments, region, keyframes)


def _segment(raw: Any, i: int, ctx: _Ctx) -> Segment:
    name = f"caption_facts.segments[{i}]"
    if not isinstance(raw, Mapping):
        raise ctx.error(name, "not an object")
    start, end = _num(raw, "start", ctx, f"segments[{i}]."), _num(raw, "end", ctx, f"segments[{i}].")
    if end < start:
        raise ctx.error(name, f"end {end} is before start {start}")
    label = _text(raw, "label", ctx, f"segments[{i}].")
    kind = raw.get("kind", "action")
    if kind not in SEGMENT_KINDS:
        raise ctx.error(f"{name}.kind", f"expected one of {sorted(SEGMENT_KINDS)}, got {kind!r}")
    details = raw.get("details") or {}
    if not isinstance(details, Mapping):
        raise ctx.error(f"{name}.details", "not an object")
    for key in DETAIL_LIST_KEYS:
        value = details.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ctx.error(f"{name}.details.{key}", "must be a list of strings")
    return Segment(label, start, end, kind, dict(details))


def _region(raw: Any, ctx: _Ctx) -> Region:
    if not isinstance(raw, Mapping):
        raise ctx.error("caption_facts.region", "an rc item needs a region object")
    bbox = raw.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)):
        raise ctx.error("caption_facts.region.bbox", f"expected [x1, y1, x2, y2] numbers, got {bbox!r}")
    size = raw.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(_finite(v) for v in size)):
        raise ctx.error("caption_facts.region.image_size", f"expected [width, height], got {size!r}")
    frame = raw.get("frame")
    if frame is not None and not isinstance(frame, str):
        raise ctx.error("caption_facts.region.frame", "not a path string")
    return Region(_text(raw, "object", ctx, "region."), tuple(float(v) for v in bbox),  # type: ignore[arg-type]
                  _num(raw, "time", ctx, "region.") if "time" in raw else 0.0,
                  (int(size[0]), int(size[1])) if size else None, frame)


def _list(raw: Mapping[str, Any], key: str, ctx: _Ctx) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ctx.error(f"caption_facts.{key}", "not a list")
    return value


def _text(raw: Mapping[str, Any], key: str, ctx: _Ctx, prefix: str = "") -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(f"caption_facts.{prefix}{key}", f"expected a non-empty string, got {value!r}")
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(raw: Mapping[str, Any], key: str, ctx: _Ctx, prefix: str = "") -> float:
    value = raw.get(key)
    if not _finite(value):
        raise ctx.error(f"caption_facts.{prefix}{key}", f"expected a finite number, got {value!r}")
    return float(value)
