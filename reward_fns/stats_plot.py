"""A report-ready picture of raw-reward distributions per (data_source, task), median and IQR marked."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from reward_fns.atomic_io import atomic_path
from reward_fns.normalize import DEFAULT_EPS, RewardStats


def plot_distributions(grouped: Mapping[tuple[str, str], Sequence[float]], stats: RewardStats,
                       out: str | Path, columns: int = 4, eps: float = DEFAULT_EPS) -> None:
    """Histogram per pair; a pair whose IQR falls below `eps` gets a red title (step-like reward)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted(grouped)
    rows = max(1, math.ceil(len(pairs) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for ax, (source, task) in zip(axes.flat, pairs, strict=False):
        s = stats.get(source, task)
        ax.hist(grouped[(source, task)], bins=20, range=(0, 1), color="#4C72B0", alpha=0.85)
        if s is not None:
            ax.axvspan(s.p25, s.p75, color="#DD8452", alpha=0.25, label=f"IQR {s.iqr:.2f}")
            ax.axvline(s.p50, color="#C44E52", linewidth=2, label=f"median {s.p50:.2f}")
            ax.legend(fontsize=7, loc="upper right")
        flat = s is not None and s.iqr < eps
        ax.set_title(f"{source} · {task} (n={len(grouped[(source, task)])})" + (" IQR<eps" if flat else ""),
                     fontsize=9, color="#C44E52" if flat else "black")
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.suptitle("Raw reward of SFT rollouts per (data_source, task): logistic normalization maps the "
                 "median to 0.5", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
