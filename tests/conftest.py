"""Shared fixtures (CPU only)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One OpenMP thread: libgomp is not fork-safe, and `datasets` (verl's RLHFDataset filter) forks a worker
# pool; after torch ran a multi-threaded OpenMP region in this process (MiniLM), the child would hang.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2 (offline)."""
    from reward_fns.similarity import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def tiny_qwen25vl_dir(tmp_path_factory):
    """A tiny random Qwen2.5-VL (model + processor + tokenizer) saved offline; built once per session."""
    from testbed.tiny_qwen import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny_qwen25vl"))


@pytest.fixture(scope="session")
def toy_dataset_dir(tmp_path_factory):
    """The toy MedVidBench (JSON, JPEG frames and reference-policy predictions), generated once."""
    from testbed import toy

    out = tmp_path_factory.mktemp("toy_medvidbench")
    toy.main(["--out", str(out), "--predictions"])
    return out


@pytest.fixture(scope="session")
def toy_subset(toy_dataset_dir):
    """`toy_subset(n)`: the toy JSON with `--per-qa-type n` (n <= 5), written beside the session toy set's
    frames (the clips of record i do not depend on n), with its reference-policy predictions at
    `<json stem>_predictions.json`; each n is written once per session."""
    from reward_fns.atomic_io import write_json_atomic
    from testbed import toy
    from testbed.toy_predictions import write_predictions

    made = {}

    def make(per_qa_type: int):
        if per_qa_type not in made:
            path = toy_dataset_dir / f"toy_{per_qa_type}.json"
            write_json_atomic(path, toy.build_records(per_qa_type, 0)[0])
            write_predictions(path, path.with_name(f"{path.stem}_predictions.json"))
            made[per_qa_type] = path
        return made[per_qa_type]

    return make


@pytest.fixture(scope="session")
def toy_rl_run(tmp_path_factory, toy_subset):
    """`toy_rl_run(name, n, values)`: a fresh folder holding `data/rl_train.parquet`, converted from
    `toy_subset(n)` with no val split, and `stats.json` with `values(pair)` (default [0.2, 0.5, 0.8])
    for every (data_source, task) pair of it; returns the folder."""
    from data_preprocess import medvidbench
    from reward_fns.build import data_pairs
    from reward_fns.normalize import RewardStats

    def make(name: str, per_qa_type: int, values=lambda pair: [0.2, 0.5, 0.8]):
        root = tmp_path_factory.mktemp(name)
        toy_json = toy_subset(per_qa_type)
        medvidbench.main(["--input", str(toy_json), "--data-root", str(toy_json.parent),
                          "--out-dir", str(root / "data"), "--val-fraction", "0"])
        stats = RewardStats(k=2.0)
        for pair in data_pairs([str(root / "data" / "rl_train.parquet")]):
            stats.set(*pair, values(pair))
        stats.save(root / "stats.json")
        return root

    return make
