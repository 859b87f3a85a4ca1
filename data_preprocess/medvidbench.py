"""CLI: convert a MedVidBench JSON file to verl RL and SFT parquet (`--help` lists the flags).

Writes OUT/rl_{train,val}.parquet, OUT/sft_{train,val}.parquet, OUT/manifest.json (and region-caption
frames with the box drawn under OUT/rc_frames/); each parquet file replaced atomically, the manifest last
(data_preprocess/outputs.py). Exit status 2:
an invalid record, input file or output folder (one line on stderr naming the file, record and field)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import fields

from data_preprocess.convert import ConvertConfig, InputError, convert
from data_preprocess.manifest import summary
from data_preprocess.outputs import OutputError
from data_preprocess.splits import STANDARD_SIZE
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_preprocess.medvidbench", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="MedVidBench JSON (a list of records)")
    p.add_argument("--data-root", help="folder the records' frame paths are relative to (default: the input's)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of records in val (split by video)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("large", "standard"), default="large",
                   help="large: every record; standard: the task-balanced subset (see --standard-size)")
    p.add_argument("--standard-size", type=int, default=STANDARD_SIZE)
    p.add_argument("--video-spec", help="YAML/JSON file with VideoSpec fields (fps, max_frames, min_pixels, ...)")
    p.add_argument("--skip-invalid", action="store_true", help="list invalid records in the manifest, don't stop")
    p.add_argument("--no-check-frames", dest="check_frames", action="store_false",
                   help="do not stat frame files (nor read frame sizes)")
    p.add_argument("--max-prompt-tokens", type=int, default=4096, help="report rows above this (0: no limit)")
    p.add_argument("--workers", type=int, default=0, help="processes for the conversion pass (0: one per CPU)")
    p.add_argument("--io-workers", type=int, default=16, help="threads per process for frame checks")
    p.add_argument("--allow-empty", action="store_true",
                   help="let an input without valid records replace existing outputs")
    p.add_argument("--dedupe", action="store_true", help="drop records identical to an earlier one (always reported)")
    return p


def config_from_args(args: argparse.Namespace) -> ConvertConfig:
    """The run's settings from the flags (their names are ConvertConfig's fields)."""
    try:
        spec = VideoSpec.load(args.video_spec) if args.video_spec else VideoSpec()
    except Exception as exc:  # unreadable file, bad YAML/JSON, unknown or invalid keys
        raise InputError(f"--video-spec {args.video_spec}: {exc}") from None
    values = {f.name: getattr(args, f.name) for f in fields(ConvertConfig) if hasattr(args, f.name)}
    return ConvertConfig(**{**values, "video_spec": spec, "max_prompt_tokens": args.max_prompt_tokens or None,
                            "data_root": args.data_root or os.path.dirname(os.path.abspath(args.input))})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        manifest = convert(config_from_args(args))
    except (RecordError, InputError, OutputError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(summary(manifest))
    print(f"{manifest['input']['records']} records in {time.perf_counter() - started:.1f} s -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
