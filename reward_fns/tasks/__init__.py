"""Task declarations; importing this package registers all eight MedVidBench tasks."""

from reward_fns.tasks import cvs, dvc, nap, sa, stg, tag, vs_rc

__all__ = ["cvs", "dvc", "nap", "sa", "stg", "tag", "vs_rc"]
