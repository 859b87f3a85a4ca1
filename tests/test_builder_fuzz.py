"""Property: any single hostile value anywhere in a source's annotation file gives either a build whose
records are safe (frame paths inside the data root, one-line labels, no unfilled placeholders) or a one-line
error with exit status 2; never a traceback (hypothesis over every JSON path and CSV cell of the fixtures)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_preprocess.builder.cli import main
from testbed import toy_sources as fx

HOSTILE = [None, True, False, 0, -1, 1.5, -1e9, 1e9, 1e308, float("nan"), float("inf"), 10**40, "", " ", "abc",
           "1e3", "-5", "../x", "/etc", "a\nb", "{n.__class__}", "{0}", "3-4 seconds: x", "\u2028", "x" * 300,
           [], {}, [1, 2], [[1]], {"a": 1}, {"": None}, [None] * 4, ["a", "b", "c", "d"]]
UNFILLED = re.compile(r"\{(label|object|classes|procedure|source|duration|track|persona|setting|unit|units|first|last"
                      r"|stride|time|end)\}")
# (CLI source name, annotation file inside the release)
JSON_FILES = [("nurvid", "NurViD_annotations.json"), ("copesd", "copesd_annotations.json"),
              ("cholect50", "labels/VID01.json"), ("cholectrack20", "Training/VID02/VID02.json"),
              ("avos", "avos_boxes.json"), ("copesd", "copesd_llava_train.json")]
CSV_FILES = [("egosurgery", "videos.csv"), ("egosurgery", "phases.csv"), ("egosurgery", "boxes.csv"),
             ("avos", "avos_segments.csv"), ("nurvid", "Procedure&Action_ID.csv"),
             ("cholec80_cvs", "surgeons_annotations.csv")]


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz_releases")
    for name in ("nurvid", "cholect50", "cholectrack20", "avos", "egosurgery"):
        fx.WRITERS[name](base / name, **({"flat": True} if name == "nurvid" else {}))  # files in --root itself
    fx.copesd(base / "copesd", seconds=20, llava=True)
    fx.write_csv(base / "cholec80_cvs" / "surgeons_annotations.csv", fx.CVS_HEADER, fx.CVS_ROWS)
    fx.small_config(base / "config.yaml")
    return base


def json_paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value (the first 3 items of long lists)."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node[:3]) if isinstance(node, list) else ()
    for key, child in items:
        yield from json_paths(child, (*prefix, key))


def replaced(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node[path[0]] = replaced(node[path[0]], path[1:], value)
    return node


def check_build(root: Path, name: str, config: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--source", name, "--root", str(root), "--config", str(config), "--out", str(out),
                 "--captions", "facts"])
    err = capsys.readouterr().err
    if code:
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return
    for rec in json.loads(out.read_text()):
        for frame in rec["video"]:
            assert not frame.startswith("/") and ".." not in Path(frame).parts, frame
        question = rec["conversations"][0]["value"]
        assert not UNFILLED.search(question) and "\n" not in question.removeprefix("<video>\n"), question
        labels = [s.get("action") for s in rec["struc_info"] if isinstance(s, dict)]
        labels += [seg["label"] for seg in rec.get("caption_facts", {}).get("segments", [])]
        assert all(label is None or "\n" not in label for label in labels), labels


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_hostile_json_value_never_breaks_the_build(releases: Path, capsys: pytest.CaptureFixture[str],
                                                        data: st.DataObject) -> None:
    name, rel = data.draw(st.sampled_from(JSON_FILES))
    original = json.loads((releases / name / rel).read_text())
    path = data.draw(st.sampled_from(list(json_paths(original))))
    value = data.draw(st.sampled_from(HOSTILE))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        shutil.copytree(releases / name, root)
        (root / rel).write_text(json.dumps(replaced(original, path, value)))
        check_build(root, name, releases / "config.yaml", Path(tmp) / "out" / "o.json", capsys)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_hostile_csv_cell_never_breaks_the_build(releases: Path, capsys: pytest.CaptureFixture[str],
                                                      data: st.DataObject) -> None:
    name, rel = data.draw(st.sampled_from(CSV_FILES))
    rows = list(csv.reader(io.StringIO((releases / name / rel).read_text())))
    r = data.draw(st.integers(0, len(rows) - 1))
    c = data.draw(st.integers(0, len(rows[r]) - 1))
    rows[r][c] = str(data.draw(st.sampled_from(HOSTILE)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        shutil.copytree(releases / name, root)
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        (root / rel).write_text(buf.getvalue())
        check_build(root, name, releases / "config.yaml", Path(tmp) / "out" / "o.json", capsys)
