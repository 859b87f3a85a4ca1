"""Caption stage output is a finished MedVidBench file: the converter and the scorer accept it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_preprocess import medvidbench
from data_preprocess.captions import cli
from data_preprocess.captions.fake_models import FakeCaptionModel
from evaluation import score
from tests.captions_fixtures import mixed_records, write_facts


def submission(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The references themselves as predictions."""
    def sample_id(meta: dict[str, str]) -> str:
        return "&&".join(meta[k] for k in ("video_id", "input_video_start_frame", "input_video_end_frame", "fps"))
    return [{"id": sample_id(r["metadata"]), "qa_type": r["qa_type"], "prediction": r["conversations"][1]["value"]}
            for r in records]


def run_captions(facts: Path, out: Path) -> list[dict[str, Any]]:
    with (FakeCaptionModel("model-a").run_in_thread() as a, FakeCaptionModel("model-b").run_in_thread() as b):
        cli.run(["--input", str(facts), "--out", str(out), "--gen-url", a.base_url, "--gen-model", a.model,
                 "--val-url", b.base_url, "--val-model", b.model, "--with-frames", "--no-progress"])
    return json.loads(out.read_text())


def test_output_passes_converter_and_scorer(tmp_path: Path) -> None:
    out = tmp_path / "captions.json"
    records = run_captions(write_facts(tmp_path, mixed_records(tmp_path)), out)
    assert len(records) == 14
    converted = tmp_path / "conv"
    assert medvidbench.main(["--input", str(out), "--data-root", str(tmp_path), "--out-dir", str(converted)]) == 0
    manifest = json.loads((converted / "manifest.json").read_text())
    assert manifest["rejected"] == [] and manifest["invalid"] in (0, [], {})
    assert manifest["counts"]["sft_train"]["by_task"] == {"DVC": 6, "RC": 4, "VS": 4}
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(submission(records)))
    report = score.run(["--gt", str(out), "--pred", str(pred), "--out", str(tmp_path / "metrics.json")])
    assert report.columns["dvc_f1"] == 1.0
