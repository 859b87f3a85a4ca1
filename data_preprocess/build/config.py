"""Builder configuration: per (source, task) windowing settings, Standard caps, question banks.

The YAML (recipes/config/medvidbench_build.yaml) has `task_defaults` (task -> settings), `sources`
(source -> {licence, procedure, tasks: {task: settings overriding the defaults}}) and `questions`
(task -> {"default" | source: [paraphrases]}). Unknown keys stop with an error naming them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "recipes" / "config" / "medvidbench_build.yaml"
TASKS = ("TAG", "NAP", "DVC", "VS", "RC", "STG", "CVS", "SA")
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


def _lengths(value: Any) -> tuple[tuple[float, float], ...]:
    """`[[clip_len, stride], ...]` (a bare number L means [L, L])."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"lengths must be a list of [clip_len, stride] pairs, got {value!r}")
    pairs = [(v, v) if isinstance(v, int | float) else tuple(v) for v in value]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"lengths must be a list of [clip_len, stride] pairs, got {value!r}")
    return tuple((float(a), float(b)) for a, b in pairs)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


CONVERT = {"lengths": _lengths, "windowed": _flag}


def _settings(raw: Any, base: TaskSettings, where: str) -> TaskSettings:
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping of settings")
    unknown = set(raw) - _KNOWN
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
    try:
        out = replace(base, **{k: CONVERT.get(k, type(getattr(base, k)))(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _check(out, where)
    return out


def _check(s: TaskSettings, where: str) -> None:
    if s.fps not in FPS_CHOICES:
        raise ConfigError(f"{where}.fps: {s.fps} not one of {FPS_CHOICES}")
    for key, number in [("clip_len", s.clip_len), ("stride", s.stride),
                        *(("lengths", v) for pair in s.lengths for v in pair)]:
        value = number * s.fps
        if not (math.isfinite(number) and number > 0) or not math.isclose(value, round(value)):
            raise ConfigError(f"{where}.{key}: must be a positive multiple of 1/fps ({1 / s.fps} s)")
    if s.box_stride <= 0 or s.min_boxes < 1 or s.min_segments < 1 or s.cap < 0:
        raise ConfigError(f"{where}: box_stride > 0, min_boxes >= 1, min_segments >= 1, cap >= 0 required")


def load_config(path: str | Path | None = None) -> BuildConfig:
    """Read and check the builder YAML."""
    path = Path(path or DEFAULT_CONFIG)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    defaults = {}
    for task, raw in (data.get("task_defaults") or {}).items():
        if task not in TASKS:
            raise ConfigError(f"{path}: task_defaults.{task}: unknown task; known: {TASKS}")
        defaults[task] = _settings(raw, TaskSettings(), f"{path}: task_defaults.{task}")
    sources = {}
    for name, raw in (data.get("sources") or {}).items():
        raw = raw or {}
        tasks = {}
        for task, over in (raw.get("tasks") or {}).items():
            if task not in TASKS:
                raise ConfigError(f"{path}: sources.{name}.tasks.{task}: unknown task; known: {TASKS}")
            tasks[task] = _settings(over, defaults.get(task, TaskSettings()), f"{path}: sources.{name}.tasks.{task}")
        sources[name] = SourceConfig(name, str(raw.get("licence", "")), str(raw.get("procedure", "")), tasks)
    questions = {task: {src: tuple(str(q) for q in bank) for src, bank in (by_src or {}).items()}
                 for task, by_src in (data.get("questions") or {}).items()}
    for src in sources.values():
        for task in src.tasks:
            if not (questions.get(task, {}).get(src.name) or questions.get(task, {}).get("default")):
                raise ConfigError(f"{path}: questions.{task}: no bank for {src.name} and no default")
    return BuildConfig(str(path), int(data.get("seed", 0)), sources, questions)
