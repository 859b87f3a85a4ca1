"""Round trip: built records (captions filled as the caption stage does) pass the converter's validation,
and each record's own reference answer scores perfectly on every rule metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_preprocess import medvidbench
from data_preprocess.builder.cli import main
from data_preprocess.builder.config import DEFAULT_CONFIG
from evaluation.benchmark_metrics import build_references, score
from reward_fns.reference import record_answer
from testbed import toy_sources as fx


@pytest.fixture(scope="module", params=["small", "paper"])
def finished(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path, Path]:
    """The published-layout fixtures built with short default windows, and with the paper preset (several
    clip lengths, windowed CVS/SA, STG runs, 2 fps)."""
    base = tmp_path_factory.mktemp("rt")
    sources = fx.write_all(base)
    config = (fx.small_config(base / "config.yaml") if request.param == "small"
              else DEFAULT_CONFIG.with_name("medvidbench_paper.yaml"))
    out, frames = base / "built.json", base / "data"
    assert main(["--all", str(sources), "--out", str(out), "--config", str(config), "--captions", "facts",
                 "--frames-out", str(frames)]) == 0
    records = fx.fill_captions(json.loads(out.read_text()))
    final = base / "final.json"
    final.write_text(json.dumps(records))
    return records, final, frames


def test_the_converter_accepts_every_record(finished: tuple[list[dict], Path, Path], tmp_path: Path) -> None:
    records, final, frames = finished
    code = medvidbench.main(["--input", str(final), "--data-root", str(frames), "--out-dir", str(tmp_path),
                             "--workers", "1"])
    assert code == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["input"]["records"] == len(records)
    assert not manifest.get("invalid")


def test_own_references_score_perfectly(finished: tuple[list[dict], Path, Path]) -> None:
    records = finished[0]
    report = score(build_references(records), [record_answer(r) for r in records])
    rule = {k: report.columns[k] for k in ("cvs_acc", "nap_acc", "sa_acc", "stg_miou", "tag_miou_03",
                                           "tag_miou_05", "dvc_f1")}
    assert rule == dict.fromkeys(rule, 1.0)
    assert all(c["counted"] == c["records"] and c["unparsable"] == 0 for c in report.counts.values())
