"""Agreement between two judges' scores on the same caption pairs (pure statistics and the plot).

Per dimension (R2, R3, R8, R5, R4) and for the mean of the five: Spearman's rho, Kendall's tau-b
(scipy; None when a side is constant), mean absolute difference, exact and within-one agreement,
and the 5x5 agreement matrix (rows: judge A's score 1-5, columns: judge B's; the mean is rounded
half up to 1-5 for its matrix; a score outside 1-5 is clamped to the nearest bin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DIMENSIONS: tuple[str, ...] = ("R2", "R3", "R8", "R5", "R4")
SCALE: tuple[int, ...] = (1, 2, 3, 4, 5)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def correlations(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float | None]:
    """(Spearman rho, Kendall tau-b); None where undefined (fewer than 2 pairs or a constant side)."""
    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return None, None
    from scipy import stats

    return (_finite_or_none(stats.spearmanr(a, b).statistic),
            _finite_or_none(stats.kendalltau(a, b, variant="b").statistic))


def _bin(score: float) -> int:
    return min(5, max(1, math.floor(score + 0.5)))


def agreement_matrix(a: Sequence[float], b: Sequence[float]) -> list[list[int]]:
    """5x5 counts: row = judge A's score, column = judge B's (1-5)."""
    matrix = [[0] * len(SCALE) for _ in SCALE]
    for x, y in zip(a, b, strict=True):
        matrix[_bin(x) - 1][_bin(y) - 1] += 1
    return matrix


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """All agreement figures for one dimension (paired scores of the pairs both judges scored)."""
    rho, tau = correlations(a, b)
    n = len(a)
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
    return {
        "n": n, "spearman": rho, "kendall": tau,
        "mean_abs_diff": sum(diffs) / n if n else None,
        "exact": sum(d == 0 for d in diffs) / n if n else None,
        "within_1": sum(d <= 1 for d in diffs) / n if n else None,
        "mean_a": sum(a) / n if n else None, "mean_b": sum(b) / n if n else None,
        "matrix": agreement_matrix(a, b),
    }


def compare_judges(scores_a: Sequence[Mapping[str, int] | None],
                   scores_b: Sequence[Mapping[str, int] | None]) -> dict[str, dict[str, Any]]:
    """Per dimension and `mean`, over the pairs both judges scored (None = that judge failed)."""
    both = [(x, y) for x, y in zip(scores_a, scores_b, strict=True) if x is not None and y is not None]
    out = {d: compare([x[d] for x, _ in both], [y[d] for _, y in both]) for d in DIMENSIONS}
    out["mean"] = compare([sum(x[d] for d in DIMENSIONS) / len(DIMENSIONS) for x, _ in both],
                          [sum(y[d] for d in DIMENSIONS) / len(DIMENSIONS) for _, y in both])
    return out


def plot_matrices(report: Mapping[str, Any], out: str | Path) -> None:
    """One heatmap per dimension and the mean, with Spearman / Kendall / MAD in each title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reward_fns.atomic_io import atomic_path

    names = [*DIMENSIONS, "mean"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.4), squeeze=False)
    label_a, label_b = (report["judges"][k]["model"] for k in ("a", "b"))
    for ax, name in zip(axes[0], names, strict=True):
        stats = report["dimensions"][name]
        ax.imshow(stats["matrix"], cmap="Blues", origin="lower")
        for i, row in enumerate(stats["matrix"]):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(5), [str(s) for s in SCALE])
        ax.set_yticks(range(5), [str(s) for s in SCALE])
        ax.set_xlabel(f"B: {label_b}", fontsize=8)
        ax.set_ylabel(f"A: {label_a}", fontsize=8)
        ax.set_title(f"{name}  rho={_fmt(stats['spearman'])} tau={_fmt(stats['kendall'])}\n"
                     f"MAD={_fmt(stats['mean_abs_diff'])} n={stats['n']}", fontsize=8)
    fig.suptitle("Judge agreement (rows: judge A, columns: judge B)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
