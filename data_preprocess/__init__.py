"""MedVidBench JSON -> verl parquet (`python -m data_preprocess.medvidbench`), the builder (`.build`) and
caption stage (`.captions`). Imports nothing itself, so each stage stays light."""
