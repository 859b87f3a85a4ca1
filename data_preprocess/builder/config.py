"""Builder configuration: per (source, task) windowing settings, Standard caps, question banks.

The YAML (recipes/config/medvidbench_build.yaml) has `task_defaults` (task -> settings), `sources`
(source -> {licence, procedure, tasks: {task: settings overriding the defaults}}) and `questions`
(task -> {"default" | source: [paraphrases]}). Checked strictly: unknown keys, sources, tasks and enum
values, numbers that are negative, non-finite or out of range, and templates with anything but the task's
plain `{name}` placeholders stop with an error naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from data_preprocess.builder.canonical import SEGMENT_KINDS
from data_preprocess.builder.validate import (
    MAX_DURATION,
    integer_problem,
    number_problem,
    read_text,
    template_problem,
    text_problem,
)
from reward_fns.registry import SOURCES, TASK_NAMES

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "recipes" / "config" / "medvidbench_build.yaml"
FPS_CHOICES = (0.5, 1.0, 2.0)


class ConfigError(ValueError):
    """The builder config is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class TaskSettings:
    """How one task is generated for one source (seconds unless named otherwise)."""

    fps: float = 1.0  # sampling rate of the record's frames
    clip_len: float = 60.0  # window length (TAG, NAP, DVC, VS, STG, RC)
    stride: float = 30.0  # window step
    kind: str = "phase"  # segment vocabulary the task reads (TAG, NAP, DVC, VS)
    horizon: float = 5.0  # NAP: the next segment starts at most this long after the clip end
    min_span: float = 1.0  # TAG/DVC: shortest span kept
    min_segments: int = 2  # DVC/VS: fewest segments a clip must hold
    box_stride: float = 1.0  # STG: seconds between boxes of the answer
    min_boxes: int = 3  # STG: fewest boxes a clip must hold
    max_len: float = 0.0  # CVS/SA: longest clip (0 = no limit; longer spans are dropped with a reason)
    cap: int = 0  # Standard split: most records of this (source, task); 0 = none of it
    max_boxes: int = 0  # STG: longest run of boxes one record asks for (0 = the whole run)
    windowed: bool = False  # CVS/SA: windows of clip_len every stride inside each scored span (else the span)
    lengths: tuple[tuple[float, float], ...] = ()  # several [clip_len, stride] pairs (replace clip_len/stride)

    def scales(self) -> list[TaskSettings]:
        """One settings per clip length: `lengths` when given, else this one."""
        return [replace(self, clip_len=length, stride=step, lengths=()) for length, step in self.lengths] or [self]


@dataclass(frozen=True)
class SourceConfig:
    name: str
    licence: str = ""
    procedure: str = ""
    tasks: Mapping[str, TaskSettings] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildConfig:
    path: str
    seed: int
    sources: Mapping[str, SourceConfig]
    questions: Mapping[str, Mapping[str, tuple[str, ...]]]

    def bank(self, task: str, source: str) -> tuple[str, ...]:
        """The question paraphrases of a (task, source); the task's `default` bank otherwise."""
        by_source = self.questions.get(task, {})
        return by_source.get(source) or by_source.get("default") or ()


_KNOWN = {f.name for f in fields(TaskSettings)}
TOP_KEYS = ("seed", "task_defaults", "sources", "questions")
SOURCE_KEYS = ("licence", "procedure", "tasks")
# `persona` and `setting` open every question (phrasing.py).
COMMON_PLACEHOLDERS = ("procedure", "source", "duration", "persona", "setting")
# What each task's generator passes to its questions (besides the common ones).
_WORDS = ("classes", "unit", "units")  # the clip's class list and the segment vocabulary's name (generators/base.py)
TASK_PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "TAG": ("label", *_WORDS), "NAP": _WORDS, "DVC": _WORDS, "STG": ("object", "track", "first", "last", "stride"),
    "RC": ("object", "time", "end")}
MAX_LENGTHS = 32  # [clip_len, stride] pairs in one `lengths`
# Per setting: the check of its value (settings in seconds are bounded by the longest accepted video).
_RULES: Mapping[str, Callable[[object], str]] = {
    "fps": lambda v: number_problem(v, 0, 2, above=True) or ("" if v in FPS_CHOICES else f"{v} not one of "
                                                                                     f"{FPS_CHOICES}"),
    "clip_len": lambda v: number_problem(v, 0, MAX_DURATION, above=True),
    "stride": lambda v: number_problem(v, 0, MAX_DURATION, above=True),
    "kind": lambda v: "" if isinstance(v, str) and v in SEGMENT_KINDS else f"{v!r} not one of {SEGMENT_KINDS}",
    "horizon": lambda v: number_problem(v, 0, MAX_DURATION),
    "min_span": lambda v: number_problem(v, 0, MAX_DURATION),
    "min_segments": lambda v: integer_problem(v, 1, 10_000),
    "box_stride": lambda v: number_problem(v, 0.1, MAX_DURATION),
    "min_boxes": lambda v: integer_problem(v, 1, 10_000),
    "max_len": lambda v: number_problem(v, 0, MAX_DURATION),
    "cap": lambda v: integer_problem(v, 0, 10**9),
    "max_boxes": lambda v: integer_problem(v, 0, 10_000),
    "windowed": lambda v: "" if isinstance(v, bool) else f"must be true or false, got {v!r}",
    "lengths": lambda v: _lengths_problem(v),
}


def _mapping(raw: Any, where: str, what: str = "a mapping") -> Mapping[Any, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be {what}, got {type(raw).__name__}")
    return raw


def _lengths_problem(value: object) -> str:
    """`lengths`: a list of at most MAX_LENGTHS `[clip_len, stride]` pairs (a bare number L means [L, L]),
    each a number > 0 and <= MAX_DURATION."""
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list of [clip_len, stride] pairs, got {value!r}"[:200]
    if len(value) > MAX_LENGTHS:
        return f"holds {len(value)} pairs (at most {MAX_LENGTHS})"
    for i, item in enumerate(value):
        pair = item if isinstance(item, list) else [item]
        if not 1 <= len(pair) <= 2:
            return f"[{i}] must be a number or a [clip_len, stride] pair, got {item!r}"[:200]
        for v in pair:
            problem = number_problem(v, 0, MAX_DURATION, above=True)
            if problem:
                return f"[{i}] {problem}"
    return ""


def _lengths(value: list[Any]) -> tuple[tuple[float, float], ...]:
    """Checked `lengths` (see _lengths_problem) as (clip_len, stride) pairs."""
    pairs = [item if isinstance(item, list) else [item] for item in value]
    return tuple((float(p[0]), float(p[-1])) for p in pairs)


# How a checked value becomes the setting's type (the default: the field's type, e.g. float(3)).
CONVERT: Mapping[str, Callable[[Any], Any]] = {"lengths": _lengths, "windowed": bool}


def _settings(raw: Any, base: TaskSettings, where: str) -> TaskSettings:
    raw = _mapping(raw, where, "a mapping of settings")
    unknown = set(raw) - _KNOWN
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; known: {sorted(_KNOWN)}")
    for key, value in raw.items():
        problem = _RULES[key](value)
        if problem:
            raise ConfigError(f"{where}.{key}: {problem}")
    out = replace(base, **{k: CONVERT.get(k, type(getattr(base, k)))(v) for k, v in raw.items()})
    _check(out, where)
    return out


def _check(s: TaskSettings, where: str) -> None:
    for key, number in [("clip_len", s.clip_len), ("stride", s.stride),
                        *(("lengths", v) for pair in s.lengths for v in pair)]:
        value = number * s.fps
        if not (math.isfinite(number) and number > 0) or not math.isclose(value, round(value)):
            raise ConfigError(f"{where}.{key}: must be a positive multiple of 1/fps ({1 / s.fps} s)")


def _questions(raw: Any, path: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    """The question banks, each template checked (plain `{name}` placeholders the task provides only)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for task, by_src in _mapping(raw, f"{path}: questions").items():
        if task not in TASK_NAMES:
            raise ConfigError(f"{path}: questions.{task}: unknown task; known: {TASK_NAMES}")
        allowed = (*COMMON_PLACEHOLDERS, *TASK_PLACEHOLDERS.get(task, ()))
        out[task] = {}
        for src, bank in _mapping(by_src, f"{path}: questions.{task}").items():
            where = f"{path}: questions.{task}.{src}"
            if src != "default" and src not in SOURCES:
                raise ConfigError(f"{where}: unknown source; known: default, {', '.join(SOURCES)}")
            if not isinstance(bank, list) or not bank:
                raise ConfigError(f"{where}: must be a non-empty list of question templates")
            for i, template in enumerate(bank):
                problem = template_problem(template, allowed)
                if problem:
                    raise ConfigError(f"{where}[{i}]: {problem}")
            out[task][src] = tuple(bank)
    return out


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(read_text(path))
    except ValueError as exc:  # read_text's reasons
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to read") from None
    data = _mapping(data, str(path), f"a mapping with keys {list(TOP_KEYS)}")
    unknown = sorted(map(str, set(data) - set(TOP_KEYS)))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; known: {list(TOP_KEYS)}")
    return data


def load_config(path: str | Path | None = None) -> BuildConfig:
    """Read and check the builder YAML: unknown keys, values out of range and broken templates are errors."""
    path = Path(path or DEFAULT_CONFIG)
    data = _read(path)
    seed = data.get("seed", 0)
    problem = integer_problem(seed, -(2**63), 2**63 - 1)
    if problem:
        raise ConfigError(f"{path}: seed: {problem}")
    defaults = {}
    for task, raw in _mapping(data.get("task_defaults"), f"{path}: task_defaults").items():
        if task not in TASK_NAMES:
            raise ConfigError(f"{path}: task_defaults.{task}: unknown task; known: {TASK_NAMES}")
        defaults[task] = _settings(raw, TaskSettings(), f"{path}: task_defaults.{task}")
    sources = {}
    for name, raw in _mapping(data.get("sources"), f"{path}: sources").items():
        where = f"{path}: sources.{name}"
        if name not in SOURCES:
            raise ConfigError(f"{where}: unknown source; known: {', '.join(SOURCES)}")
        raw = _mapping(raw, where)
        unknown = sorted(map(str, set(raw) - set(SOURCE_KEYS)))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {list(SOURCE_KEYS)}")
        licence, procedure = raw.get("licence", ""), raw.get("procedure", "")
        if not isinstance(licence, str):
            raise ConfigError(f"{where}.licence: must be text")
        if procedure and (problem := text_problem(procedure)):
            raise ConfigError(f"{where}.procedure: {problem}")
        tasks = {}
        for task, over in _mapping(raw.get("tasks"), f"{where}.tasks").items():
            if task not in TASK_NAMES:
                raise ConfigError(f"{where}.tasks.{task}: unknown task; known: {TASK_NAMES}")
            tasks[task] = _settings(over, defaults.get(task, TaskSettings()), f"{where}.tasks.{task}")
        sources[name] = SourceConfig(name, licence, procedure, tasks)
    questions = _questions(data.get("questions"), path)
    for src in sources.values():
        for task in src.tasks:
            if not (questions.get(task, {}).get(src.name) or questions.get(task, {}).get("default")):
                raise ConfigError(f"{path}: questions.{task}: no bank for {src.name} and no default")
    return BuildConfig(str(path), int(seed), sources, questions)
