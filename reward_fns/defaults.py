"""The defaults of the `medgrpo.reward` keys, read from reward_fns/medgrpo_reward.yaml, the one place
they are written (the GRPO recipe composes the same file into its config)."""

from __future__ import annotations

import copy
import functools
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
