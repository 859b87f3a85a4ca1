"""Importing the data stages stays light: `data_preprocess` itself imports nothing, so the builder, the
caption stage and the toy generator start without torch (qwen-vl-utils pulls it in for the converter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_builder_captions_and_toy_do_not_import_torch() -> None:
    code = ("import sys, data_preprocess.builder.cli, data_preprocess.caption_writer.cli, testbed.toy; "
            "print(sorted({'torch', 'qwen_vl_utils', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
