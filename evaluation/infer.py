"""CLI: run a Qwen-VL model on MedVidBench records and write resumable predictions.

    python -m evaluation.infer --model HF_DIR --data GT.json [--data-root DIR] --out predictions.jsonl \
        [--backend transformers|vllm] [--video-spec FILE] [--max-new-tokens 256] [--limit N] \
        [--batch-size B] [--rc-cache DIR] [--engine-arg KEY=VALUE ...]

Prompts are built as in training (`evaluation.infer_requests`): the human turn with its `<video>`
placeholder replaced by the record's frames under the VideoSpec (fps = record fps unless the spec says
otherwise; per-frame pixels and frame cap from the spec), region-caption start frames with the green box
drawn; greedy decoding. Output rows: `{"index", "id", "qa_type", "data_source", "prediction"}`.

- `--out X.jsonl`: rows are appended to X.jsonl batch by batch, in the order they finish (resumed runs
  append the missing indices at the end); `evaluation.submission` orders them by index.
- `--out X.json`: rows are appended to `X.json.progress.jsonl`, and at the end the ordered JSON list is
  written to X.json atomically (the progress file is kept: it is what a rerun resumes from).
A rerun skips every index already in the output; delete a line to have that record redone.
Exit status 2: a bad record, a missing frame, an output from another GT file, or an unusable backend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from data_preprocess.video_spec import VideoSpec
from evaluation.backends import BackendConfig, BackendError, backend_names, load_backend
from evaluation.infer_output import OutputError, PredictionLog, progress_path, write_final_json
from evaluation.infer_requests import Request, RequestBuilder, read_records, validate
from reward_fns.reference import RecordError

DEFAULT_BATCH = {"transformers": 1, "vllm": 64}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.infer", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="Hugging Face model folder (e.g. a merged checkpoint)")
    p.add_argument("--data", required=True, help="MedVidBench JSON (a list of records)")
    p.add_argument("--data-root", help="folder the frame paths are relative to (default: the --data file's)")
    p.add_argument("--out", required=True, help="predictions .jsonl (or .json: ordered list written at the end)")
    p.add_argument("--backend", default="transformers", choices=backend_names())
    p.add_argument("--video-spec", help="YAML/JSON file with VideoSpec fields (same file as preprocessing)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument("--batch-size", type=int, help=f"records per generate call (default {DEFAULT_BATCH})")
    p.add_argument("--rc-cache", help="folder for region-caption frames with the box drawn (default: OUT's "
                   "folder/rc_frames)")
    p.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra argument for from_pretrained (transformers) or vllm.LLM (vllm); VALUE is JSON "
                   "when it parses, else a string; repeatable")
    return p


def parse_engine_args(items: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs; VALUE parsed as JSON when possible (`max_model_len=8192`, `dtype=bfloat16`)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BackendError(f"--engine-arg wants KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def prepare(args: argparse.Namespace, spec: VideoSpec) -> tuple[PredictionLog, list[Request], int]:
    """Validate the records in range, load the output log, build the requests still to do."""
    where = os.fspath(args.data)
    records = read_records(args.data)
    checked = validate(records, where, args.limit)
    log = PredictionLog(progress_path(args.out))
    log.load()
    log.check_against({c.index: (c.id, c.ref.qa_type) for c in checked})
    todo = [c for c in checked if c.index not in log.rows]
    data_root = args.data_root or os.path.dirname(os.path.abspath(args.data))
    rc_cache = args.rc_cache or os.path.join(os.path.dirname(os.path.abspath(args.out)), "rc_frames")
    requests = RequestBuilder(records, where, data_root, spec, rc_cache).build_all(todo)
    return log, requests, len(checked)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One inference run; returns a summary (records in range, done before, generated now, seconds)."""
    from tqdm import tqdm

    started = time.perf_counter()
    spec = VideoSpec.load(args.video_spec) if args.video_spec else VideoSpec()
    engine_args = parse_engine_args(args.engine_arg)
    log, requests, total = prepare(args, spec)
    batch = args.batch_size or DEFAULT_BATCH.get(args.backend, 1)
    if requests:
        backend = load_backend(args.backend, BackendConfig(
            model=args.model, spec=spec, max_new_tokens=args.max_new_tokens, engine_args=engine_args))
        with tqdm(total=total, initial=total - len(requests), desc="infer", unit="rec") as bar:
            for start in range(0, len(requests), batch):
                chunk = requests[start:start + batch]
                predictions = backend.generate(chunk)
                if len(predictions) != len(chunk):
                    raise BackendError(f"backend {args.backend} returned {len(predictions)} answers for "
                                       f"{len(chunk)} prompts")
                log.append(r.output_row(p) for r, p in zip(chunk, predictions, strict=True))
                bar.update(len(chunk))
    if not str(args.out).endswith(".jsonl"):
        write_final_json(args.out, log.ordered())
    return {"records": total, "skipped": total - len(requests), "generated": len(requests),
            "seconds": round(time.perf_counter() - started, 2), "out": os.fspath(args.out)}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problems = [msg for bad, msg in (
        (args.limit is not None and args.limit < 0, "--limit must be >= 0"),
        (args.batch_size is not None and args.batch_size < 1, "--batch-size must be >= 1"),
        (args.max_new_tokens < 1, "--max-new-tokens must be >= 1"),
        (not str(args.out).endswith((".json", ".jsonl")), "--out must end in .jsonl or .json")) if bad]
    if problems:
        print(f"error: {'; '.join(problems)}", file=sys.stderr)
        return 2
    try:
        summary = run(args)
    except (RecordError, OutputError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['generated']} generated, {summary['skipped']} already done, of {summary['records']} records "
          f"in {summary['seconds']} s -> {summary['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
