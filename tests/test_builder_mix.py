"""The mix a build reaches (OUT.manifest.json `mix`) and the `medvidbench_paper` preset, on a synthetic root
sized like the releases (scaled down here; benchmarks/builder_bench.py --mix runs it at full size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from data_preprocess.builder.cli import main
from data_preprocess.builder.config import DEFAULT_CONFIG, load_config
from testbed import toy_sources as fx

PAPER = DEFAULT_CONFIG.with_name("medvidbench_paper.yaml")


@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.release_sized(tmp_path_factory.mktemp("sized"), scale=0.1)


def build(root: Path, out: Path, *extra: str) -> dict:
    assert main(["--source", "canonical", "--root", str(root), "--out", str(out), "--captions", "facts",
                 "--config", str(PAPER), *extra]) == 0
    return json.loads(out.with_name(out.stem + ".manifest.json").read_text())


def test_the_paper_preset_reaches_the_papers_fps_shares(sized: Path, tmp_path: Path) -> None:
    mix = build(sized, tmp_path / "large.json")["mix"]
    assert mix["fps_within_5_points"], mix["fps"]
    assert {rate: v["paper_share"] for rate, v in mix["fps"].items()} == {"0.5": 63.3, "1.0": 22.0, "2.0": 7.5}
    assert 0.07 < mix["ratio_to_paper"] < 0.13  # a tenth of the releases: about a tenth of 531,850
    for task, row in mix["tasks"].items():  # task shares reported beside the public test set's, and near them
        assert abs(row["share"] - row["test_share"]) < 8, (task, row)
    clips = mix["clip_seconds"]
    assert clips["max"] <= 1800 and clips["bins"]["<20"] < 2 and clips["bins"]["300-900"] > 5
    assert set(mix["answer_chars"]) == {"TAG", "NAP", "STG", "CVS", "SA"}


def test_standard_caps_count_final_records(sized: Path, tmp_path: Path) -> None:
    manifest = build(sized, tmp_path / "std.json", "--split", "standard")
    config = load_config(PAPER)
    finals = {}
    for source, tasks in manifest["counts"].items():
        for task, per_fps in tasks.items():
            per = 2 if task in ("DVC", "VS", "RC") else 1
            finals[source, task] = sum(per_fps.values()) * per
            assert finals[source, task] <= config.sources[source].tasks[task].cap, (source, task)
    assert manifest["mix"]["records_final"] == sum(finals.values())
    assert manifest["mix"]["paper_records"] == 51_505


def test_the_paper_preset_caps_add_up_and_share_the_default_question_banks() -> None:
    paper, default = load_config(PAPER), load_config()
    assert sum(t.cap for s in paper.sources.values() for t in s.tasks.values()) == 51_505
    assert paper.questions == default.questions
    assert {s: set(c.tasks) for s, c in paper.sources.items()} == {s: set(c.tasks) for s, c in default.sources.items()}
    raw = yaml.safe_load(PAPER.read_text())
    assert raw["task_defaults"]["CVS"]["windowed"] and raw["task_defaults"]["SA"]["windowed"]
