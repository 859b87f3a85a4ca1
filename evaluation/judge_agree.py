"""CLI: measure how well a candidate judge agrees with a reference judge before paying for RL.

    python -m evaluation.judge_agree --pairs PAIRS.jsonl --judge-a A.yaml --judge-b B.yaml \
        --out report.json [--plot agree.png]
    python -m evaluation.judge_agree export --gt GT.json --pred SUBMISSION.json --out PAIRS.jsonl
    python -m evaluation.judge_agree export --data rl_train.parquet --rollouts rollouts.jsonl --out PAIRS.jsonl

A pairs line is `{"task": "VS", "reference": "...", "prediction": "..."}`. Each judge YAML holds
judge settings (the `medgrpo.reward.judge` keys: base_url, model, api_key_env, concurrency,
timeout_s, max_retries, prices, ...; top level or under `judge:` / `medgrpo.reward.judge`). Both
judges get the training reward's prompt and strict reply parser through `ChatClient`, with no cache
(latency and cost are measured) and no injection guard (it would score both judges identically).
The report holds, per dimension and for the mean, Spearman / Kendall / mean absolute difference and
the 5x5 agreement matrix, and per judge its failure rate, latency and token cost (its base_url without
user info or query, where a password or key may sit). A judge whose endpoint fails on the first pair
(wrong base_url, key or model) stops the run with one line instead of failing every pair.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.judge_agreement import compare_judges, plot_matrices
from reward_fns.atomic_io import write_json_atomic
from reward_fns.jsonl import json_lines, json_object
from reward_fns.judge.chat import ChatError, Usage
from reward_fns.judge.client import JudgeConfig, MedicalJudge
from reward_fns.judge.prompt import PROMPT_VERSION, build_messages
from reward_fns.judge.redact import bare_url
from reward_fns.judge.reply import parse_reply, reply_problem
from reward_fns.registry import TASK_NAMES

_FIELDS = {"task": str, "reference": str, "prediction": str}
_EXPECTED = "expected an object {task, reference, prediction} of strings"


class AgreementError(ValueError):
    """Bad input for the agreement tool; the message names the file and line or key."""


@dataclass(frozen=True)
class Pair:
    task: str
    reference: str
    prediction: str


@dataclass(frozen=True)
class Verdict:
    """One judge's answer on one pair: per-dimension scores (None on failure) and what it took."""

    scores: Mapping[str, int] | None
    latency_s: float
    usage: Usage
    reason: str = ""
    endpoint_failed: bool = False  # the endpoint itself failed (HTTP status, connection, timeout)


def load_pairs(path: str | Path) -> list[Pair]:
    """Pairs from JSONL; each line an object with string task (a task name), reference, prediction."""
    pairs = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise AgreementError(f"{path}: {err.strerror or err}") from None
    for where, value in json_lines(lines, path, _EXPECTED, AgreementError):
        item = json_object(value, where, _FIELDS, _EXPECTED, AgreementError)
        if item["task"] not in TASK_NAMES:
            raise AgreementError(f"{where}: field 'task': unknown task {item['task']!r} (known: "
                                 f"{', '.join(TASK_NAMES)})")
        pairs.append(Pair(item["task"], item["reference"], item["prediction"]))
    if not pairs:
        raise AgreementError(f"{path}: no pairs")
    return pairs


def load_judge(path: str | Path) -> JudgeConfig:
    """Judge settings from YAML/JSON (top level, `judge:` or `medgrpo.reward.judge`)."""
    from evaluation.caption_columns import JudgeNotConfigured, load_judge_config

    try:
        data = load_judge_config(str(path))
        return JudgeConfig.from_dict({**data, "enabled": True, "cache_path": None})
    except (JudgeNotConfigured, TypeError, ValueError, OSError) as err:
        raise AgreementError(f"{path}: {err}") from None


async def judge_pairs(config: JudgeConfig, pairs: Sequence[Pair], name: str = "") -> list[Verdict]:
    """Every pair judged once by `config`'s model (same prompt and parser as the training reward).

    The first pair is judged alone: when the endpoint itself fails on it (a wrong base_url, key or model,
    a server down), AgreementError stops the run there instead of failing every pair."""
    chat = MedicalJudge(config).chat
    slots = asyncio.Semaphore(config.concurrency)  # queue outside the client: latency and deadline per call

    async def one(pair: Pair) -> Verdict:
        messages = build_messages(pair.reference, pair.prediction, config.max_prediction_chars)
        try:
            async with slots:
                done = await chat.complete(messages, model=config.model, temperature=config.temperature,
                                           max_tokens=config.max_tokens, check=reply_problem)
        except ChatError as err:
            return Verdict(None, err.latency_s, err.usage, err.reason, endpoint_failed=err.endpoint)
        return Verdict(dict(parse_reply(done.text).scores), done.latency_s, done.usage)

    try:
        first = await one(pairs[0])
        if first.endpoint_failed:
            raise AgreementError(f"judge {name or config.model} at {bare_url(config.base_url)}: the first call "
                                 f"failed ({first.reason}); stopped before the other {len(pairs) - 1} pair(s)")
        return [first, *await asyncio.gather(*(one(p) for p in pairs[1:]))]
    finally:
        await chat.aclose()


def judge_summary(config: JudgeConfig, source: str, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Failure rate, latency (mean / p50 / p95 seconds per pair) and token cost of one judge."""
    latencies = sorted(v.latency_s for v in verdicts)
    usage = sum((v.usage for v in verdicts), Usage())
    cost = config.prices.cost(usage.prompt_tokens, usage.completion_tokens)
    failures = [v.reason for v in verdicts if v.scores is None]
    return {
        "config": source, "model": config.model, "base_url": bare_url(config.base_url),
        "prompt_version": PROMPT_VERSION,
        "pairs": len(verdicts), "failures": len(failures), "failure_rate": len(failures) / len(verdicts),
        "failure_examples": failures[:3],
        "latency_s": {"mean": statistics.fmean(latencies), "p50": _quantile(latencies, 0.5),
                      "p95": _quantile(latencies, 0.95)},
        "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
        "cost_usd": cost, "cost_per_pair_usd": cost / len(verdicts),
    }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def build_report(pairs: Sequence[Pair], configs: Mapping[str, tuple[JudgeConfig, str]],
                 verdicts: Mapping[str, Sequence[Verdict]]) -> dict[str, Any]:
    """The agreement report (JSON-ready): judges, overall dimensions and the mean per task."""
    a, b = ([v.scores for v in verdicts[k]] for k in ("a", "b"))
    by_task: dict[str, dict[str, Any]] = {}
    for task in sorted({p.task for p in pairs}):
        keep = [i for i, p in enumerate(pairs) if p.task == task]
        by_task[task] = compare_judges([a[i] for i in keep], [b[i] for i in keep])["mean"]
    return {
        "pairs": len(pairs),
        "both_scored": sum(x is not None and y is not None for x, y in zip(a, b, strict=True)),
        "judges": {k: judge_summary(cfg, src, verdicts[k]) for k, (cfg, src) in configs.items()},
        "dimensions": compare_judges(a, b),
        "per_task_mean": by_task,
    }


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.judge_agree", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", required=True, help="JSONL of {task, reference, prediction}")
    p.add_argument("--judge-a", required=True, help="judge settings YAML of judge A (the reference, e.g. GPT-4.1)")
    p.add_argument("--judge-b", required=True, help="judge settings YAML of judge B (the candidate)")
    p.add_argument("--out", required=True, help="report JSON to write (atomically)")
    p.add_argument("--plot", help="PNG of the agreement matrices")
    return p


def run(argv: Sequence[str]) -> dict[str, Any]:
    args = _compare_parser().parse_args(argv)
    try:
        pairs = load_pairs(args.pairs)
        configs = {"a": (load_judge(args.judge_a), args.judge_a), "b": (load_judge(args.judge_b), args.judge_b)}
    except AgreementError as err:
        raise SystemExit(f"error: {err}") from None

    async def both() -> dict[str, list[Verdict]]:
        got = await asyncio.gather(*(judge_pairs(cfg, pairs, f"{key} ({src})") for key, (cfg, src) in configs.items()))
        return dict(zip(configs, got, strict=True))

    try:
        verdicts = asyncio.run(both())
    except AgreementError as err:
        raise SystemExit(f"error: {err}") from None
    report = build_report(pairs, configs, verdicts)
    write_json_atomic(args.out, report)
    if args.plot:
        plot_matrices(report, args.plot)
    mean = report["dimensions"]["mean"]
    print(f"{report['both_scored']}/{report['pairs']} pairs scored by both judges; mean score: "
          f"spearman={mean['spearman']}, kendall={mean['kendall']}, MAD={mean['mean_abs_diff']}")
    for key, judge in report["judges"].items():
        print(f"judge {key} ({judge['model']}): failure rate {judge['failure_rate']:.3f}, "
              f"p50 latency {judge['latency_s']['p50']:.3f} s, cost ${judge['cost_usd']:.4f}")
    return report


def main(argv: Sequence[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        from evaluation.judge_pairs import main as export_main

        return export_main(argv[1:])
    return run(argv)


if __name__ == "__main__":
    main()
