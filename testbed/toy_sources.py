"""Tiny synthetic releases of the 8 builder sources, written in their published (or documented
intermediate) layouts by test code: never real data. Each writer returns the root it wrote."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from data_preprocess.builder.config import DEFAULT_CONFIG


def write_video(path: Path, seconds: float, fps: int = 2, size: tuple[int, int] = (32, 24)) -> Path:
    """A small MPEG-4 video whose frame i is a flat grey of value (10 * i) % 256."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((size[1], size[0], 3), (10 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_images(folder: Path, names: Sequence[str], size: tuple[int, int] = (100, 50)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", size, (i % 256, 40, 80)).save(folder / name)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


# ---- CholecT50: videos/VID01/000000.png (1 fps), labels/VID01.json ---------------------------------
CT50_PHASES = ["preparation", "carlot-triangle-dissection", "clipping-and-cutting", "gallbladder-dissection",
               "gallbladder-packaging", "cleaning-and-coagulation", "gallbladder-extraction"]


def cholect50(root: Path, seconds: int = 60, release2: bool = False) -> Path:
    """`release2`: every box slot -1, as in the public Release 2.0."""
    cats = {"instrument": {"0": "grasper", "1": "bipolar", "2": "hook"},
            "verb": {"0": "grasp", "1": "retract", "2": "dissect", "9": "null_verb"},
            "target": {"0": "gallbladder", "1": "cystic_duct", "14": "null_target"},
            "triplet": {"0": "grasper,retract,gallbladder", "1": "hook,dissect,cystic_duct",
                        "2": "grasper,null_verb,null_target"},
            "phase": dict(enumerate(CT50_PHASES))}
    cats["phase"] = {str(k): v for k, v in cats["phase"].items()}
    annotations = {}
    for t in range(seconds):
        phase = 0 if t < 20 else 1 if t < 45 else 2
        box = [0.1, 0.2, 0.3, 0.4] if t < 30 and not release2 else [-1, -1, -1, -1]
        vectors = [[0, 0, 1, *box, 1, 0, 1, -1, -1, -1, -1, phase]]
        if phase == 1:
            vectors.append([1, 2, 1, -1, -1, -1, -1, 2, 1, 1, -1, -1, -1, -1, phase])
        if phase == 0 and t % 2:
            vectors.append([2, 0, 1, -1, -1, -1, -1, 9, 14, 1, -1, -1, -1, -1, phase])
        annotations[str(t)] = vectors
    label = {"video": 1, "fps": 1, "num_frames": seconds, "categories": cats, "annotations": annotations}
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "VID01.json").write_text(json.dumps(label))
    write_images(root / "videos" / "VID01", [f"{t:06d}.png" for t in range(seconds)])
    return root


# ---- CholecTrack20 as released: <split>/VIDxx/VIDxx.json (or vidxx.json) + Frames/ (Testing: an MP4) ---
CT20_TOOLS = [{"id": 0, "name": "grasper"}, {"id": 1, "name": "bipolar"}, {"id": 2, "name": "hook"}]


def cholectrack20_video(folder: Path, seq: int, seconds: int, json_name: str | None = None,
                        mp4: bool = False) -> Path:
    """One video: the JSON (`categories.tools` as {id, name} objects, `num_frames` = annotated 1-fps frames),
    and Frames/000001.png, 000026.png, ... or, for the Testing split, `<VIDxx>.mp4` (25 fps) instead."""
    ann: dict[str, list[dict[str, Any]]] = {}
    for t in range(seconds):
        objs = [{"instrument": 0, "tool_bbox": [0.1, 0.1, 0.2, 0.2], "intraoperative_track": 1,
                 "intracorporeal_track": 5, "visibility_track": 7, "phase": 1, "operator": 1}]
        if t >= 10:
            objs.append({"instrument": 2, "tool_bbox": [0.5, 0.5, 0.25, 0.25], "intraoperative_track": 3,
                         "intracorporeal_track": 6, "visibility_track": 8, "phase": 1, "operator": 2})
        ann[str(1 + 25 * t)] = objs
    split = folder.parent.name
    data = {"video": {"seq": seq, "split": split, "height": 480, "width": 854, "num_frames": seconds},
            "categories": {"tools": CT20_TOOLS, "operator": [{"id": 1, "name": "MSLH"}, {"id": 2, "name": "MSRH"}]},
            "annotations": ann}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (json_name or f"{folder.name}.json")).write_text(json.dumps(data))
    if mp4:
        write_video(folder / f"{folder.name}.mp4", seconds, fps=5, size=(854, 480))
    else:
        write_images(folder / "Frames", [f"{1 + 25 * t:06d}.png" for t in range(seconds)], (854, 480))
    return folder


def cholectrack20(root: Path, seconds: int = 30, all_splits: bool = False) -> Path:
    """Training/VID02 (VID02.json + Frames); with `all_splits` also Validation/VID05 (`vid05.json`) and
    Testing/VID12 (an MP4, no Frames/)."""
    cholectrack20_video(root / "Training" / "VID02", 2, seconds)
    if all_splits:
        cholectrack20_video(root / "Validation" / "VID05", 5, seconds, json_name="vid05.json")
        cholectrack20_video(root / "Testing" / "VID12", 12, seconds, mp4=True)
    return root


# ---- Cholec80-CVS: surgeons_annotations.xlsx + videos/video01.mp4 -----------------------------------
CVS_HEADER = ["Video", "Initial Minute", "Initial Second", "Final Minute", "Final Second", "Two Structures",
              "Cystic Plate", "Hepatocystic Triangle", "Total", "Critical View"]
CVS_ROWS = [[1, 0, 2, 0, 12, 2, 1, 0, 3, 0], [1, 0, 20, 0, 20, 1, 1, 1, 3, 0], [1, 0, 30, 0, 38, 2, 2, 2, 6, 1]]


def cholec80_cvs(root: Path, with_video: bool = True) -> Path:
    import openpyxl

    root.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [CVS_HEADER, *CVS_ROWS]:
        sheet.append(row)
    book.save(root / "surgeons_annotations.xlsx")
    if with_video:
        write_video(root / "videos" / "video01.mp4", 40, fps=2)
    return root


# ---- JIGSAWS: Suturing/meta_file_Suturing.txt, transcriptions/, video/ -----------------------------
def jigsaws(root: Path, with_video: bool = True) -> Path:
    folder = root / "Suturing"
    (folder / "transcriptions").mkdir(parents=True, exist_ok=True)
    (folder / "meta_file_Suturing.txt").write_text(
        "Suturing_B001\tN\t13\t2\t2\t2\t2\t2\t3\n"
        "Suturing_E001\tE\t25\t4\t5\t4\t4\t4\t4\n"
        "Suturing_C009\tI\n")
    (folder / "transcriptions" / "Suturing_B001.txt").write_text("0 89 G1\n90 299 G2\n")
    (folder / "transcriptions" / "Suturing_E001.txt").write_text("0 149 G1\n150 359 G3\n")
    if with_video:
        write_video(folder / "video" / "Suturing_B001_capture1.avi", 10, fps=2)
        write_video(folder / "video" / "Suturing_E001_capture1.avi", 12, fps=2)
    return root


# ---- NurViD as in its repository: annotations/NurViD_annotations.json + annotations/Procedure&Action_ID.xlsx --
NURVID_ID = "nurvid0000a"
NURVID_PROCEDURES = [(7, "Bed shampoo")]  # English names as the table spells them (case differs from nap_classes)
NURVID_ACTIONS = [(70, "Moisten hair"), (71, "Apply shampoo"), (72, "Rinse shampoo"), (73, "Dry hair")]


def nurvid_table(path: Path) -> Path:
    """The ID table laid out as released: a merged group row (Procedure | Action), then two blocks of
    ID, Chinese name, English name, ... side by side (a spacer column between them)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Procedure", None, None, None, None, None, "Action", None, None, None])
    sheet.append(["ID", "Chinese name", "English name", " Abbreviation", "Split", None, "ID", "Chinese name",
                  "English name", "Split"])
    rows = max(len(NURVID_PROCEDURES), len(NURVID_ACTIONS))
    for i in range(rows):
        proc = NURVID_PROCEDURES[i] if i < len(NURVID_PROCEDURES) else None
        act = NURVID_ACTIONS[i] if i < len(NURVID_ACTIONS) else None
        left = [proc[0], "-", proc[1], "BS", "Few"] if proc else [None] * 5
        right = [act[0], "-", act[1], "Few" if i == 0 else None] if act else [None] * 4
        sheet.append([*left, None, *right])
    sheet.merge_cells("A1:E1")
    sheet.merge_cells("G1:J1")
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def nurvid(root: Path, videos: Path | None = None, flat: bool = False) -> Path:
    """The repository layout (`flat`: the JSON and a flat `Procedure&Action_ID.csv` in --root itself).
    One segment names action id 99, which the table lacks (left out with a warning)."""
    folder = root if flat else root / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    if flat:
        write_csv(folder / "Procedure&Action_ID.csv", ["Procedure ID", "Procedure", "Action ID", "Action"],
                  [[7, "bed shampoo", 70, "Moisten hair"], ["", "", 71, "Apply shampoo"],
                   ["", "", 72, "Rinse shampoo"], ["", "", 73, "Dry hair"]])
    else:
        nurvid_table(folder / "Procedure&Action_ID.xlsx")
    segments = [(70, [2.0, 14.0]), (71, [20.0, 30.0]), (72, [35.0, 50.0]), (73, [52.0, 52.0]), (99, [54.0, 58.0])]
    ann = {NURVID_ID: {"operationID": 7, "duration": 60, "resolution": "64x36", "fps": 30, "subset": None,
                       "url": "", "annotations": [{"actionID": a, "segment": s} for a, s in segments]}}
    (folder / "NurViD_annotations.json").write_text(json.dumps(ann))
    if videos is not None:
        write_video(videos / f"{NURVID_ID}.mp4", 60, fps=2, size=(64, 36))
    return root


# ---- AVOS (intermediate): avos_segments.csv, avos_boxes.json ----------------------------------------
AVOS_ID = "kcOqlifSukA"


def avos(root: Path, videos: Path | None = None) -> Path:
    labels = ["background", "cutting", "cutting", "cutting", "tying", "tying", "background", "suturing",
              "suturing", "suturing", "suturing", "cutting"]
    # segment 3: labelers 1 and 2 say cutting/tying, labeler 3 breaks the tie with cutting
    rows = [[AVOS_ID, 5 * i, lab, lab if i != 3 else "tying", "" if i != 3 else "cutting"]
            for i, lab in enumerate(labels)]
    write_csv(root / "avos_segments.csv", ["video_id", "start_seconds", "labeler_1", "labeler_2", "labeler_3"], rows)
    boxes = [{"time": float(t), "label": "scalpel", "track": "7", "left": 0.25, "top": 0.5, "width": 0.25,
              "height": 0.25} for t in range(0, 60, 1)]
    (root / "avos_boxes.json").write_text(json.dumps({AVOS_ID: {"width": 64, "height": 36, "boxes": boxes}}))
    if videos is not None:
        write_video(videos / f"{AVOS_ID}.mp4", 60, fps=2, size=(64, 36))
    return root


# ---- CoPESD (intermediate): copesd_annotations.json + high_light_images/<id>/0001.jpg ---------------
COPESD_ID = "case01_part1"


def copesd(root: Path, seconds: int = 60, llava: bool = False) -> Path:
    motions = [{"label": "dissect flap with knife", "start": 0, "end": 15},
               {"label": "hold flap with forceps", "start": 15, "end": 33},
               {"label": "adjust camera", "start": 33, "end": 60}]
    boxes = [{"time": float(t), "label": "Forceps", "track": "forceps", "bbox": [0.1, 0.1, 0.3, 0.5]}
             for t in range(seconds)]
    ann = {COPESD_ID: {"frames": "high_light_images/023521", "pattern": "{n:04d}.jpg", "fps": 1.0,
                       "first_frame": 1, "width": 1920, "height": 1080, "motions": motions, "boxes": boxes}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "copesd_annotations.json").write_text(json.dumps(ann))
    write_images(root / "high_light_images" / "023521", [f"{n:04d}.jpg" for n in range(1, seconds + 1)], (192, 108))
    if llava:  # the released LLaVA-style file: Knife boxes on frames 0005 and 0006 (4 s and 5 s)
        items = [{"image": f"CoPESD/high_light_images/023521/{n:04d}.jpg",
                  "conversations": [{"from": "human", "value": "<image>\nWhere are the tools?"},
                                    {"from": "gpt", "value": "Knife[0.5, 0.5, 0.75, 1.0] is cutting."}]}
                 for n in (5, 6)]
        (root / "copesd_llava_train.json").write_text(json.dumps(items))
    return root


# ---- CoPESD as distributed: high_light_images/<folder>/<n>.jpg + a LLaVA-style JSON per image ---------
COPESD_FOLDER = "023521"
COPESD_IMAGES = "high_light_images"
# (first image, last image, instruction) in our own words; each maps to one motion class by MOTION_RULES.
COPESD_MOTIONS = [(1, 15, "Cut through the submucosa beneath the flap using the knife."),
                  (16, 33, "Keep the flap steady with the forceps."),
                  (34, 59, "Adjust the camera so the whole lesion is visible.")]


def copesd_release(root: Path, seconds: int = 60) -> Path:
    """Images 0001-00NN (1 fps assumed) and `copesd_llava_train.json`; image NN's instruction matches no
    motion class (left without a motion, warned)."""
    items = []
    for n in range(1, seconds + 1):
        text = next((t for a, b, t in COPESD_MOTIONS if a <= n <= b), "Wait until the bleeding has stopped.")
        items.append({"image": f"D:/data/ESD/{COPESD_IMAGES}/{COPESD_FOLDER}/{n:04d}.jpg",
                      "conversations": [{"from": "human", "value": f"<image>\n{text}"},
                                        {"from": "gpt", "value": "Forceps[0.10, 0.10, 0.30, 0.50] holds the edge "
                                                                 "and Knife[0.50, 0.50, 0.75, 1.00] waits."}]})
    root.mkdir(parents=True, exist_ok=True)
    (root / "copesd_llava_train.json").write_text(json.dumps(items))
    write_images(root / COPESD_IMAGES / COPESD_FOLDER, [f"{n:04d}.jpg" for n in range(1, seconds + 1)], (192, 108))
    return root


# ---- EgoSurgery as released: images/<n>/<n>_<k>_<frame>.jpg + annotations/phase + annotations/bbox (COCO) ---
EGO_TAKE = "01_1"
EGO_PHASES = [(0, 30, "disinfection"), (30, 80, "incision"), (80, 120, "closure")]


def egosurgery_release(root: Path, seconds: int = 120, step: int = 60) -> Path:
    """One take of `seconds` with a JPEG every `step` frames at 30 fps (0.5 fps by default), its phase
    CSV, and COCO tool and hand boxes on the frames of the first half."""
    frames = list(range(0, seconds * 30, step))
    names = [f"{EGO_TAKE}_{f:06d}.jpg" for f in frames]
    write_images(root / "images" / EGO_TAKE.split("_")[0], names, (192, 108))
    rows = [[Path(n).stem, next(p for a, b, p in EGO_PHASES if a <= f / 30 < b)]
            for n, f in zip(names, frames, strict=True)]
    write_csv(root / "annotations" / "phase" / f"{EGO_TAKE}.csv", ["Frame", "Phase"], rows)
    images = [{"id": i, "file_name": n, "width": 192, "height": 108} for i, n in enumerate(names)]
    for kind, name, bbox in (("tools", "scissors", [10, 20, 20, 20]), ("hands", "own hands left", [100, 50, 40, 30])):
        anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": bbox} for i, f in enumerate(frames)
                if f / 30 < seconds / 2]
        coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": name}]}
        path = root / "annotations" / "bbox" / "by_split" / kind / "train.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco))
    return root


# ---- EgoSurgery (intermediate): videos.csv, phases.csv, boxes.csv ------------------------------------
EGO_ID = "ego_01"


def egosurgery(root: Path, videos: Path | None = None) -> Path:
    write_csv(root / "videos.csv", ["video_id", "fps", "duration", "width", "height", "procedure"],
              [[EGO_ID, 30, 60, 192, 108, "skin lesion excision"]])
    write_csv(root / "phases.csv", ["video_id", "start", "end", "phase"],
              [[EGO_ID, 0, 16, "disinfection"], [EGO_ID, 16, 40, "incision"], [EGO_ID, 40, 60, "closure"]])
    write_csv(root / "boxes.csv", ["video_id", "time", "label", "track", "x1", "y1", "x2", "y2"],
              [[EGO_ID, t, "scissors", "s1", 10, 20, 30, 40] for t in range(0, 30)])
    if videos is not None:
        write_video(videos / f"{EGO_ID}.mp4", 60, fps=2, size=(192, 108))
    return root


WRITERS = {"cholect50": cholect50, "cholectrack20": cholectrack20, "cholec80_cvs": cholec80_cvs,
           "jigsaws": jigsaws, "nurvid": nurvid, "avos": avos, "copesd": copesd, "egosurgery": egosurgery}
# The published layouts (what write_all writes): CholecT50 Release 2.0 (boxes -1), CholecTrack20's three
# splits, NurViD's repository layout, CoPESD's distributed form, EgoSurgery's JPEG frames.
RELEASES = {"cholect50": lambda root, videos: cholect50(root, release2=True),
            "cholectrack20": lambda root, videos: cholectrack20(root, all_splits=True),
            "cholec80_cvs": lambda root, videos: cholec80_cvs(root, videos is not None),
            "jigsaws": lambda root, videos: jigsaws(root, videos is not None),
            "nurvid": nurvid, "avos": avos,
            "copesd": lambda root, videos: copesd_release(root),
            "egosurgery": lambda root, videos: egosurgery_release(root)}
NEEDS_VIDEOS_DIR = {"nurvid", "avos"}


def write_all(base: Path, with_videos: bool = True) -> Path:
    """Every source under base/<name> in its published layout (videos under base/videos), and
    base/sources.yaml for --all."""
    videos = base / "videos" if with_videos else None
    entries = []
    for name, writer in RELEASES.items():
        writer(base / name, videos)
        entries.append({"source": name, "root": name,
                        **({"videos": "videos"} if videos and name in NEEDS_VIDEOS_DIR else {})})
    (base / "sources.yaml").write_text(yaml.safe_dump({"sources": entries}))
    return base / "sources.yaml"


def small_config(path: Path, **task_overrides: dict[str, Any]) -> Path:
    """The default builder config with shorter windows, so 1-minute fixture videos yield several clips."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    small = {"TAG": {"clip_len": 30, "stride": 20}, "DVC": {"clip_len": 40, "stride": 20},
             "VS": {"clip_len": 40, "stride": 40}, "NAP": {"clip_len": 10, "horizon": 5},
             "STG": {"clip_len": 10, "stride": 10}}
    for task, over in {**small, **task_overrides}.items():
        data["task_defaults"][task].update(over)
    path.write_text(yaml.safe_dump(data))
    return path


def fill_captions(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the caption stage does to facts records (issue 13), with fixed placeholder captions."""
    out = []
    for rec in records:
        rec = json.loads(json.dumps(rec))
        facts = rec.pop("caption_facts", None)
        if facts is not None:
            if facts["task"] == "dvc":
                lines = [f"{s['start']:.1f}-{s['end']:.1f} seconds: {s['label']}: the {s['label']} step."
                         for s in facts["segments"]]
                rec["conversations"][1]["value"] = "\n".join(lines)
                for item in rec["struc_info"]:
                    for span in item.get("spans", item.get("dc_segments", [])):
                        span["caption"] = f"the {item.get('action', 'action')} step."
            else:
                rec["conversations"][1]["value"] = f"A {facts['task']} caption of {facts['source']}."
            rec["qa_type"] += "_gpt"
        out.append(rec)
    return out


# ---- A synthetic root sized like the releases (canonical JSON, one file per source) --------------------------
# Counts and lengths are our estimates from the releases' published descriptions (sources.md): CholecT50 50
# videos (~28 h, Release 2.0 without boxes), CholecTrack20 20 videos with ~65k tool boxes at 1 fps,
# Cholec80-CVS 572 scored segments over 80 videos, JIGSAWS 103 scored trials of 1-4 min, NurViD 1,538
# videos (144 h, sparse actions), AVOS 1,997 videos (47 h annotated, 5-s segments), CoPESD ~17.7k images in
# 100 folders at 1 fps with two tools each, EgoSurgery 21 takes (~15 h) at 0.5 fps with ~15k boxed frames.
def _runs(rng: Any, duration: float, labels: Sequence[str], short: float, long: float, gap: float = 0.0,
          ordered: bool = False) -> list[tuple[str, float, float]]:
    """Consecutive labelled runs over [0, duration): lengths uniform(short, long), gaps up to `gap`."""
    out, t, i = [], 0.0, 0
    while t < duration - 1:
        length = min(rng.uniform(short, long), duration - t)
        label = labels[min(i, len(labels) - 1)] if ordered else rng.choice(labels)
        out.append((label, round(t, 1), round(t + length, 1)))
        t += length + (rng.uniform(0, gap) if gap else 0.0)
        i += 1
    return out


def _video(source: str, vid: str, fps: float, duration: float, frames: dict, **kw: Any) -> dict[str, Any]:
    return {"source": source, "video_id": vid, "fps": fps, "duration": float(duration), "frames": frames, **kw}


def _track(rng: Any, duration: float, label: str, track: str, step: float, on: tuple[float, float],
           off: tuple[float, float]) -> list[dict[str, Any]]:
    boxes, t = [], rng.uniform(0, off[1])
    while t < duration:
        end = min(duration, t + rng.uniform(*on))
        while t < end:
            x = rng.uniform(0, 500)
            boxes.append({"time": round(t, 1), "label": label, "track": track, "xyxy": [x, 100, x + 200, 300]})
            t += step
        t += rng.uniform(*off)
    return boxes


def release_sized(root: Path, scale: float = 1.0, seed: int = 0) -> Path:
    """Canonical JSON of all 8 sources sized like the releases (times `scale`), under `root`; returns root."""
    import random

    from reward_fns.tasks.nap import class_table

    rng = random.Random(seed)
    n = lambda count: max(1, round(count * scale))  # noqa: E731
    table = class_table()
    files: dict[str, list[dict[str, Any]]] = {}
    cholec = []
    for i in range(n(50)):
        d = rng.randint(1200, 2800)
        segs = [{"label": p, "start": a, "end": b, "kind": "phase"}
                for p, a, b in _runs(rng, d, CT50_PHASES, d / 10, d / 5, ordered=True)]
        cholec.append(_video("CholecT50", f"VID{i + 1:02d}", 1.0, d, {"kind": "folder", "path": f"videos/VID{i:02d}",
                             "pattern": "{n:06d}.png"}, width=854, height=480, segments=segs))
    files["CholecT50"] = cholec
    files["CholecTrack20"] = [
        _video("CholecTrack20", f"vid{i + 111:03d}", 25.0, d, {"kind": "folder", "path": f"Training/VID{i}/Frames",
               "pattern": "{n:06d}.png", "index_fps": 25.0, "offset": 1}, width=854, height=480,
               boxes=[b for k, tool in enumerate(("grasper", "hook", "clipper"))
                      for b in _track(rng, d, tool, str(k), 1.0, (20, 120), (10, 90))])
        for i, d in ((i, rng.randint(1200, 2400)) for i in range(n(20)))]
    cvs = []
    for i in range(n(80)):
        d, scores, t = rng.randint(1500, 3000), [], rng.uniform(200, 600)
        for _ in range(7 if i % 7 else 8):
            length = rng.uniform(10, 150)
            scores.append({"start": round(t, 1), "end": round(t + length, 1), "kind": "cvs",
                           "values": {k: rng.randint(0, 2) for k in ("two_structures", "cystic_plate",
                                                                     "hepatocystic_triangle")}})
            t += length + rng.uniform(5, 60)
        cvs.append(_video("Cholec80-CVS", f"video{i + 1:02d}", 25.0, max(d, t + 1), {"kind": "video", "path": "x"},
                          width=854, height=480, scores=scores))
    files["Cholec80-CVS"] = cvs
    aspects = ("Respect for tissue", "Suture/needle handling", "Time and motion", "Flow of operation",
               "Overall performance", "Quality of final product")
    files["JIGSAWS"] = [
        _video("JIGSAWS", f"Trial_{i:03d}", 30.0, d, {"kind": "video", "path": "x"}, width=640, height=480,
               procedure="robotic suturing",
               segments=[{"label": g, "start": a, "end": b, "kind": "gesture"}
                         for g, a, b in _runs(rng, d, [f"G{k}" for k in range(1, 12)], 3, 15)],
               scores=[{"start": 0.0, "end": float(d), "kind": "skill", "level": rng.choice("NIE"),
                        "values": {a: rng.randint(1, 5) for a in aspects}}])
        for i, d in ((i, rng.randint(40, 240)) for i in range(n(103)))]
    procedures = sorted(table["NurViD_by_procedure"])
    nurvid = []
    for i in range(n(1538)):
        d, procedure = rng.randint(30, 650), rng.choice(procedures)
        actions = table["NurViD_by_procedure"][procedure]
        segs = [{"label": a, "start": s, "end": e, "kind": "action"}
                for a, s, e in _runs(rng, d, actions, 4, 60, gap=60)]
        nurvid.append(_video("NurViD", f"nv{i:09d}", 30.0, d, {"kind": "video", "path": "x"}, width=1280,
                             height=720, procedure=procedure, segments=segs))
    files["NurViD"] = nurvid
    avos = []
    for i in range(n(1997)):
        d = rng.randint(6, 28) * 5
        segs = [{"label": a, "start": s, "end": e, "kind": "action"}
                for a, s, e in _runs(rng, d, ["cutting", "tying", "suturing"], 10, 45, gap=15)]
        boxes = _track(rng, d, "hand", "1", 1.0, (15, 40), (20, 80)) if i % 10 == 0 else []
        avos.append(_video("AVOS", f"av{i:09d}", 15.0, d, {"kind": "video", "path": "x"}, width=640, height=360,
                           segments=segs, boxes=boxes))
    files["AVOS"] = avos
    copesd = []
    for i in range(n(100)):
        d = rng.randint(60, 300)
        segs = [{"label": m, "start": s, "end": e, "kind": "motion"}
                for m, s, e in _runs(rng, d, table["CoPESD"], 3, 30)]
        boxes = [{"time": float(t), "label": tool, "track": tool.lower(), "xyxy": [100, 100, 400, 500]}
                 for t in range(d) for tool in ("Forceps", "Knife")]
        copesd.append(_video("CoPESD", f"{23000 + i:06d}", 1.0, d, {"kind": "folder", "path": f"high_light_images/{i}",
                             "pattern": "{n:04d}.jpg", "offset": 1}, width=1920, height=1080, segments=segs,
                             boxes=boxes))
    files["CoPESD"] = copesd
    ego_phases = ["disinfection", "design", "anesthesia", "incision", "dissection", "hemostasis", "irrigation",
                  "closure", "dressing"]
    files["EgoSurgery"] = [
        _video("EgoSurgery", f"{i + 1:02d}_1", 30.0, d, {"kind": "folder", "path": f"images/{i + 1:02d}",
               "pattern": f"{i + 1:02d}_1_{{n:06d}}.jpg", "index_fps": 30.0, "rate": 0.5}, width=1920, height=1080,
               segments=[{"label": p, "start": a, "end": b, "kind": "phase"}
                         for p, a, b in _runs(rng, d, ego_phases, d / 14, d / 7, ordered=True)],
               boxes=[b for k, tool in enumerate(("scissors", "forceps")) for b in
                      _track(rng, d, tool, str(k), 2.0, (30, 120), (60, 200))])
        for i, d in ((i, rng.randint(1500, 3600)) for i in range(n(21)))]
    root.mkdir(parents=True, exist_ok=True)
    for source, videos in files.items():
        (root / f"{source}.json").write_text(json.dumps(videos))
    return root
