"""Task declarations; importing this package registers all eight MedVidBench tasks."""

from reward_fns.tasks import captions, cvs, dvc, nap, sa, stg, tag

__all__ = ["captions", "cvs", "dvc", "nap", "sa", "stg", "tag"]
