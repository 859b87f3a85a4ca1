"""Run statistics and `manifest.json`: counts per file, source and task; prompt-token estimates;
rejected (SFT-only), invalid records and clipped region boxes; the summary the CLI prints."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import numpy as np

from data_preprocess.rows import Rows

OUTPUTS = ("rl_train", "rl_val", "sft_train", "sft_val")
MAX_LISTED = 50  # over-limit rows listed by id in the manifest (all are counted)
CHAT_OVERHEAD_TOKENS = 21  # Qwen2.5-VL chat template: system turn, role tags, vision start/end
CHARS_PER_TOKEN = 4


def text_tokens(question: str) -> int:
    """Rough text-token count of the prompt (about 4 characters per token, plus the chat template)."""
    return CHAT_OVERHEAD_TOKENS + -(-max(0, len(question) - len("<video>")) // CHARS_PER_TOKEN)


class Stats:
    """Accumulates what the manifest reports, chunk by chunk (merged in input order)."""

    def __init__(self, max_prompt_tokens: int | None):
        self.max_prompt_tokens = max_prompt_tokens
        self._cells: Counter[tuple[str, str, str, bool]] = Counter()  # (split, source, task, rl_ok) -> rows
        self._tokens: dict[str, array] = {}
        self.over_listed: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.invalid: list[dict[str, Any]] = []
        self.clipped: list[dict[str, Any]] = []

    def add(self, rows: Rows, tokens: list[int]) -> None:
        self._cells.update(zip(rows.split, rows.source, rows.task, rows.rl_ok, strict=True))
        limit = self.max_prompt_tokens
        for i, (task, n) in enumerate(zip(rows.task, tokens, strict=True)):
            self._tokens.setdefault(task, array("q")).append(n)
            if limit is not None and n > limit and len(self.over_listed) < MAX_LISTED:
                self.over_listed.append({"index": rows.index[i], "id": rows.id[i], "task": task,
                                         "split": rows.split[i], "prompt_tokens": n})

    def merge(self, other: Stats) -> None:
        self._cells.update(other._cells)
        for task, values in other._tokens.items():
            self._tokens.setdefault(task, array("q")).extend(values)
        self.over_listed.extend(other.over_listed[: max(0, MAX_LISTED - len(self.over_listed))])
        for name in ("rejected", "invalid", "clipped"):
            getattr(self, name).extend(getattr(other, name))

    def counts(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name in OUTPUTS:
            kind, split = name.split("_")
            by_source, by_task = Counter(), Counter()
            for (s, source, task, ok), n in self._cells.items():
                if s == split and (kind == "sft" or ok):
                    by_source[source] += n
                    by_task[task] += n
            out[name] = {"total": sum(by_task.values()), "by_source": dict(sorted(by_source.items())),
                         "by_task": dict(sorted(by_task.items()))}
        return out

    def prompt_tokens(self) -> dict[str, Any]:
        per_task, limit = {}, self.max_prompt_tokens
        for task, values in sorted(self._tokens.items()):
            arr = np.frombuffer(values, dtype=np.int64)
            p50, p95 = np.percentile(arr, [50, 95], method="higher")
            per_task[task] = {"rows": int(arr.size), "p50": int(p50), "p95": int(p95), "max": int(arr.max()),
                              "over_limit": int((arr > limit).sum()) if limit is not None else 0}
        return {"estimate": "visual tokens from frame count and size under the VideoSpec (Qwen smart-resize) "
                            f"+ text ~{CHARS_PER_TOKEN} chars/token + {CHAT_OVERHEAD_TOKENS} template tokens",
                "max_prompt_tokens": limit, "per_task": per_task, "over_limit_rows": self.over_listed,
                "over_limit_total": sum(t["over_limit"] for t in per_task.values())}

    def manifest(self, **extra: Any) -> dict[str, Any]:
        for entries in (self.invalid, self.rejected, self.clipped):
            entries.sort(key=lambda entry: entry["index"])
        return {"counts": self.counts(), **extra, "rejected": self.rejected, "invalid": self.invalid,
                "clipped_boxes": self.clipped, "prompt_tokens": self.prompt_tokens()}


def summary(manifest: dict[str, Any]) -> str:
    """What the CLI prints: the Standard split, rows per task and file, prompt tokens, rejected, invalid,
    duplicate records and clipped boxes."""
    counts, tok, standard = manifest["counts"], manifest["prompt_tokens"], manifest["split"]["standard"] or {}
    lines = ["standard split (task -> source -> records):"] if standard else []
    lines += [f"  {task:<5} {sum(row.values()):>7}  " + ", ".join(f"{s}: {n}" for s, n in row.items())
              for task, row in standard.items()]
    lines.append("task      " + "".join(f"{name:>11}" for name in OUTPUTS))
    for task in [*sorted({t for c in counts.values() for t in c["by_task"]}), "total"]:
        cells = [c["total"] if task == "total" else c["by_task"].get(task, 0) for c in counts.values()]
        lines.append(f"{task:<10}" + "".join(f"{v:>11}" for v in cells))
    lines += ["", "prompt tokens (estimate)    p50     p95     max   >limit"]
    lines += [f"  {task:<24}{s['p50']:>6}{s['p95']:>8}{s['max']:>8}{s['over_limit']:>9}"
              for task, s in tok["per_task"].items()]
    if tok["over_limit_total"]:
        lines.append(f"WARNING: {tok['over_limit_total']} rows exceed --max-prompt-tokens "
                     f"{tok['max_prompt_tokens']} (video-token OOM risk); see manifest.json prompt_tokens")
    lines.append(f"rejected from RL: {len(manifest['rejected'])}; invalid records skipped: {len(manifest['invalid'])}")
    reasons = Counter(r["reason"].split(" (")[0] for r in manifest["rejected"])
    lines += [f"  {n:>7} x {reason}" for reason, n in reasons.most_common(5)]
    if manifest["duplicates"]["count"]:
        lines.append(f"duplicate records: {manifest['duplicates']['count']} "
                     f"({'dropped' if manifest['duplicates']['dropped'] else 'kept; --dedupe drops them'})")
    if manifest["clipped_boxes"]:
        lines.append(f"region boxes clipped to their image: {len(manifest['clipped_boxes'])} (see the manifest)")
    return "\n".join(lines)
