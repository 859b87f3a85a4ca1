"""MedVidBench JSON -> verl parquet (RL rows and SFT messages), splits, validation, toy data generator.

Entry points: `python -m data_preprocess.medvidbench` (converter) and `python -m data_preprocess.toy`.
"""

from data_preprocess.video_spec import VideoSpec

__all__ = ["VideoSpec"]
