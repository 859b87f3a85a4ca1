"""Hydra command-line overrides from Python (tests, demo)."""

from __future__ import annotations


def hydra_quote(value: str) -> str:
    """A Hydra override value in single quotes, quotes inside escaped (the launchers' `hq`)."""
    return "'" + value.replace("'", "\\'") + "'"
