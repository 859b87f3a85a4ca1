"""Task generators: canonical video -> MedVidBench record contents, one module per task (a registry)."""

from data_preprocess.builder.generators import cvs, dvc, nap, rc, sa, stg, tag, vs  # noqa: F401  (registers)
from data_preprocess.builder.generators.base import CAPTION_TASKS, GENERATORS, Drop, Item

__all__ = ["CAPTION_TASKS", "GENERATORS", "Drop", "Item"]
