"""QA report of a caption run: acceptance per (source, task, variant), rounds, rejection reasons,
agreement between the two models, tokens and cost; and a PNG of the same."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data_preprocess.caption_writer.pipeline import Outcome
from reward_fns.atomic_io import atomic_path

TOP_REASONS = 10


def build_report(outcomes: Sequence[Outcome], usage: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    status = Counter(o.status for o in outcomes)
    groups: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[(o.source, o.task, o.variant)].append(o)
    problems = Counter(_reason_key(p) for o in outcomes for r in o.rounds if not r["accept"] for p in r["problems"])
    errors = Counter(_reason_key(o.reason) for o in outcomes if o.status == "error")
    return {
        "settings": dict(settings),
        "totals": {"jobs": len(outcomes), "accepted": status["accepted"], "rejected": status["rejected"],
                   "error": status["error"], "acceptance_rate": _rate(status["accepted"], len(outcomes))},
        "groups": [_group(key, members) for key, members in sorted(groups.items())],
        "rounds_needed": _rounds(outcomes),
        "top_rejection_reasons": [{"problem": p, "count": n} for p, n in problems.most_common(TOP_REASONS)],
        "top_error_reasons": [{"reason": p, "count": n} for p, n in errors.most_common(TOP_REASONS)],
        "agreement": agreement(outcomes),
        "usage": dict(usage),
        "dropped": [{"index": o.index, "source": o.source, "task": o.task, "variant": o.variant,
                     "status": o.status, "reason": o.reason,
                     "last_problems": o.rounds[-1]["problems"] if o.rounds else []}
                    for o in outcomes if o.status != "accepted"],
    }


def agreement(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """How the two models judge the same items: first-round verdicts of the `gpt` and `gemini` jobs of
    each item (each model reviewing the other's caption), their raw agreement and Cohen's kappa, and
    how often both variants end the same way (both kept or both dropped)."""
    by_item: dict[int, dict[str, Outcome]] = defaultdict(dict)
    for o in outcomes:
        by_item[o.index][o.variant] = o
    pairs = [(v["gpt"], v["gemini"]) for v in by_item.values() if "gpt" in v and "gemini" in v]
    first = [(a.rounds[0]["accept"], b.rounds[0]["accept"]) for a, b in pairs if a.rounds and b.rounds]
    table = Counter(first)
    n = len(first)
    observed = _rate(table[(True, True)] + table[(False, False)], n)
    kappa = None
    if n:
        pa, pb = sum(a for a, _ in first) / n, sum(b for _, b in first) / n
        chance = pa * pb + (1 - pa) * (1 - pb)
        kappa = None if chance >= 1.0 else (observed - chance) / (1 - chance)  # type: ignore[operator]
    final = [(a.status == "accepted") == (b.status == "accepted") for a, b in pairs]
    return {"items_with_both": len(pairs), "first_round_pairs": n,
            "both_accept": table[(True, True)], "both_reject": table[(False, False)],
            "only_gpt_accepted": table[(True, False)], "only_gemini_accepted": table[(False, True)],
            "first_round_agreement": observed, "cohen_kappa": kappa,
            "final_agreement": _rate(sum(final), len(final))}


def write_plot(report: Mapping[str, Any], path: str | Path) -> None:
    """A 2x2 PNG: acceptance per group, rounds needed, top rejection reasons, tokens and cost per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    groups = report["groups"]
    names = [f"{g['source']}/{g['task']}/{g['variant']}" for g in groups]
    ax = axes[0][0]
    ax.barh(names or ["(none)"], [g["acceptance_rate"] or 0.0 for g in groups] or [0.0], color="tab:green")
    ax.set_xlim(0, 1)
    ax.set_title("acceptance rate per source / task / variant")
    ax.invert_yaxis()
    ax = axes[0][1]
    rounds = report["rounds_needed"]
    labels = list(rounds) or ["(none)"]
    ax.bar(labels, [rounds[k] for k in rounds] or [0], color="tab:blue")
    ax.set_title("outcome by rounds needed")
    ax = axes[1][0]
    reasons = report["top_rejection_reasons"]
    ax.barh([_short(r["problem"]) for r in reasons] or ["(none)"], [r["count"] for r in reasons] or [0],
            color="tab:red")
    ax.set_title("top rejection reasons")
    ax.invert_yaxis()
    ax = axes[1][1]
    models = report["usage"].get("models", {})
    model_names = list(models) or ["(none)"]
    tokens = [models[m]["prompt_tokens"] + models[m]["completion_tokens"] for m in models] or [0]
    ax.bar(model_names, tokens, color="tab:purple")
    ax.set_ylabel("billed tokens")
    costs = [models[m]["cost_usd"] for m in models]
    for x, (tok, cost) in enumerate(zip(tokens, costs, strict=False)):
        ax.annotate("no price" if cost is None else f"${cost:.4f}", (x, tok), ha="center", va="bottom")
    agree = report["agreement"]
    kappa = agree["cohen_kappa"]
    ax.set_title(f"tokens and cost per model (first-round agreement "
                 f"{_pct(agree['first_round_agreement'])}, kappa {'n/a' if kappa is None else f'{kappa:.2f}'})")
    totals = report["totals"]
    fig.suptitle(f"caption QA: {totals['accepted']}/{totals['jobs']} accepted, {totals['rejected']} rejected, "
                 f"{totals['error']} errors")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def _group(key: tuple[str, str, str], members: Sequence[Outcome]) -> dict[str, Any]:
    accepted = [o for o in members if o.status == "accepted"]
    return {"source": key[0], "task": key[1], "variant": key[2], "jobs": len(members), "accepted": len(accepted),
            "rejected": sum(o.status == "rejected" for o in members),
            "error": sum(o.status == "error" for o in members),
            "acceptance_rate": _rate(len(accepted), len(members)),
            "mean_rounds_accepted": (sum(len(o.rounds) for o in accepted) / len(accepted)) if accepted else None}


def _rounds(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = Counter(f"accepted in {len(o.rounds)}" if o.status == "accepted" else o.status for o in outcomes)
    return dict(sorted(counts.items()))


def _reason_key(text: str) -> str:
    text = re.sub(r"\d+(\.\d+)?", "N", " ".join(text.lower().split()))
    return text[:120]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _short(text: str, limit: int = 45) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
