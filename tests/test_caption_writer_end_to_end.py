"""Caption stage output is a finished MedVidBench file: the converter and the scorer accept it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_preprocess import medvidbench
from data_preprocess.caption_writer import cli
from evaluation import score_submission
from testbed.fake_caption_models import FakeCaptionModel
from testbed.toy_caption_facts import mixed_records, write_facts


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
    report = score_submission.run(["--gt", str(out), "--pred", str(pred), "--out", str(tmp_path / "metrics.json")])
    assert report.columns["dvc_f1"] == 1.0


def test_builder_facts_output_end_to_end(tmp_path: Path) -> None:
    """The builder's `--captions facts` output over every fixture source: captions for every caption
    record, other records passed through, and the result converts and scores its own references perfectly."""
    from collections import Counter

    from data_preprocess.builder.cli import main as build
    from evaluation.benchmark_metrics import build_references, score
    from reward_fns.reference import record_answer
    from testbed import toy_sources as fx

    sources, config = fx.write_all(tmp_path), fx.small_config(tmp_path / "config.yaml")
    built, frames = tmp_path / "built.json", tmp_path / "data"
    assert build(["--all", str(sources), "--out", str(built), "--config", str(config), "--captions", "facts",
                  "--frames-out", str(frames)]) == 0
    raw = json.loads(built.read_text())
    facts = [r for r in raw if "caption_facts" in r]
    assert {r["caption_facts"]["task"] for r in facts} == {"dvc", "vs", "rc"}
    out = tmp_path / "final.json"
    with (FakeCaptionModel("model-a").run_in_thread() as a, FakeCaptionModel("model-b").run_in_thread() as b):
        cli.run(["--input", str(built), "--out", str(out), "--gen-url", a.base_url, "--gen-model", a.model,
                 "--val-url", b.base_url, "--val-model", b.model, "--with-frames", "--data-root", str(frames),
                 "--no-progress"])
    final = json.loads(out.read_text())
    assert len(final) == len(raw) + len(facts)
    kinds = Counter(r["qa_type"] for r in final)
    for stem in ("dense_captioning", "video_summary", "region_caption"):
        assert kinds[f"{stem}_gpt"] == kinds[f"{stem}_gemini"] == sum(r["qa_type"] == stem for r in facts) > 0
    assert medvidbench.main(["--input", str(out), "--data-root", str(frames), "--out-dir", str(tmp_path / "conv"),
                             "--workers", "1"]) == 0
    assert json.loads((tmp_path / "conv" / "manifest.json").read_text())["rejected"] == []
    report = score(build_references(final), [record_answer(r) for r in final])
    assert report.columns["dvc_f1"] == 1.0
