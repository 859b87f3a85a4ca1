"""CLI: write and validate the caption tasks' captions from the builder's facts records.

The input is the builder's `--captions facts` output: records with `caption_facts` get their captions
(one record per accepted variant, in place); all other records pass through unchanged.

    python -m data_preprocess.caption_writer --input FACTS.json --out OUT.json \
        --gen-url URL --gen-model NAME --val-url URL --val-model NAME \
        [--api-key-env VAR | --gen-key-env VAR --val-key-env VAR] [--variants gpt,gemini] [--max-rounds 2] \
        [--concurrency 32] [--cache captions.sqlite] [--with-frames [--data-root DIR]] [--prices prices.yaml] \
        [--report report.json --plot report.png]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data_preprocess.caption_writer.accounting import Ledger, load_prices
from data_preprocess.caption_writer.facts import FactsError, canonical_hash, load_input
from data_preprocess.caption_writer.frames import KeyframeLoader
from data_preprocess.caption_writer.llm import CACHE_WAIT_S, ModelCall, open_cache
from data_preprocess.caption_writer.pipeline import Journal, Outcome, Variant, run_all
from data_preprocess.caption_writer.prompts import PROMPT_VERSION
from data_preprocess.caption_writer.report import build_report, write_plot
from reward_fns.atomic_io import write_json_atomic
from reward_fns.judge.chat import ChatClient
from reward_fns.judge.redact import bare_url
from reward_fns.registry import CAPTION_VARIANTS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_preprocess.caption_writer", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="facts records (the builder's --captions facts output)")
    p.add_argument("--out", required=True, help="finished records (JSON list), written atomically")
    p.add_argument("--gen-url", required=True, help="first model's OpenAI-compatible base URL (writes _gpt)")
    p.add_argument("--gen-model", required=True)
    p.add_argument("--val-url", required=True, help="second model's base URL (validates _gpt, writes _gemini)")
    p.add_argument("--val-model", required=True)
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="env var holding the key for both models")
    p.add_argument("--gen-key-env", help="env var of the first model's key (overrides --api-key-env)")
    p.add_argument("--val-key-env", help="env var of the second model's key (overrides --api-key-env)")
    p.add_argument("--variants", default=",".join(CAPTION_VARIANTS),
                   help="comma list of " + ", ".join(CAPTION_VARIANTS))
    p.add_argument("--max-rounds", type=int, default=2, help="write/review rounds before an item is dropped")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight per model")
    p.add_argument("--timeout-s", type=float, default=120.0, help="one HTTP attempt, connect to last byte")
    p.add_argument("--deadline-s", type=float, default=600.0, help="one request, all retries included")
    p.add_argument("--max-retries", type=int, default=4)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=2048)
    p.add_argument("--no-structured", action="store_true", help="do not send response_format")
    p.add_argument("--cache", help="SQLite cache of parsed replies (reruns pay nothing twice)")
    p.add_argument("--cache-wait-s", type=float, default=CACHE_WAIT_S,
                   help="seconds to wait for a --cache locked by another process")
    p.add_argument("--with-frames", action="store_true", help="send a few keyframes as images")
    p.add_argument("--data-root", help="folder the frame paths are relative to (default: the input's folder)")
    p.add_argument("--prices", help="YAML {model: {input_per_mtok, output_per_mtok}} (US$ per 1M tokens)")
    p.add_argument("--report", help="QA report JSON")
    p.add_argument("--plot", help="QA report PNG")
    p.add_argument("--no-progress", action="store_true")
    return p


def _variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in CAPTION_VARIANTS]
    if not names or bad or len(set(names)) != len(names):
        raise SystemExit(f"error: --variants must list distinct names from {list(CAPTION_VARIANTS)}, got {text!r}")
    return names


def _check(args: argparse.Namespace) -> None:
    if args.max_rounds < 1 or args.concurrency < 1:
        raise SystemExit("error: --max-rounds and --concurrency must be >= 1")
    if not 0 <= args.cache_wait_s <= 3600:
        raise SystemExit(f"error: --cache-wait-s must be between 0 and 3600 seconds, got {args.cache_wait_s}")
    if bool(args.gen_key_env) != bool(args.val_key_env):
        raise SystemExit("error: give both --gen-key-env and --val-key-env, or neither (then --api-key-env)")


def run(argv: Sequence[str] | None = None) -> list[Outcome]:
    args = _parser().parse_args(argv)
    _check(args)
    names = _variants(args.variants)
    images = (KeyframeLoader(args.data_root or Path(args.input).resolve().parent, args.input)
              if args.with_frames else None)
    try:
        records, items = load_input(args.input)
        prices = load_prices(args.prices)
        if images is not None:
            images.check(items)
        clients = [ChatClient(url, api_key_env=env, concurrency=args.concurrency, timeout_s=args.timeout_s,
                              deadline_s=args.deadline_s, max_retries=args.max_retries)
                   for url, env in ((args.gen_url, args.gen_key_env or args.api_key_env),
                                    (args.val_url, args.val_key_env or args.api_key_env))]
        cache = open_cache(args.cache, args.cache_wait_s) if args.cache else None
    except (FactsError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    ledger = Ledger(prices)
    first, second = (ModelCall(model, client, ledger, cache, args.temperature, args.max_tokens, not args.no_structured)
                     for model, client in zip((args.gen_model, args.val_model), clients, strict=True))
    by_name = {"gpt": Variant("gpt", first, second), "gemini": Variant("gemini", second, first)}
    variants = [by_name[n] for n in names]
    journal = Journal(f"{args.out}.journal.jsonl", canonical_hash(
        [args.gen_model, args.val_model, PROMPT_VERSION, args.max_rounds,
         args.temperature, args.max_tokens, args.with_frames, not args.no_structured]))
    bar = tqdm(total=len(items) * len(variants), unit="caption", disable=args.no_progress or None)

    async def main() -> list[Outcome]:
        try:
            return await run_all(items, variants, max_rounds=args.max_rounds, workers=2 * args.concurrency,
                                 images=images, journal=journal, on_done=lambda _: bar.update())
        finally:
            for client in clients:
                await client.aclose()

    try:
        outcomes = asyncio.run(main())
    except FactsError as err:
        raise SystemExit(f"error: {err}") from None
    finally:
        bar.close()
        journal.close()
        if cache is not None:
            cache.close()
    write_json_atomic(args.out, finished_file(records, outcomes))
    settings = _settings(args, names)
    report = build_report(outcomes, ledger.summary(), settings)
    report["totals"]["passed_through"] = len(records) - len(items)
    if args.report:
        write_json_atomic(args.report, report)
    if args.plot:
        write_plot(report, args.plot)
    if not any(o.status == "error" for o in outcomes):  # kept otherwise: a rerun retries only the errors
        with contextlib.suppress(FileNotFoundError):
            os.unlink(journal.path)
    totals = report["totals"]
    print(f"captions: {totals['accepted']} accepted, {totals['rejected']} rejected, {totals['error']} errors "
          f"of {totals['jobs']} -> {args.out}", file=sys.stderr)
    return outcomes


def finished_file(records: Sequence[Any], outcomes: Sequence[Outcome]) -> list[Any]:
    """The input in order: records without facts as they are, each facts record replaced by its
    accepted variants (in `--variants` order); dropped ones are in the report."""
    accepted: dict[int, list[dict[str, Any]]] = {}
    for o in outcomes:
        if o.status == "accepted" and o.record is not None:
            accepted.setdefault(o.index, []).append(o.record)
    captioned = {o.index for o in outcomes}
    out: list[Any] = []
    for index, record in enumerate(records):
        out.extend(accepted.get(index, []) if index in captioned else [record])
    return out


def _settings(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """What the report records about the run: never a key (only the names of their variables; URLs lose
    any query string or user info, where some endpoints take a key)."""
    keep = ("input", "out", "gen_model", "val_model", "gen_key_env", "val_key_env", "api_key_env", "max_rounds",
            "concurrency", "temperature", "with_frames", "cache", "prices")
    urls = {k: bare_url(getattr(args, k)) for k in ("gen_url", "val_url")}
    return {**{k: getattr(args, k) for k in keep}, **urls, "variants": names, "prompt_version": PROMPT_VERSION}


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 1 when some jobs ended in an endpoint or reply error (a rerun retries only those)."""
    errors = sum(o.status == "error" for o in run(argv))
    if errors:
        print(f"captions: {errors} job(s) failed on endpoint or reply errors; rerun to retry them "
              "(the journal beside the output keeps the finished ones)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
