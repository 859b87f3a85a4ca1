"""The MedVidBench builder: source adapters -> canonical annotation model -> task generators -> records.

CLI: `python -m data_preprocess.builder` (see cli.py; documentation in docs/builder.md).
"""
