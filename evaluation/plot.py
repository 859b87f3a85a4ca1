"""Bar chart of the 10 benchmark columns next to the paper's published Qwen2.5-VL-7B rows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from evaluation.report import paper_rows
from reward_fns.atomic_io import atomic_path
from reward_fns.registry import all_columns


def plot_comparison(rows: Mapping[str, Mapping[str, float | None]], out: str | Path,
                    include_paper: bool = True) -> None:
    """One group of bars per column; judge columns (1-5) are drawn divided by 5 and say so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    named = {**(paper_rows() if include_paper else {}), **rows}
    columns = all_columns()
    width = 0.8 / len(named)
    fig, ax = plt.subplots(figsize=(12, 4.2))
    for n, (name, values) in enumerate(named.items()):
        xs, heights = [], []
        for i, column in enumerate(columns):
            value = values.get(column.key)
            if value is not None:
                xs.append(i + (n - (len(named) - 1) / 2) * width)
                heights.append(value / 5 if column.judged else value)
        ax.bar(xs, heights, width, label=name)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([c.header + (" /5" if c.judged else "") for c in columns],
                       rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (judge columns / 5)")
    ax.set_title("MedVidBench: this run vs the paper's Qwen2.5-VL-7B rows (missing bars: not computed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
