"""Toy MedVidBench: a small, deterministic, self-consistent dataset in the real schema.

    python -m testbed.toy --out DIR [--per-qa-type 5] [--seed 0] [--predictions]

Writes DIR/medvidbench_toy.json (frame paths relative to DIR) and real JPEG frames under DIR/frames/.
Synthetic scenes: the background colour changes exactly at action boundaries (TAG/DVC ground truth)
and a moving tool head's box is the STG ground truth. All 8 sources and all 11 qa_types; one clip
can carry two questions (the `_gpt` / `_gemini` variants), so ids repeat, as in MedVidBench.
`--predictions` also writes DIR/toy_predictions.json, a "reference policy" submission.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_preprocess.splits import stable_hash
from reward_fns.atomic_io import write_text_atomic
from reward_fns.registry import all_tasks
from testbed.toy_scene import Clip, Video
from testbed.toy_tasks import BUILDERS, CLIP_SHAPE, NURVID_PROCEDURES, TASK_SOURCES, TOOLS, source_labels

TOY_FILE = "medvidbench_toy.json"
PREDICTIONS_FILE = "toy_predictions.json"
VIDEOS_PER_SOURCE = 3
SIZES = {"JIGSAWS": (112, 112), "NurViD": (112, 84)}  # others 128x96


def make_videos(seed: int) -> dict[str, list[Video]]:
    """Three synthetic videos per source."""
    rng = random.Random(seed)
    sources = sorted({s for group in TASK_SOURCES.values() for s in group})
    videos: dict[str, list[Video]] = {}
    for source in sources:
        prefix = "".join(ch for ch in source if ch.isalnum())[:6].lower()
        for j in range(VIDEOS_PER_SOURCE):
            extra = {"procedure": NURVID_PROCEDURES[j % len(NURVID_PROCEDURES)]} if source == "NurViD" else {}
            labels = source_labels(source, extra.get("procedure"))
            size = SIZES.get(source, (128, 96))
            videos.setdefault(source, []).append(
                Video.make(rng, f"{prefix}{j:02d}", source, labels, TOOLS[source], size, **extra))
    return videos


def _record(clip: Clip, qa_type: str, built: Any) -> dict[str, Any]:
    return {
        "conversations": [{"from": "human", "value": f"<video>\n{built.question}"},
                          {"from": "gpt", "value": built.answer}],
        "video": clip.frame_paths(), "metadata": clip.metadata(), "qa_type": qa_type,
        "data_source": clip.video.source, "struc_info": built.struc_info,
        "is_RC": built.rc_info is not None, "RC_info": built.rc_info or {},
    }


def build_records(per_qa_type: int, seed: int) -> tuple[list[dict[str, Any]], list[Clip]]:
    """The toy records (grouped by task, `_gpt` before `_gemini`) and the clips they use."""
    videos = make_videos(seed)
    tasks = all_tasks()
    records, clips = [], []
    for task_name, sources in TASK_SOURCES.items():
        duration, fps_choices = CLIP_SHAPE[task_name]
        for i in range(per_qa_type):
            source = sources[i % len(sources)]
            video = videos[source][(i // len(sources)) % VIDEOS_PER_SOURCE]
            for attempt in range(50):
                rng = random.Random(stable_hash(seed, f"{task_name}/{i}/{attempt}"))
                clip = Clip(video, float(rng.randint(0, int(video.duration) - duration - 20)), duration,
                            rng.choice(fps_choices))
                built = [(qa, BUILDERS[task_name](clip, random.Random(rng.random()), qa.rsplit("_", 1)[-1]))
                         for qa in tasks[task_name].qa_types]
                if all(b is not None for _, b in built):
                    break
            else:
                raise RuntimeError(f"no usable clip for {task_name} #{i}")
            clips.append(clip)
            records += [_record(clip, qa, b) for qa, b in built]
    return records, clips


def generate(out: str | Path, per_qa_type: int = 5, seed: int = 0) -> Path:
    """Write the toy JSON and its frames under `out`; returns the JSON path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records, clips = build_records(per_qa_type, seed)
    done: set[str] = set()
    for clip in clips:
        clip.write_frames(out, done)
    path = out / TOY_FILE
    write_text_atomic(path, json.dumps(records, indent=1))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.toy", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--per-qa-type", type=int, default=5, help="records per qa_type (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--predictions", action="store_true", help=f"also write {PREDICTIONS_FILE}")
    args = p.parse_args(argv)
    started = time.perf_counter()
    path = generate(args.out, args.per_qa_type, args.seed)
    n = len(json.loads(path.read_text()))
    frames = sum(1 for _ in Path(args.out, "frames").rglob("*.jpg"))
    print(f"toy MedVidBench: {n} records, {frames} frames -> {path} ({time.perf_counter() - started:.1f} s)")
    if args.predictions:
        from testbed.toy_predictions import write_predictions

        pred = write_predictions(path, Path(args.out, PREDICTIONS_FILE), args.seed)
        print(f"reference-policy predictions -> {pred}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
