"""Caption-facts records (the builder's `--captions facts` format) for the caption-stage tests:
all three tasks, several sources, every DVC struc_info layout, real JPEG frames on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

QUESTIONS = {
    "dvc": "Describe every event of this video with its time span, one per line as "
           "'start-end seconds: action: description'.",
    "vs": "Summarize what happens in this video.",
    "rc": "Describe the object inside the green box and what it is doing.",
}
STEMS = {"dvc": "dense_captioning", "vs": "video_summary", "rc": "region_caption"}


def _frames(root: Path, source: str, video: str, n: int) -> list[str]:
    paths = []
    for k in range(n):
        rel = f"frames/{source}/{video}/{k:06d}.jpg"
        target = root / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (64, 48), (40 * (k % 6), 90, 120)).save(target, format="JPEG")
        paths.append(rel)
    return paths


def facts_record(root: Path, task: str, source: str, video: str, segments: list[dict[str, Any]],
                 procedure: str = "", directive: str = "", region: dict[str, Any] | None = None,
                 dvc_layout: str = "spans", n_frames: int = 8, fps: float = 1.0) -> dict[str, Any]:
    """One facts record; `directive` ("[review: reject_always]" ...) steers the fake reviewers."""
    frames = _frames(root, source, video, n_frames)
    question = QUESTIONS[task] + (f" {directive}" if directive else "")
    struc: list[Any] = []
    if task == "dvc" and dvc_layout == "dc_segments":
        struc = [{"dc_segments": [{"start": s["start"], "end": s["end"], "caption": ""} for s in segments]}]
    elif task == "dvc":
        by_action: dict[str, list[dict[str, Any]]] = {}
        for s in segments:
            by_action.setdefault(s["label"], []).append({"start": s["start"], "end": s["end"], "caption": ""})
        struc = [{"action": a, "spans": spans} for a, spans in by_action.items()]
    rc_info: dict[str, Any] = {}
    facts: dict[str, Any] = {"task": task, "source": source, "procedure": procedure,
                             "clip": {"start": 0.0, "end": float(n_frames - 1) / fps, "fps": fps},
                             "segments": segments, "keyframes": frames[::3]}
    if task == "rc":
        assert region is not None
        region = {**region, "frame": frames[0], "image_size": [64, 48]}
        facts["region"] = region
        struc = [{"struc_info": {"start": region["time"], "end": float(n_frames - 1) / fps, "object": region["object"]},
                  "question": question}]
        rc_info = {"start_frame": frames[0], "start_frame_bbox": region["bbox"]}
    return {
        "conversations": [{"from": "human", "value": "<video>\n" + question}, {"from": "gpt", "value": ""}],
        "video": frames,
        "metadata": {"video_id": video, "fps": str(fps), "input_video_start_frame": "0",
                     "input_video_end_frame": str(n_frames - 1)},
        "qa_type": STEMS[task], "data_source": source, "struc_info": struc, "is_RC": task == "rc",
        "RC_info": rc_info, "caption_facts": facts,
    }


def chole_segments() -> list[dict[str, Any]]:
    return [
        {"start": 0.0, "end": 3.0, "label": "carlot-triangle-dissection", "kind": "phase",
         "details": {"instruments": ["grasper", "hook"], "verbs": ["retract", "dissect"],
                     "targets": ["gallbladder", "cystic_duct"],
                     "triplets": ["grasper,retract,gallbladder", "hook,dissect,cystic_duct"]}},
        {"start": 3.0, "end": 7.0, "label": "clipping-and-cutting", "kind": "phase",
         "details": {"instruments": ["clipper"], "verbs": ["clip"], "targets": ["cystic_artery"]}},
    ]


def mixed_records(root: Path, directives: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Seven records: DVC (CholecT50 spans, NurViD dc_segments, AVOS), VS (CoPESD, EgoSurgery), RC
    (CholecTrack20, CoPESD). `directives` maps a video id to its review directive."""
    d = directives or {}
    nurse = [{"start": 0.0, "end": 2.0, "label": "Hand hygiene", "kind": "action"},
             {"start": 2.0, "end": 6.0, "label": "Disinfect the injection site", "kind": "action",
              "details": {"instruments": ["alcohol swab"]}}]
    avos = [{"start": 0.0, "end": 5.0, "label": "cutting", "kind": "action"},
            {"start": 5.0, "end": 7.0, "label": "suturing", "kind": "action",
             "details": {"instruments": ["needle driver"]}}]
    esd = [{"start": 0.0, "end": 4.0, "label": "submucosal dissection", "kind": "motion",
            "details": {"instruments": ["knife"], "anatomy": ["submucosa"]}},
           {"start": 4.0, "end": 7.0, "label": "hemostasis", "kind": "motion", "details": {"instruments": ["forceps"]}}]
    ego = [{"start": 0.0, "end": 7.0, "label": "incision", "kind": "phase"}]
    track = [{"start": 0.0, "end": 7.0, "label": "gallbladder-dissection", "kind": "phase"}]
    return [
        facts_record(root, "dvc", "CholecT50", "VID01", chole_segments(), "laparoscopic cholecystectomy",
                     d.get("VID01", "")),
        facts_record(root, "dvc", "NurViD", "nurvid1", nurse, "Subcutaneous Injection", d.get("nurvid1", ""),
                     dvc_layout="dc_segments"),
        facts_record(root, "dvc", "AVOS", "kcOqlifSukA", avos, "open surgery", d.get("kcOqlifSukA", "")),
        facts_record(root, "vs", "CoPESD", "023521_part1", esd, "endoscopic submucosal dissection",
                     d.get("023521_part1", "")),
        facts_record(root, "vs", "EgoSurgery", "ego01", ego, "", d.get("ego01", "")),
        facts_record(root, "rc", "CholecTrack20", "vid12", track, "laparoscopic cholecystectomy", d.get("vid12", ""),
                     region={"object": "grasper", "bbox": [10, 8, 40, 30], "time": 1.0}),
        facts_record(root, "rc", "CoPESD", "023522_part2", esd, "", d.get("023522_part2", ""),
                     region={"object": "knife", "bbox": [4, 4, 30, 40], "time": 2.0}),
    ]


def write_facts(root: Path, records: list[dict[str, Any]], name: str = "facts.json") -> Path:
    path = root / name
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path
