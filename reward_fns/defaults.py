"""The `medgrpo.reward` settings' defaults, read from reward_fns/medgrpo_reward.yaml, the one place they
are written (the GRPO recipe composes the same file into its config), and the type check of the config
dataclasses built from them, read off their annotations."""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_FILE = Path(__file__).with_name("medgrpo_reward.yaml")


@functools.cache
def _load() -> dict[str, Any]:
    return yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))


def reward_defaults(section: str | None = None) -> dict[str, Any]:
    """A fresh copy of the defaults, or of one section's (tasks, normalization, judge, similarity)."""
    data = _load()
    return copy.deepcopy(data if section is None else data[section])


def _kinds(hint: Any) -> tuple[type, ...] | None:
    """The types a scalar annotation allows (a float field takes an int too); None: not a scalar."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    kinds: list[type] = []
    for arg in typing.get_args(hint) if union else (hint,):
        if arg in (bool, int, str, type(None)):
            kinds.append(arg)
        elif arg is float:
            kinds += [int, float]
        else:
            return None
    return tuple(kinds)


@functools.cache
def _field_kinds(cls: type) -> dict[str, tuple[type, ...]]:
    hints = typing.get_type_hints(cls)
    return {f.name: kinds for f in dataclasses.fields(cls) if (kinds := _kinds(hints[f.name])) is not None}


def type_problem(config: Any) -> str | None:
    """The first scalar field of a config dataclass whose value is not of its annotated type (a bool is
    not a number), as "'name' must be T, got U"; None when every one is."""
    for name, kinds in _field_kinds(type(config)).items():
        value = getattr(config, name)
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            allowed = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
            return f"'{name}' must be {allowed}, got {type(value).__name__}"
    return None
