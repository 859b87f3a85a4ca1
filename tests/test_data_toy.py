"""The toy MedVidBench: deterministic, complete, self-consistent, real JPEG frames."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from data_preprocess.schema import DECODER, check_record
from reward_fns.reference import record_answer, reference_from_record, sample_id
from reward_fns.registry import SOURCES, all_qa_types, task_for_qa_type
from testbed import toy
from testbed.toy_scene import IDLE, Clip, Video


def _records(toy_dir: Path) -> list[dict]:
    return json.loads((toy_dir / toy.TOY_FILE).read_text())


def test_covers_every_source_and_qa_type(toy_dataset_dir: Path) -> None:
    recs = _records(toy_dataset_dir)
    assert {r["data_source"] for r in recs} == set(SOURCES)
    assert Counter(r["qa_type"] for r in recs) == dict.fromkeys(all_qa_types(), 5)
    nap_sources = {r["data_source"] for r in recs if r["qa_type"] == "next_action"}
    assert nap_sources == {"AVOS", "CholecT50", "CoPESD", "NurViD", "EgoSurgery"}
    ids = Counter(sample_id(r) for r in recs)
    assert max(ids.values()) == 2  # a clip carries its _gpt and _gemini questions, as in MedVidBench


def test_deterministic(tmp_path: Path, toy_dataset_dir: Path) -> None:
    again = toy.generate(tmp_path, 5, 0)
    assert again.read_text() == (toy_dataset_dir / toy.TOY_FILE).read_text()
    frame = _records(toy_dataset_dir)[0]["video"][0]
    assert (tmp_path / frame).read_bytes() == (toy_dataset_dir / frame).read_bytes()
    assert toy.build_records(2, 1)[0] != toy.build_records(2, 0)[0]


def test_records_are_valid_and_rewardable(toy_dataset_dir: Path) -> None:
    """Every record passes the converter's checks and its own answer earns a reward."""
    from reward_fns.tasks.nap import resolve_nap_classes

    recs = _records(toy_dataset_dir)
    answers: dict[str, set[str]] = {}
    for r in recs:
        if r["qa_type"] == "next_action":
            answers.setdefault(r["data_source"], set()).add(record_answer(r))
    decoded = DECODER.decode((toy_dataset_dir / toy.TOY_FILE).read_bytes())
    for i, rec in enumerate(decoded):
        checked = check_record(rec, i, "toy", lambda s, q: resolve_nap_classes(s, q, answers.get(s, ())))
        assert checked.task.reward_rejection(checked.ref) is None, recs[i]["qa_type"]
        for frame in recs[i]["video"]:
            assert (toy_dataset_dir / frame).is_file()


def test_frames_are_jpegs_showing_the_ground_truth(toy_dataset_dir: Path) -> None:
    """STG boxes are where the tool head is drawn; the background changes at TAG boundaries."""
    recs = _records(toy_dataset_dir)
    stg = next(r for r in recs if r["qa_type"] == "stg")
    fps = float(stg["metadata"]["fps"])
    for key, (x1, y1, x2, y2) in stg["struc_info"][0]["bbox_dict"].items():
        frame = Image.open(toy_dataset_dir / stg["video"][round(float(key) * fps)])
        assert frame.format == "JPEG"
        pixels = np.asarray(frame.convert("RGB"), dtype=int)
        inside = pixels[y1 + 2:y2 - 1, x1 + 2:x2 - 1].reshape(-1, 3).mean(axis=0)
        assert np.abs(inside - (200, 205, 215)).max() < 25  # the tool head colour
    tal = next(r for r in recs if r["qa_type"] == "tal")
    fps = float(tal["metadata"]["fps"])
    span = tal["struc_info"][0]["spans"][0]
    inside = Image.open(toy_dataset_dir / tal["video"][int(span["start"] * fps) + 1]).getpixel((2, 2))
    before = int(span["start"] * fps) - 1
    if before >= 0:
        outside = Image.open(toy_dataset_dir / tal["video"][before]).getpixel((2, 2))
        assert np.abs(np.subtract(inside, outside)).max() > 10


def test_scene_timeline_and_boxes() -> None:
    import random

    video = Video.make(random.Random(0), "v", "AVOS", ("cutting", "tying"), "scalpel", (128, 96))
    clip = Clip(video, 10.0, 20, 1.0)
    segs = clip.segments()
    assert all(0 <= s.start < s.end <= 20 for s in segs) and all(s.label != IDLE for s in segs)
    x1, y1, x2, y2 = clip.box(0)
    assert 0 <= x1 < x2 < 128 and 0 <= y1 < y2 < 96


def test_reference_policy_predictions(toy_dataset_dir: Path) -> None:
    recs = _records(toy_dataset_dir)
    preds = json.loads((toy_dataset_dir / toy.PREDICTIONS_FILE).read_text())
    assert [(p["id"], p["qa_type"]) for p in preds] == [(sample_id(r), r["qa_type"]) for r in recs]
    exact = sum(p["prediction"] == record_answer(r) for p, r in zip(preds, recs, strict=True))
    assert 0.3 * len(recs) < exact < 0.8 * len(recs)
    by_task: dict[str, list[float]] = {}
    for p, r in zip(preds, recs, strict=True):
        task = task_for_qa_type(r["qa_type"])
        ref = reference_from_record(r)
        parsed = task.parse(p["prediction"])
        if task.name not in ("NAP", "VS", "RC", "DVC"):  # rule rewards only (no embedder needed)
            by_task.setdefault(task.name, []).append(task.reward(parsed, ref, []))
    assert all(0 <= x <= 1 for xs in by_task.values() for x in xs)
    assert any(x < 1 for xs in by_task.values() for x in xs) and any(x == 1 for xs in by_task.values() for x in xs)
