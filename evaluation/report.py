"""The benchmark table as Markdown, in the paper's column order."""

from __future__ import annotations

from collections.abc import Mapping

from evaluation.aggregate import COLUMNS

HEADERS: dict[str, str] = {
    "cvs_acc": "CVS acc", "nap_acc": "NAP acc", "sa_acc": "SA acc", "stg_miou": "STG mIoU",
    "tag_miou_03": "TAG mIoU@0.3", "tag_miou_05": "TAG mIoU@0.5", "dvc_llm": "DVC llm",
    "dvc_f1": "DVC F1", "vs_llm": "VS llm", "rc_llm": "RC llm",
}
PAPER_ROWS: dict[str, dict[str, float]] = {  # Qwen2.5-VL-7B, spec section 4
    "paper SFT": dict(zip(HEADERS, (0.894, 0.442, 0.218, 0.177, 0.142, 0.091, 3.665, 0.165, 3.596, 2.757),
                          strict=True)),
    "paper MedGRPO": dict(zip(HEADERS, (0.914, 0.427, 0.244, 0.202, 0.216, 0.156, 3.797, 0.210, 4.184, 3.442),
                              strict=True)),
}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown_table(rows: Mapping[str, Mapping[str, float | None]]) -> str:
    """One row per named result; columns in paper order; `-` for a missing value."""
    keys = [c.key for c in COLUMNS]
    lines = ["| model | " + " | ".join(HEADERS[k] for k in keys) + " |",
             "|---|" + "---:|" * len(keys)]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(values.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def similarity_note(columns: Mapping[str, float | None]) -> str:
    """A line for the similarity fallback, reported on its own 0-1 scale."""
    sims = {k: v for k, v in columns.items() if k.endswith("_sim")}
    if not sims:
        return ""
    return "Caption similarity (MiniLM cosine, 0-1; not comparable to judge scores): " + ", ".join(
        f"{k}={_cell(v)}" for k, v in sims.items())
