"""CLI: run a Qwen-VL model on MedVidBench records and write resumable predictions or rollouts.

    python -m evaluation.infer --model HF_DIR --data GT.json|RL.parquet [--data-root DIR] --out OUT.jsonl \
        [--backend transformers|vllm] [--format predictions|rollouts] [--n 1] [--temperature 0] [--seed 0] \
        [--video-spec FILE] [--max-new-tokens 256] [--limit N] [--batch-size B] [--rc-cache DIR] \
        [--engine-arg KEY=VALUE ...]

Prompts are built as in training. From a GT JSON (`evaluation.infer_requests`): the human turn with its
`<video>` placeholder replaced by the record's frames under the VideoSpec (fps = record fps unless the
spec says otherwise; per-frame pixels and frame cap from the spec), region-caption start frames with the
green box drawn. From an RL parquet (`data_preprocess.medvidbench`, by the `.parquet` suffix): the row's
prompt and `videos` item as verl's `RLHFDataset` reads them (frames already selected and boxed), keyed by
`extra_info.index`. `--video-spec` still gives the backend its patch size and processor pixel bounds.
Decoding: greedy (`--temperature 0`, the default) or `--n` samples per record at `--temperature T`
(top-p 1, no top-k, like verl's rollout) from `--seed`.

Formats (`--format`; default `predictions` for a JSON, `rollouts` for a parquet):
- `predictions`: one row per record `{"index", "id", "qa_type", "data_source", "prediction"}` (`--n 1`),
  for `evaluation.submission` / `evaluation.score_submission`.
- `rollouts`: `--n` rows per record `{"index", "id", "qa_type", "data_source", "response"}`, the input of
  `python -m reward_fns.calibrate` (`--out` must be .jsonl).

- `--out X.jsonl`: rows are appended to X.jsonl batch by batch, in the order they finish (resumed runs
  append the missing indices at the end); `evaluation.submission` orders them by index.
- `--out X.json` (predictions): rows are appended to `X.json.progress.jsonl`, and at the end the ordered
  JSON list is written to X.json atomically (the progress file is kept: it is what a rerun resumes from).
A rerun skips every index that already has its `--n` rows (one with fewer gets the samples it lacks);
delete a record's lines to have it redone.
Exit status 2: a bad record or row, a missing frame, an output from another data file, or an unusable backend.
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
from evaluation.infer_output import FORMATS, OutputError, PredictionLog, progress_path, write_final_json
from evaluation.infer_requests import (
    Request,
    RequestBuilder,
    check_frame_files,
    is_parquet,
    read_records,
    read_rl_requests,
    validate,
)
from reward_fns.reference import RecordError

DEFAULT_BATCH = {"transformers": 1, "vllm": 64}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.infer", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="Hugging Face model folder (e.g. a merged checkpoint)")
    p.add_argument("--data", required=True, help="MedVidBench JSON (a list of records) or an RL .parquet of "
                   "data_preprocess.medvidbench")
    p.add_argument("--data-root", help="JSON: folder the frame paths are relative to (default: the --data file's)")
    p.add_argument("--out", required=True, help="output .jsonl (or, for predictions, .json: ordered list written "
                   "at the end)")
    p.add_argument("--backend", default="transformers", choices=backend_names())
    p.add_argument("--format", choices=sorted(FORMATS), help="predictions (one per record) or rollouts (--n per "
                   "record, for reward_fns.calibrate); default: predictions for a JSON, rollouts for a parquet")
    p.add_argument("--n", type=int, default=1, help="answers per record (> 1 needs --temperature > 0 and rollouts)")
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy; > 0: sampled (top-p 1, no top-k)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--video-spec", help="YAML/JSON file with VideoSpec fields (same file as preprocessing)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument("--batch-size", type=int, help=f"records per generate call (default {DEFAULT_BATCH})")
    p.add_argument("--rc-cache", help="JSON: folder for region-caption frames with the box drawn (default: OUT's "
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


def output_format(args: argparse.Namespace) -> str:
    return args.format or ("rollouts" if is_parquet(args.data) else "predictions")


def prepare(args: argparse.Namespace, spec: VideoSpec) -> tuple[PredictionLog, list[Request], int]:
    """Validate the records in range, load the output log, build the requests still to do."""
    where = os.fspath(args.data)
    log = PredictionLog(progress_path(args.out), FORMATS[output_format(args)])
    if is_parquet(args.data):
        requests = read_rl_requests(args.data, args.limit)
        log.load()
        log.check_against({r.index: (r.id, r.qa_type) for r in requests})
        todo = [r for r in requests if log.count(r.index) < args.n]
        check_frame_files(todo, where, "videos")
        return log, todo, len(requests)
    records = read_records(args.data)
    checked = validate(records, where, args.limit)
    log.load()
    log.check_against({c.index: (c.id, c.ref.qa_type) for c in checked})
    todo = [c for c in checked if log.count(c.index) < args.n]
    data_root = args.data_root or os.path.dirname(os.path.abspath(args.data))
    rc_cache = args.rc_cache or os.path.join(os.path.dirname(os.path.abspath(args.out)), "rc_frames")
    requests = RequestBuilder(records, where, data_root, spec, rc_cache).build_all(todo)
    return log, requests, len(checked)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One inference run; returns a summary (records in range, done before, generated now, rows, seconds)."""
    from tqdm import tqdm

    started = time.perf_counter()
    spec = VideoSpec.load(args.video_spec) if args.video_spec else VideoSpec()
    engine_args = parse_engine_args(args.engine_arg)
    log, requests, total = prepare(args, spec)
    batch = args.batch_size or DEFAULT_BATCH.get(args.backend, 1)
    groups: dict[int, list[Request]] = {}  # rows already written -> records (usually all 0)
    for request in requests:
        groups.setdefault(log.count(request.index), []).append(request)
    rows = 0
    if requests:
        backend = load_backend(args.backend, BackendConfig(
            model=args.model, spec=spec, max_new_tokens=args.max_new_tokens, engine_args=engine_args,
            temperature=args.temperature, seed=args.seed))
        with tqdm(total=total, initial=total - len(requests), desc="infer", unit="rec") as bar:
            for done, todo in sorted(groups.items()):
                n = args.n - done
                for start in range(0, len(todo), batch):
                    chunk = todo[start:start + batch]
                    answers = backend.generate(chunk, n, done)
                    if len(answers) != len(chunk) or any(len(a) != n for a in answers):
                        raise BackendError(f"backend {args.backend} returned {[len(a) for a in answers]} answers for "
                                           f"{len(chunk)} prompts x {n}")
                    new = [r.output_row(text, log.key)
                           for r, texts in zip(chunk, answers, strict=True) for text in texts]
                    log.append(new)
                    rows += len(new)
                    bar.update(len(chunk))
    if not str(args.out).endswith(".jsonl"):
        write_final_json(args.out, log.ordered())
    return {"records": total, "skipped": total - len(requests), "generated": len(requests), "rows": rows,
            "seconds": round(time.perf_counter() - started, 2), "out": os.fspath(args.out)}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rollouts = output_format(args) == "rollouts"
    problems = [msg for bad, msg in (
        (args.limit is not None and args.limit < 0, "--limit must be >= 0"),
        (args.batch_size is not None and args.batch_size < 1, "--batch-size must be >= 1"),
        (args.max_new_tokens < 1, "--max-new-tokens must be >= 1"),
        (args.n < 1, "--n must be >= 1"),
        (not args.temperature >= 0, "--temperature must be >= 0"),
        (args.n > 1 and args.temperature == 0, "--n > 1 needs --temperature > 0 (greedy answers are all alike)"),
        (args.n > 1 and not rollouts, "--n > 1 gives several answers per record: use --format rollouts"),
        (is_parquet(args.data) and (args.data_root or args.rc_cache),
         "--data-root and --rc-cache are for a JSON --data (parquet rows hold absolute, boxed frames)"),
        (rollouts and not str(args.out).endswith(".jsonl"), "--format rollouts writes JSON Lines: --out must end "
         "in .jsonl"),
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
          f"({summary['rows']} rows written) in {summary['seconds']} s -> {summary['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
