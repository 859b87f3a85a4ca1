"""What every dry-run check shares: the `Report` it appends to and `select`, the config lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def select(cfg: Any, key: str) -> Any:
    """The value at `key` (containers as plain Python, resolved), or _MISSING when absent or `???`."""
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except Exception:  # MissingMandatoryValue
        return _MISSING
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
