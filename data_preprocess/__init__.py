"""MedVidBench JSON -> verl parquet (RL rows and SFT messages), splits, validation, toy data generator.

Entry points: `python -m data_preprocess.medvidbench` (converter) and `python -m data_preprocess.toy`.
Imports nothing itself, so `data_preprocess.build` and `data_preprocess.captions` stay light.
"""
