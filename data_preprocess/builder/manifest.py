"""`OUT.manifest.json`: counts per source/task/fps, drops with reasons, exclusion, inputs' sha256, licences."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from data_preprocess.builder.config import BuildConfig
from data_preprocess.builder.pipeline import Built


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def nested(counter: Mapping[tuple[str, ...], int]) -> dict[str, Any]:
    """{(a, b, c): n} -> {a: {b: {c: n}}}, keys sorted."""
    out: dict[str, Any] = {}
    for key in sorted(counter):
        node = out
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = counter[key]
    return out


def counts(built: Iterable[Built]) -> dict[str, Any]:
    return nested(Counter((b.video.source, b.task, f"{b.fps:.1f}") for b in built))


def inputs(files: Iterable[Path]) -> list[dict[str, Any]]:
    seen = dict.fromkeys(Path(f).resolve() for f in files)
    return [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)} for p in seen if p.is_file()]


def licences(config: BuildConfig, sources: Iterable[str]) -> dict[str, str]:
    return {s: (config.sources[s].licence if s in config.sources else "") for s in sorted(set(sources))}


# The paper's figures the built mix is compared with (MedGRPO paper; public test set counts from the spec).
PAPER = {
    "records": {"large": 531_850, "standard": 51_505},
    "fps_share": {"0.5": 63.3, "1.0": 22.0, "2.0": 7.5},  # percent of records; other rates are rare
    "clip_seconds": [20, 1800],
    "test_records": {"TAG": 1637, "DVC": 1479, "STG": 780, "NAP": 670, "CVS": 648, "VS": 565, "RC": 306, "SA": 160},
}
CLIP_BINS = ((0, 20, "<20"), (20, 60, "20-60"), (60, 300, "60-300"), (300, 900, "300-900"),
             (900, 1800.001, "900-1800"), (1800.001, float("inf"), ">1800"))


def _pct(n: float, total: float) -> float:
    return round(100 * n / total, 2) if total else 0.0


def _quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"min": values[0], "median": pick(0.5), "p90": pick(0.9), "max": values[-1]}


def mix(built: Iterable[Built], split: str, variants: int, caption_tasks: frozenset[str]) -> dict[str, Any]:
    """The built mix (per task, fps, clip length, answer length) beside the paper's figures. Shares count
    final records: a caption-facts item stands for `variants` records (the caption stage's gpt + gemini)."""
    tasks: Counter[str] = Counter()
    fps: Counter[str] = Counter()
    bins: Counter[str] = Counter()
    lengths: list[float] = []
    answers: dict[str, list[float]] = {}
    for b in built:
        weight = variants if b.task in caption_tasks else 1
        length = b.item.end - b.item.start
        tasks[b.task] += weight
        fps[f"{b.fps:.1f}"] += weight
        bins[next(name for lo, hi, name in CLIP_BINS if lo <= length < hi)] += weight
        lengths.append(length)
        if b.item.answer:
            answers.setdefault(b.task, []).append(len(b.item.answer))
    total = sum(tasks.values())
    test_total = sum(PAPER["test_records"].values())
    fps_out = {rate: {"records": fps[rate], "share": _pct(fps[rate], total), "paper_share": paper}
               for rate, paper in PAPER["fps_share"].items()}
    fps_out.update({rate: {"records": n, "share": _pct(n, total), "paper_share": None}
                    for rate, n in fps.items() if rate not in fps_out})
    diffs = [abs(v["share"] - v["paper_share"]) for v in fps_out.values() if v["paper_share"] is not None]
    paper_records = PAPER["records"][split]
    return {
        "records_final": total, "caption_variants": variants, "paper_records": paper_records,
        "ratio_to_paper": round(total / paper_records, 3),
        "tasks": {t: {"records": tasks[t], "share": _pct(tasks[t], total),
                      "test_share": _pct(PAPER["test_records"][t], test_total)} for t in PAPER["test_records"]},
        "fps": fps_out,
        "fps_max_diff_points": round(max(diffs), 2) if total else None,
        "fps_within_5_points": bool(total) and max(diffs) <= 5.0,
        "clip_seconds": {**_quantiles(lengths), "bins": {name: _pct(bins[name], total) for *_, name in CLIP_BINS},
                         "paper_range": PAPER["clip_seconds"]},
        "answer_chars": {t: _quantiles(v) for t, v in sorted(answers.items())},
        "answer_note": "caption tasks (DVC, VS, RC) get their answers in the caption stage; the paper publishes no "
                       "answer-length figures",
    }
