"""What a task generator returns, the generator registry, and the windowing helpers generators share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from data_preprocess.builder.canonical import Segment, Video
from data_preprocess.builder.config import TaskSettings
from reward_fns.registry import caption_task_names, get_task

EPS = 1e-6


@dataclass(frozen=True)
class Item:
    """One record's content before frames and metadata: task, clip bounds (video seconds), turns."""

    task: str
    start: float
    end: float
    question: str
    answer: str
    struc_info: list[Any]
    rc_box: tuple[int, int, int, int] | None = None
    facts: Mapping[str, Any] | None = None  # caption_facts (DVC / VS / RC), without frame paths

    @property
    def qa_type(self) -> str:
        """The task's qa_type stem (caption tasks get their `_<variant>` in the caption stage)."""
        return get_task(self.task).stem


@dataclass(frozen=True)
class Drop:
    """A clip left out, with the reason (counted in the manifest)."""

    task: str
    reason: str


class Context(Protocol):
    """What generators get besides the video and their settings."""

    procedure: str

    def ask(self, task: str, video: Video, start: float, **values: Any) -> str:
        """A question drawn (seeded) from the (task, source) paraphrase bank."""
        ...


Generator = Callable[[Video, TaskSettings, Context], Iterator[Item | Drop]]
GENERATORS: dict[str, Generator] = {}
CAPTION_TASKS = frozenset(caption_task_names())  # written only with `--captions facts`


def generator(task: str) -> Callable[[Generator], Generator]:
    """Register the generator of one task."""
    def register(fn: Generator) -> Generator:
        if task in GENERATORS:
            raise ValueError(f"generator for {task} registered twice")
        GENERATORS[task] = fn
        return fn
    return register


def snap_up(t: float, fps: float) -> float:
    """The first time on the fps grid at or after t."""
    return math.ceil(t * fps - EPS) / fps


def snap_down(t: float, fps: float) -> float:
    return math.floor(t * fps + EPS) / fps


def windows(duration: float, s: TaskSettings, offset: float = 0.0) -> Iterator[tuple[float, float]]:
    """Clip windows [start, end) of each clip length (`clip_len`, or every pair of `lengths`) every its stride,
    plus one ending at the video's end when the stride leaves a tail uncovered; a video shorter than a window
    is one clip. Each window once, shifted by `offset` (windows inside a span starting there)."""
    seen: set[tuple[float, float]] = set()
    for one in s.scales():
        for start, end in _windows(duration, one):
            key = (round(start + offset, 6), round(end + offset, 6))
            if key not in seen:
                seen.add(key)
                yield start + offset, end + offset


def _windows(duration: float, s: TaskSettings) -> Iterator[tuple[float, float]]:
    last = snap_down(duration, s.fps)
    if duration < s.clip_len:
        if last * s.fps >= 1:
            yield 0.0, last
        return
    start = end = 0.0
    while start + s.clip_len <= duration + EPS:
        end = start + s.clip_len
        yield start, end
        start += s.stride
    if end < last - EPS:
        yield last - s.clip_len, last


@dataclass(frozen=True)
class Span:
    """A segment clipped to a clip, in clip-relative seconds rounded to 0.1 s (the answer's precision)."""

    label: str
    start: float
    end: float
    source: Segment = field(compare=False)


def clip_spans(segments: Sequence[Segment], start: float, end: float, min_span: float) -> list[Span]:
    """Segments overlapping [start, end), clipped and rounded; shorter than `min_span` left out."""
    out = []
    for seg in segments:
        s, e = round(max(seg.start, start) - start, 1), round(min(seg.end, end) - start, 1)
        if e - s >= max(min_span, 0.1) - EPS:
            out.append(Span(seg.label, s, e, seg))
    return out


def merge_touching(spans: Sequence[Span]) -> list[Span]:
    """Spans of one label with overlapping or touching neighbours joined (time order)."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda sp: (sp.start, sp.end)):
        if out and span.start <= out[-1].end + EPS:
            last = out[-1]
            out[-1] = Span(last.label, last.start, max(last.end, span.end), last.source)
        else:
            out.append(span)
    return out


def facts_segments(spans: Sequence[Span]) -> list[dict[str, Any]]:
    """The `segments` list of caption_facts."""
    return [{"start": sp.start, "end": sp.end, "label": sp.label, "kind": sp.source.kind,
             **({"details": dict(sp.source.details)} if sp.source.details else {})} for sp in spans]


def base_facts(task: str, video: Video, ctx: Context, start: float, end: float, fps: float) -> dict[str, Any]:
    """The caption_facts fields every caption task has; `task` is written lower-case ('dvc', 'vs', 'rc')."""
    return {"task": task.lower(), "source": video.source, "procedure": video.procedure or ctx.procedure,
            "clip": {"start": start, "end": end, "fps": fps}}


UNITS = {"phase": ("phase", "phases"), "action": ("action", "actions"), "gesture": ("gesture", "gestures"),
         "motion": ("motion", "motions"), "step": ("step", "steps")}


def class_names(video: Video, kind: str) -> tuple[str, ...]:
    """The answer classes a question offers: the leaderboard's list of the source (NurViD: of the video's
    procedure) when it holds every label of the video's `kind` segments, else those labels, sorted."""
    from reward_fns.tasks import nap

    table = nap.class_table()
    if video.source == "NurViD":
        listed = tuple(table["NurViD_by_procedure"].get(video.procedure) or ())
    else:
        listed = tuple(table[video.source]) if video.source in nap.FIXED_LIST_SOURCES else ()
    own = sorted({s.label for s in video.segments if s.kind == kind})
    return listed if listed and set(own) <= set(listed) else tuple(own)


def vocabulary(video: Video, kind: str) -> dict[str, str]:
    """The question fields naming a task's classes: {classes} (comma list), {unit} and {units}."""
    unit, units = UNITS.get(kind, ("step", "steps"))
    return {"classes": ", ".join(class_names(video, kind)), "unit": unit, "units": units}


def seconds(t: float) -> str:
    """A time as questions write it: 8 -> '8', 7.5 -> '7.5'."""
    return f"{t:g}"
