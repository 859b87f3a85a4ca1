"""Golden outputs: the converter's parquet rows and manifest on the toy set and the test fixtures.

The golden files were written by the converter before its rewrite; the rewrite must reproduce them
exactly (rows in file order; manifest keys present in the golden file; temp paths as placeholders).
Regenerate (only for an intended output change): `PYTHONPATH=. python tests/test_data_golden.py`.
"""

from __future__ import annotations

import copy
import gzip
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from data_preprocess import medvidbench
from testbed import toy

GOLDEN = Path(__file__).parent / "golden"
OUTPUTS = ("rl_train", "rl_val", "sft_train", "sft_val")
VOLATILE = ("input_sha256", "conversion")  # the fixture's JSON spelling; the run's id (data_preprocess/outputs.py)


def _skip_invalid_records(records: list[dict]) -> list[dict]:
    """The toy set with the breakages the converter tests use (kept with --skip-invalid)."""
    out = copy.deepcopy(records)
    rc = next(i for i, r in enumerate(out) if r["is_RC"])
    out[rc]["RC_info"]["start_frame_bbox"] = [10, 10, 5, 40]
    stg = [i for i, r in enumerate(out) if r["qa_type"] == "stg"]
    out[stg[0]]["struc_info"][0]["bbox_dict"] = {"0.0": ["a", "b", "c", "d"]}
    out[stg[1]]["struc_info"][0]["bbox_dict"] = {}
    out[3]["video"][1] = "frames/nowhere/000001.jpg"
    out[5]["qa_type"] = "nope"
    out.insert(0, "not a record")
    ego = next(r for r in out if isinstance(r, dict) and r["qa_type"] == "next_action"
               and r["data_source"] == "EgoSurgery")
    other = copy.deepcopy(ego)
    other["conversations"][1]["value"] = other["struc_info"][0]["next_action"] = "zz-closing"
    out.append(other)
    return out


# name -> (records transform or None for the toy file as is, CLI flags)
CASES: dict[str, tuple[Callable[[list[dict]], list[dict]] | None, list[str]]] = {
    "toy_large": (None, ["--val-fraction", "0.3"]),
    "toy_standard_subsampled": (None, ["--split", "standard", "--standard-size", "20", "--video-spec", "SPEC",
                                       "--max-prompt-tokens", "200"]),
    "fixtures_skip_invalid": (_skip_invalid_records, ["--skip-invalid", "--val-fraction", "0.2", "--seed", "3"]),
}
SPEC = {"fps": 0.5, "max_frames": 4}


def _plain(value: Any, roots: dict[str, str]) -> Any:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    for root, name in roots.items():
        text = text.replace(root, name)
    return json.loads(text)


def convert_case(name: str, toy_dir: Path, work: Path) -> dict[str, Any]:
    """Run the CLI for one case and return its canonical outputs."""
    transform, flags = CASES[name]
    source = toy_dir / toy.TOY_FILE
    if transform is not None:
        source = work / f"{name}.json"
        source.write_text(json.dumps(transform(json.loads((toy_dir / toy.TOY_FILE).read_text())), indent=1))
    spec = work / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = work / f"out_{name}"
    args = ["--input", str(source), "--data-root", str(toy_dir), "--out-dir", str(out), "--workers", "1",
            *[str(spec) if f == "SPEC" else f for f in flags]]
    assert medvidbench.main(args) == 0
    roots = {str(out): "<OUT>", str(toy_dir): "<DATA>", str(work): "<WORK>"}
    manifest = json.loads((out / "manifest.json").read_text())
    for key in VOLATILE:
        manifest.pop(key, None)
    tables = {n: pq.read_table(out / f"{n}.parquet").to_pylist() for n in OUTPUTS}
    return _plain({"manifest": manifest, "tables": tables}, roots)


def _golden(name: str) -> dict[str, Any]:
    with gzip.open(GOLDEN / f"convert_{name}.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_equal_the_golden_files(name: str, toy_dataset_dir: Path, tmp_path: Path) -> None:
    got, want = convert_case(name, toy_dataset_dir, tmp_path), _golden(name)
    for table, rows in want["tables"].items():
        assert len(got["tables"][table]) == len(rows), table
        for i, (g, w) in enumerate(zip(got["tables"][table], rows, strict=True)):
            assert g == w, f"{name}: {table} row {i} differs"
    for key, value in want["manifest"].items():
        assert got["manifest"][key] == value, f"{name}: manifest[{key!r}] differs"


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        toy_dir = Path(tmp) / "toy"
        toy.main(["--out", str(toy_dir), "--predictions"])
        for name in CASES:
            work = Path(tmp) / name
            work.mkdir()
            data = convert_case(name, toy_dir, work)
            text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            with gzip.GzipFile(GOLDEN / f"convert_{name}.json.gz", "wb", mtime=0) as fh:
                fh.write(text.encode())
            print(name, len(text), "chars")


if __name__ == "__main__":
    sys.exit(main())
