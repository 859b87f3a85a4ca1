"""The benchmark table as Markdown, in the paper's column order."""

from __future__ import annotations

from collections.abc import Mapping

from reward_fns.registry import PAPER_MODELS, all_columns


def paper_rows() -> dict[str, dict[str, float]]:
    """The published Qwen2.5-VL-7B rows, read from the column declarations."""
    return {model: {c.key: c.paper[i] for c in all_columns()} for i, model in enumerate(PAPER_MODELS)}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown_table(rows: Mapping[str, Mapping[str, float | None]]) -> str:
    """One row per named result; columns in paper order; `-` for a missing value."""
    columns = all_columns()
    keys = [c.key for c in columns]
    lines = ["| model | " + " | ".join(c.header for c in columns) + " |",
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
