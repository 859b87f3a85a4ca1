"""Toy MedVidBench content: per-source vocabularies, canonical answer formats, and one record builder
per task (a registry keyed by task name, shared by the `_gpt` / `_gemini` variants)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reward_fns.tasks import cvs, sa
from testbed.toy_scene import IDLE, Clip

NURVID_PROCEDURES = ("Intravenous Blood Sampling", "Bed Shampoo", "Nasogastric Gavage")
TOOLS = {"AVOS": "scalpel", "CholecT50": "grasper", "CholecTrack20": "grasper", "Cholec80-CVS": "hook",
         "CoPESD": "electrosurgical knife", "EgoSurgery": "forceps", "JIGSAWS": "needle driver",
         "NurViD": "syringe"}
OWN_LABELS = {
    "EgoSurgery": ("incision", "dissection", "suturing", "hemostasis", "irrigation"),
    "CholecTrack20": ("preparation", "calot triangle dissection", "clipping and cutting", "gallbladder dissection"),
    "JIGSAWS": ("reaching for needle", "positioning needle", "pushing needle through tissue", "pulling suture"),
    "Cholec80-CVS": ("hepatocystic triangle dissection", "cystic plate exposure", "clipping"),
}
TASK_SOURCES = {
    "CVS": ("Cholec80-CVS",), "SA": ("JIGSAWS",),
    "NAP": ("AVOS", "CholecT50", "CoPESD", "NurViD", "EgoSurgery"),
    "STG": ("CoPESD", "EgoSurgery", "CholecTrack20"),
    "TAG": ("AVOS", "CholecT50", "CoPESD", "NurViD", "EgoSurgery"),
    "DVC": ("AVOS", "CholecT50", "CoPESD", "NurViD"),
    "VS": ("AVOS", "CholecT50", "CoPESD", "NurViD", "EgoSurgery", "CholecTrack20"),
    "RC": ("CholecT50", "CoPESD", "EgoSurgery", "CholecTrack20"),
}
CLIP_SHAPE = {  # task -> (duration seconds, allowed fps)
    "CVS": (10, (1.0,)), "SA": (20, (1.0, 2.0)), "NAP": (12, (1.0, 2.0)), "STG": (6, (1.0, 2.0)),
    "TAG": (40, (0.5, 1.0)), "DVC": (40, (0.5, 1.0)), "VS": (30, (0.5, 1.0)), "RC": (8, (1.0, 2.0)),
}


def nap_table() -> Mapping[str, Any]:
    """The NAP class lists, as the NAP task reads them (reward_fns/data/nap_classes.json)."""
    from reward_fns.tasks.nap import class_table

    return class_table()


def source_labels(source: str, procedure: str | None = None) -> tuple[str, ...]:
    if source == "NurViD":
        return tuple(nap_table()["NurViD_by_procedure"][procedure or NURVID_PROCEDURES[0]])
    return tuple(OWN_LABELS.get(source) or nap_table()[source])


# ---- canonical answer formats (spec section 1) -------------------------------------------------
def fmt_tal(spans: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{s:.1f}-{e:.1f}" for s, e in spans) + " seconds."


def fmt_stg(boxes: Mapping[str, Sequence[float]]) -> str:
    return " ".join(f"{key} seconds: [{', '.join(str(round(v)) for v in box)}]" for key, box in boxes.items())


def fmt_dvc(events: Sequence[tuple[float, float, str]]) -> str:
    return "\n".join(f"{s:.1f}-{e:.1f} seconds: {caption}" for s, e, caption in events)


def sentence(clip: Clip, label: str, variant: str) -> str:
    tool = clip.video.tool
    if variant == "gemini":
        return f"The {tool} is used to perform {label} while the tissue stays in view."
    return f"The surgeon performs {label} with the {tool}, keeping the operative field clear."


@dataclass(frozen=True)
class Built:
    """What a builder returns: question (without the `<video>` line), answer, struc_info, RC info."""

    question: str
    answer: str
    struc_info: list[Any]
    rc_info: dict[str, Any] | None = None


Builder = Callable[[Clip, random.Random, str], Built | None]
BUILDERS: dict[str, Builder] = {}


def builder(task: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        BUILDERS[task] = fn
        return fn
    return register


@builder("TAG")
def _tag(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    segs = [s for s in clip.segments() if s.label != IDLE]
    if not segs:
        return None
    label = max(segs, key=lambda s: s.end - s.start).label
    spans = [(s.start, s.end) for s in segs if s.label == label]
    q = f"When does the action '{label}' take place in this video? Answer with start-end times in seconds."
    return Built(q, fmt_tal(spans), [{"action": label, "spans": [{"start": s, "end": e} for s, e in spans]}])


@builder("STG")
def _stg(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    boxes = {f"{clip.time(k):.1f}": clip.box(k) for k in range(clip.n_frames)}
    tool = clip.video.tool
    q = (f"Track the {tool} in this video. For every sampled time give its bounding box as "
         f"'T seconds: [x1, y1, x2, y2]' in pixels.")
    struc = [{"start": 0.0, "end": clip.time(clip.n_frames - 1), "stride": 1, "object": tool, "bbox_dict": boxes}]
    return Built(q, fmt_stg(boxes), struc)


@builder("DVC")
def _dvc(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    events = [(s.start, s.end, f"{s.label}: {sentence(clip, s.label, variant)}") for s in clip.segments()
              if s.label != IDLE]
    if not events:
        return None
    items = [{"start": s, "end": e, "caption": c} for s, e, c in events]
    if clip.video.source == "NurViD":
        struc: list[Any] = [{"dc_segments": items}]
    else:
        struc = [items] if variant == "gpt" else items
    q = ("Describe every event of this video with its time span, one per line as "
         "'start-end seconds: action: description'.")
    return Built(q, fmt_dvc(events), struc)


@builder("NAP")
def _nap(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    label = clip.next_label()
    if label is None:
        return None
    video = clip.video
    if video.source == "NurViD":
        q = f"This clip is from a {video.extra['procedure']} procedure. What is the next nursing action?"
    else:
        q = f"What is the next surgical action after this clip? Options: {', '.join(video.labels)}. Answer with one."
    return Built(q, label, [{"next_action": label}])


@builder("CVS")
def _cvs(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    scores = {key: rng.randint(0, 2) for key in cvs.CRITERIA}
    total = sum(scores.values())
    q = ("Assess the critical view of safety in this clip: score two structures, cystic plate and "
         "hepatocystic triangle from 0 to 2.")
    struc = [{"cvs_scores": {**scores, "total": total, "critical_view_achieved": total >= 5}}]
    return Built(q, cvs.answer_text(scores), struc)


@builder("SA")
def _sa(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    level = rng.choice("NIE")
    base = {"N": 2, "I": 3, "E": 4}[level]
    scores = {a: min(5, max(1, base + rng.randint(-1, 1))) for a in sa.ASPECTS}
    q = "Rate the surgeon's skill in this suturing trial on the six OSATS aspects, each as k/5."
    return Built(q, sa.answer_text(scores), [{"skill_level": level, "skill_scores": scores}])


@builder("VS")
def _vs(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    labels = [s.label for s in clip.segments() if s.label != IDLE] or ["inspection"]
    steps = ", then ".join(dict.fromkeys(labels))
    tool = clip.video.tool
    text = (f"This {clip.video.source} clip shows {steps}. The {tool} stays in the upper part of the field "
            f"and the tissue remains visible throughout.")
    if variant == "gemini":
        text = f"In this clip the team carries out {steps} using the {tool}; the field stays clear and stable."
    return Built("Summarize what happens in this video.", text, [])


@builder("RC")
def _rc(clip: Clip, rng: random.Random, variant: str) -> Built | None:
    k = rng.randrange(clip.n_frames // 2 + 1)
    label = clip.video.label_at(clip.t0 + clip.time(k))
    tool = clip.video.tool
    q = "Describe the object inside the green box and what it is doing."
    answer = f"The {tool} inside the green box is {'idle' if label == IDLE else 'used for ' + label}."
    if variant == "gemini":
        answer = f"A {tool} is highlighted by the box; it is {'at rest' if label == IDLE else 'performing ' + label}."
    struc = [{"struc_info": {"start": clip.time(k), "end": clip.time(clip.n_frames - 1), "object": tool},
              "question": q}]
    return Built(q, answer, struc, {"start_frame": clip.frame_path(k), "start_frame_bbox": clip.box(k)})
