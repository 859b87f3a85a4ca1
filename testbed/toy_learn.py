"""Learnable toy MedVidBench: every answer can be read off the frames (the data of `learn-smoke`).

    python -m testbed.toy_learn --out DIR [--per-pair 40] [--seed 0]

Writes DIR/medvidbench_toy_learn.json (same schema as testbed.toy; frame paths relative to DIR)
and its JPEG frames under DIR/frames/. One video per record, so the converter's train/val split by video
holds out whole scenes. Small frames (112 x 84: 12 vision tokens per pair of frames) and short answers,
so a tiny model trains on them in minutes on a CPU. The scenes, one per task (a registry, `SCENES`):

- CVS (Cholec80-CVS): three horizontal bands (top: two structures, middle: cystic plate, bottom:
  hepatocystic triangle), each coloured by its score: red 0, green 1, blue 2.
- STG (CoPESD, EgoSurgery, CholecTrack20): a bright tool head at one of 6 grid positions whose boxes
  overlap (a near miss still earns some IoU), still over the clip's 2 frames (1 fps): one box, at 0.0 s.
- TAG (AVOS, CholecT50, NurViD, CoPESD, EgoSurgery): 4 frames at 1 fps; the field turns green in the
  frames of the action's span (2 to 4 consecutive frames), the answer in seconds.

Hues, not brightness, carry the answers: the vision tower's normalization layers keep a patch's colour
direction but not its brightness, so a tiny random model tells red from green from blue far sooner
than dark from bright.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from data_preprocess.splits import stable_hash
from reward_fns.atomic_io import write_text_atomic
from reward_fns.tasks import cvs
from testbed.toy_tasks import NURVID_PROCEDURES, TOOLS, fmt_stg, fmt_tal, source_labels

TOY_LEARN_FILE = "medvidbench_toy_learn.json"
SIZE = (112, 84)  # multiples of 28: qwen-vl-utils keeps it as it is (4 x 3 merged patches)
FIELD = (70, 45, 45)  # the dark background of STG and TAG scenes
HUES = ((210, 50, 50), (50, 190, 70), (50, 70, 210))  # CVS: the colour of score 0, 1, 2 (red, green, blue)
BAND = SIZE[1] // 3  # CVS band height: one row of merged 28-pixel patches
MARKED = (60, 200, 90)  # TAG: the field while the action is under way
BOX_W, BOX_H = 50, 40
BOX_X1, BOX_Y1 = (10, 30, 50), (10, 30)  # STG: 6 positions, neighbours overlap
TAG_FRAMES = 4
TAG_SPANS = ((0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (2, 4))  # marker shown in frames start..end-1 (1 fps)
PAIRS: tuple[tuple[str, str], ...] = (  # (data_source, task), in the order records are written
    ("Cholec80-CVS", "CVS"),
    ("CoPESD", "STG"), ("EgoSurgery", "STG"), ("CholecTrack20", "STG"),
    ("AVOS", "TAG"), ("CholecT50", "TAG"), ("NurViD", "TAG"), ("CoPESD", "TAG"), ("EgoSurgery", "TAG"),
)


@dataclass(frozen=True)
class Scene:
    """One record's content: its frames, frame rate, question, answer and struc_info."""

    frames: tuple[Image.Image, ...]
    fps: float
    qa_type: str
    question: str
    answer: str
    struc_info: list[Any]


SceneBuilder = Callable[[random.Random, str], Scene]
SCENES: dict[str, SceneBuilder] = {}


def scene(task: str) -> Callable[[SceneBuilder], SceneBuilder]:
    def register(fn: SceneBuilder) -> SceneBuilder:
        SCENES[task] = fn
        return fn
    return register


def blank(colour: tuple[int, int, int] = FIELD) -> Image.Image:
    return Image.new("RGB", SIZE, colour)


@scene("CVS")
def cvs_scene(rng: random.Random, source: str) -> Scene:
    scores = {key: rng.randint(0, 2) for key in cvs.CRITERIA}
    frame = blank()
    draw = ImageDraw.Draw(frame)
    for row, key in enumerate(cvs.CRITERIA):
        draw.rectangle((0, row * BAND, SIZE[0] - 1, (row + 1) * BAND - 1), fill=HUES[scores[key]])
    total = sum(scores.values())
    question = "Assess the critical view of safety: score two structures, cystic plate and hepatocystic triangle 0-2."
    struc = [{"cvs_scores": {**scores, "total": total, "critical_view_achieved": total >= 5}}]
    return Scene((frame, frame), 1.0, "cvs_assessment", question, cvs.answer_text(scores), struc)


def stg_box(rng: random.Random) -> list[int]:
    x1, y1 = rng.choice(BOX_X1), rng.choice(BOX_Y1)
    return [x1, y1, x1 + BOX_W, y1 + BOX_H]


@scene("STG")
def stg_scene(rng: random.Random, source: str) -> Scene:
    box = stg_box(rng)
    frame = blank()
    ImageDraw.Draw(frame).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(220, 225, 235))
    boxes = {"0.0": box}  # the tool is still: one box (a short answer)
    tool = TOOLS[source]
    question = f"Where is the {tool}? Give its box as 'T seconds: [x1, y1, x2, y2]'."
    struc = [{"start": 0.0, "end": 1.0, "stride": 1, "object": tool, "bbox_dict": boxes}]
    return Scene((frame, frame), 1.0, "stg", question, fmt_stg(boxes), struc)


@scene("TAG")
def tag_scene(rng: random.Random, source: str) -> Scene:
    start, end = rng.choice(TAG_SPANS)
    labels = source_labels(source, NURVID_PROCEDURES[0] if source == "NurViD" else None)
    label = rng.choice(labels)
    frames = tuple(blank(MARKED if start <= k < end else FIELD) for k in range(TAG_FRAMES))
    question = f"When does the action '{label}' take place? Answer with start-end seconds."
    struc = [{"action": label, "spans": [{"start": float(start), "end": float(end)}]}]
    return Scene(frames, 1.0, "tal", question, fmt_tal([(float(start), float(end))]), struc)


def video_id(source: str, task: str, index: int) -> str:
    prefix = "".join(ch for ch in source if ch.isalnum())[:6].lower()
    return f"learn_{prefix}_{task.lower()}_{index:04d}"


def build(out: Path, per_pair: int, seed: int) -> list[dict[str, Any]]:
    """Render every record's frames under `out` and return the records."""
    records = []
    for source, task in PAIRS:
        for i in range(per_pair):
            vid = video_id(source, task, i)
            made = SCENES[task](random.Random(stable_hash(seed, vid)), source)
            paths = []
            for k, frame in enumerate(made.frames):
                rel = f"frames/{source}/{vid}/{k:06d}.jpg"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                frame.save(out / rel, format="JPEG", quality=95)
                paths.append(rel)
            records.append({
                "conversations": [{"from": "human", "value": f"<video>\n{made.question}"},
                                  {"from": "gpt", "value": made.answer}],
                "video": paths, "qa_type": made.qa_type, "data_source": source, "struc_info": made.struc_info,
                "metadata": {"video_id": vid, "fps": str(made.fps), "input_video_start_frame": "0",
                             "input_video_end_frame": str(len(paths) - 1)},
                "is_RC": False, "RC_info": {},
            })
    return records


def generate(out: str | Path, per_pair: int = 40, seed: int = 0) -> Path:
    """Write the JSON and its frames under `out`; returns the JSON path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / TOY_LEARN_FILE
    write_text_atomic(path, json.dumps(build(out, per_pair, seed), indent=1))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.toy_learn", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--per-pair", type=int, default=40, help="records per (data_source, task) pair (default 40)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.per_pair < 1:
        p.error(f"--per-pair must be >= 1, got {args.per_pair}")
    started = time.perf_counter()
    path = generate(args.out, args.per_pair, args.seed)
    n = len(json.loads(path.read_text(encoding="utf-8")))
    print(f"learnable toy MedVidBench: {n} records -> {path} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
