"""Source adapters (a registry keyed by the CLI's --source name)."""

from data_preprocess.builder.adapters import (  # noqa: F401  (each module registers its adapter)
    avos,
    canonical_source,
    cholec80_cvs,
    cholect50,
    cholectrack20,
    copesd,
    egosurgery,
    jigsaws,
    nurvid,
)
from data_preprocess.builder.adapters.base import ADAPTERS, Adapter, SourceRead, get_adapter

__all__ = ["ADAPTERS", "Adapter", "SourceRead", "get_adapter"]
