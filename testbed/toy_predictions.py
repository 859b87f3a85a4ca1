"""A "reference policy" submission for the toy set: `[{id, qa_type, prediction}]` in record order.

Deterministic by (seed, record index): about half the answers are the reference itself, about a third
are perturbed in a task-aware way (shifted spans and boxes, a wrong score or class, a vaguer caption)
and the rest are malformed (formats the leaderboard parser rejects), so every scorer path is exercised.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_preprocess.splits import stable_hash
from reward_fns.atomic_io import write_text_atomic
from reward_fns.reference import record_answer, record_question, sample_id
from reward_fns.registry import task_for_qa_type
from reward_fns.tasks import cvs, sa
from reward_fns.tasks.dvc_parse import gt_segments
from testbed.toy_tasks import fmt_dvc, fmt_stg, fmt_tal

Perturb = Callable[[dict[str, Any], random.Random, dict[str, set[str]]], str]
PERTURB: dict[str, Perturb] = {}
MALFORMED = {
    "TAG": "The action happens between {a} and {b} seconds.",
    "STG": "1.0s: [10, 20, 30, 40]",
    "DVC": "Events: the surgeon works, then finishes.",
    "CVS": "Two structure: 2; Cystic plate : 1",
    "SA": "Respect for tissue: 3 / 5, Time and motion: 4 out of 5",
    "NAP": "I am not sure what comes next.",
    "VS": "",
    "RC": "",
}


def perturber(task: str) -> Callable[[Perturb], Perturb]:
    def register(fn: Perturb) -> Perturb:
        PERTURB[task] = fn
        return fn
    return register


@perturber("TAG")
def _tag(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    d = rng.choice([-6, -3, 2, 4, 8])
    spans = [(max(0.0, s["start"] + d), s["end"] + d) for item in rec["struc_info"] for s in item["spans"]]
    return fmt_tal(spans)


@perturber("STG")
def _stg(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    dx, dy = rng.randint(-10, 10), rng.randint(-8, 8)
    boxes = {k: [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy] for k, b in rec["struc_info"][0]["bbox_dict"].items()}
    return fmt_stg(boxes)


@perturber("DVC")
def _dvc(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    d = rng.choice([-4, 3, 6])
    events = [(max(0.0, seg.start + d), seg.end + d, seg.caption.split(":")[0] + ": the tool is in view")
              for seg in gt_segments(rec["struc_info"])]
    return fmt_dvc(events[:-1] if len(events) > 1 else events)


@perturber("CVS")
def _cvs(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    scores = {k: int(rec["struc_info"][0]["cvs_scores"][k]) for k in cvs.CRITERIA}
    key = rng.choice(list(cvs.CRITERIA))
    scores[key] = (scores[key] + 1) % 3
    return cvs.answer_text(scores)


@perturber("SA")
def _sa(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    scores = dict(rec["struc_info"][0]["skill_scores"])
    for aspect in rng.sample(sa.ASPECTS, 2):
        scores[aspect] = 1 + (scores[aspect] % 5)
    return sa.answer_text(scores)


@perturber("NAP")
def _nap(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    from reward_fns.tasks.nap import resolve_nap_classes

    classes = resolve_nap_classes(rec["data_source"], record_question(rec), answers.get(rec["data_source"], ()))
    gt = record_answer(rec).strip()
    others = [c for c in classes if c != gt]
    return rng.choice(others) if others else gt


@perturber("VS")
def _vs(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    return "The video shows a surgical procedure with an instrument in the field."


@perturber("RC")
def _rc(rec: dict[str, Any], rng: random.Random, answers: dict[str, set[str]]) -> str:
    return "An instrument is visible in the highlighted region."


def predict(records: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """One prediction per record, in order: ~50% exact, ~35% perturbed, ~15% malformed."""
    answers: dict[str, set[str]] = {}
    for rec in records:
        if task_for_qa_type(rec["qa_type"]).name == "NAP":
            answers.setdefault(rec["data_source"], set()).add(record_answer(rec))
    out = []
    for index, rec in enumerate(records):
        task = task_for_qa_type(rec["qa_type"]).name
        roll = stable_hash(seed, f"pred/{index}") % 100
        rng = random.Random(stable_hash(seed, f"noise/{index}"))
        if roll < 50:
            text = record_answer(rec)
        elif roll < 85:
            text = PERTURB[task](rec, rng, answers)
        else:
            text = MALFORMED[task].format(a=rng.randint(1, 9), b=rng.randint(10, 30))
        out.append({"id": sample_id(rec), "qa_type": rec["qa_type"], "prediction": text})
    return out


def write_predictions(gt_path: str | Path, out_path: str | Path, seed: int = 0) -> Path:
    """Read the toy ground truth, write the reference-policy submission next to it."""
    records = json.loads(Path(gt_path).read_text())
    out_path = Path(out_path)
    write_text_atomic(out_path, json.dumps(predict(records, seed), indent=1))
    return out_path
