"""Time `evaluation.score_submission` (--judge none) on a synthetic test split with the real task mix.

    python benchmarks/score_bench.py [--records 6245] [--seed 0]

Prints the scoring time excluding the one-off MiniLM load (target: < 5 s on one core).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from reward_fns.registry import task_for_qa_type
from reward_fns.tasks import cvs, sa

TASK_MIX = {"tal": 1637, "stg": 780, "dense_captioning_gpt": 740, "dense_captioning_gemini": 739,
            "next_action": 670, "cvs_assessment": 648, "video_summary_gpt": 283, "video_summary_gemini": 282,
            "region_caption_gpt": 153, "region_caption_gemini": 153, "skill_assessment": 160}  # 6,245
SOURCES = {"tal": ["AVOS", "CholecT50", "NurViD", "CoPESD"], "stg": ["CoPESD", "EgoSurgery", "CholecTrack20"],
           "next_action": ["AVOS", "CholecT50", "CoPESD", "NurViD", "EgoSurgery"],
           "cvs_assessment": ["Cholec80-CVS"], "skill_assessment": ["JIGSAWS"]}
CAPTION_SOURCES = ["AVOS", "CholecT50", "NurViD", "CoPESD", "EgoSurgery", "CholecTrack20"]
NAP = {"AVOS": ["cutting", "tying", "suturing"], "CholecT50": ["preparation", "clipping-and-cutting"],
       "CoPESD": ["adjust camera", "lift flap with forceps"], "NurViD": ["Handwashing", "Check"],
       "EgoSurgery": ["incision", "suturing", "dissection"]}


def _jitter(rng: random.Random, x: float, scale: float) -> float:
    return round(max(0.0, x + rng.gauss(0, scale)), 1)


def _example(rng: random.Random, qa: str, src: str) -> tuple[object, str, str]:
    """(struc_info, reference answer, noisy prediction)."""
    if qa == "tal":
        spans = sorted((s, s + rng.randint(3, 40)) for s in rng.sample(range(0, 300, 5), rng.randint(1, 3)))
        answer = ", ".join(f"{s:.1f}-{e:.1f}" for s, e in spans) + " seconds."
        pred = ", ".join(f"{_jitter(rng, s, 4):.1f}-{_jitter(rng, e, 4):.1f}" for s, e in spans) + " seconds."
        return [{"action": "a", "spans": [{"start": s, "end": e} for s, e in spans]}], answer, pred
    if qa == "stg":
        boxes = {f"{t:.1f}": [rng.randint(0, 200), rng.randint(0, 200)] for t in range(1, rng.randint(3, 12))}
        boxes = {k: [x, y, x + rng.randint(20, 90), y + rng.randint(20, 90)] for k, (x, y) in boxes.items()}
        answer = " ".join(f"{k} seconds: {b}" for k, b in boxes.items())
        pred = " ".join(f"{k} seconds: {[int(_jitter(rng, v, 8)) for v in b]}" for k, b in boxes.items())
        return [{"start": 1, "end": len(boxes), "stride": 1, "object": "tool", "bbox_dict": boxes}], answer, pred
    if task_for_qa_type(qa).name == "DVC":
        cuts = sorted(rng.sample(range(1, 120), rng.randint(2, 6)))
        segs = [{"start": float(a), "end": float(b), "caption": f"step {i} with the grasper"}
                for i, (a, b) in enumerate(zip([0, *cuts], cuts, strict=False))]
        answer = "\n".join(f"{s['start']}-{s['end']} seconds: {s['caption']}" for s in segs)
        pred = "\n".join(f"{_jitter(rng, s['start'], 3)}-{_jitter(rng, s['end'], 3)} seconds: {s['caption']}"
                         for s in segs)
        return [segs], answer, pred
    if qa == "next_action":
        classes = NAP[src]
        answer = rng.choice(classes)
        pred = rng.choice([answer, rng.choice(classes), answer.upper(), f"the next step is {rng.choice(classes)}"])
        return [{"next_action": answer}], answer, pred
    if qa == "cvs_assessment":
        scores = {key: rng.randint(0, 2) for key in cvs.CRITERIA}
        pred = cvs.answer_text({key: rng.randint(0, 2) for key in cvs.CRITERIA})
        return [{"cvs_scores": scores}], cvs.answer_text(scores), pred
    if qa == "skill_assessment":
        scores = {a: rng.randint(1, 5) for a in sa.ASPECTS}
        pred = sa.answer_text({a: rng.randint(1, 5) for a in sa.ASPECTS})
        return [{"skill_level": "I", "skill_scores": scores}], sa.answer_text(scores), pred
    answer = "The surgeon dissects the gallbladder from the liver bed using a hook."
    return [], answer, "The surgeon uses a hook to separate the gallbladder."


def synthesize(n_total: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    scale = n_total / sum(TASK_MIX.values())
    gt, preds = [], []
    for qa, count in TASK_MIX.items():
        for i in range(max(1, round(count * scale))):
            src = rng.choice(SOURCES.get(qa, CAPTION_SOURCES))
            struc, answer, pred = _example(rng, qa, src)
            meta = {"video_id": f"{src}_{qa}_{i}", "fps": rng.choice(["0.5", "1.0", "2.0"]),
                    "input_video_start_frame": "0", "input_video_end_frame": "900"}
            gt.append({"conversations": [{"from": "human", "value": "<video>\nQuestion?"},
                                         {"from": "gpt", "value": answer}],
                       "video": [], "metadata": meta, "qa_type": qa, "data_source": src, "struc_info": struc})
            if rng.random() < 0.05:
                pred = "I am not sure."
            preds.append({"id": "&&".join(meta[k] for k in ("video_id", "input_video_start_frame",
                                                             "input_video_end_frame", "fps")),
                          "qa_type": qa, "prediction": pred})
    return gt, preds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=6245)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from evaluation import score_submission as score_cli
    from reward_fns.similarity import Embedder, SimilarityService

    gt, preds = synthesize(args.records, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, pred_path = Path(tmp, "gt.json"), Path(tmp, "pred.json")
        gt_path.write_text(json.dumps(gt))
        pred_path.write_text(json.dumps(preds))
        t0 = time.perf_counter()
        similarity = SimilarityService(Embedder())
        similarity.encoder.encode(["warm-up"])
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_cli.run(["--gt", str(gt_path), "--pred", str(pred_path), "--out", str(Path(tmp, "m.json"))],
                      similarity=similarity)
        elapsed = time.perf_counter() - t0
    print(f"records={len(gt)} model_load_s={load:.2f} score_s={elapsed:.2f} "
          f"records_per_s={len(gt) / elapsed:,.0f} threads={os.environ.get('OMP_NUM_THREADS', 'default')}")


if __name__ == "__main__":
    main()
