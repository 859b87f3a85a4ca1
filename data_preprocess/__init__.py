"""MedVidBench JSON -> verl parquet (`python -m data_preprocess.medvidbench`), the builder (`.builder`) and
caption stage (`.captions`). Imports nothing itself, so each stage stays light."""
