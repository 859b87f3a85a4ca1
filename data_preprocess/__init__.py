"""MedVidBench JSON -> verl parquet (`python -m data_preprocess.medvidbench`), the builder (`.builder`) and
caption stage (`.caption_writer`). Imports nothing itself, so each stage stays light."""
