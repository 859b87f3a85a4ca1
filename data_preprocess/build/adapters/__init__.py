"""Source adapters (a registry keyed by the CLI's --source name)."""

from data_preprocess.build.adapters import canonical_source  # noqa: F401  (registers)
from data_preprocess.build.adapters.base import ADAPTERS, Adapter, SourceRead, get_adapter

__all__ = ["ADAPTERS", "Adapter", "SourceRead", "get_adapter"]
