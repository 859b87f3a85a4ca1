"""CLI: build MedVidBench records from local copies of the source datasets.

    python -m data_preprocess.build --source NAME --root DIR [--videos DIR] --out OUT.json
        [--frames-out DIR] [--config YAML] [--split large|standard] [--exclude-test TEST.json]
        [--seed N] [--limit-videos N] [--captions none|facts]
    python -m data_preprocess.build --all SOURCES.yaml --out OUT.json [...]

Writes OUT.json (a list of records) and OUT.manifest.json atomically (both or neither). Exit status 2: bad
input, config or flag; 1: an output cannot be written (read-only, full disk). Outputs never overlap inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from data_preprocess.build import manifest as mf
from data_preprocess.build.adapters import ADAPTERS
from data_preprocess.build.canonical import AnnotationError
from data_preprocess.build.config import DEFAULT_CONFIG as DEFAULT
from data_preprocess.build.config import ConfigError, load_config
from data_preprocess.build.frames import FrameLinkError, FrameOutputError
from data_preprocess.build.pipeline import CAPTION_MODES, BuildOptions, Built, build_source
from data_preprocess.build.select import excluder, load_test_keys, standard_sample
from data_preprocess.build.validate import read_text
from reward_fns.atomic_io import atomic_path


@dataclass(frozen=True)
class Job:
    source: str
    root: Path
    videos: Path | None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_preprocess.build", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", choices=sorted(ADAPTERS), help="which release --root holds")
    what.add_argument("--all", help="YAML list of {source, root, videos} to build into one file")
    p.add_argument("--root", help="the source release as unpacked on disk")
    p.add_argument("--videos", help="folder of the source's video files (default: inside --root)")
    p.add_argument("--out", required=True, help="output MedVidBench JSON")
    p.add_argument("--frames-out", help="data root for frames: extracted ones are written here (PyAV)")
    p.add_argument("--config", help="builder YAML (default recipes/config/medvidbench_build.yaml)")
    p.add_argument("--split", choices=("large", "standard"), default="large",
                   help="large: every record; standard: at most the config's cap per (source, task), seeded")
    p.add_argument("--exclude-test", action="append", default=[], metavar="TEST.json",
                   help="drop every clip of a video in this MedVidBench test/val JSON (repeatable)")
    p.add_argument("--seed", type=int, help="question draws and Standard sampling (default: the config's)")
    p.add_argument("--limit-videos", type=int, default=0, help="only the first N videos (by id) of each release")
    p.add_argument("--captions", choices=CAPTION_MODES, default="none",
                   help="none: leave DVC/VS/RC out; facts: write them with caption_facts for the caption stage")
    return p


class OutputError(Exception):
    """An output path cannot be written (read-only, full disk, ...): exit status 1."""


def jobs_from_args(args: argparse.Namespace) -> list[Job]:
    if args.source:
        if not args.root:
            raise ConfigError("--root is required with --source")
        return [Job(args.source, Path(args.root), Path(args.videos) if args.videos else None)]
    path = Path(args.all)
    try:
        data = yaml.safe_load(read_text(path))
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to read") from None
    entries = data.get("sources") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: must be a list (or {{sources: [...]}}) of {{source, root, videos}}")
    jobs = []
    for i, entry in enumerate(entries):
        if (not isinstance(entry, dict) or entry.get("source") not in ADAPTERS or not entry.get("root")
                or not isinstance(entry["root"], str) or not isinstance(entry.get("videos") or "", str)):
            raise ConfigError(f"{path}: entry {i}: needs source (one of {sorted(ADAPTERS)}), root and optional "
                              "videos (folder paths as text)")
        unknown = sorted(map(str, set(entry) - {"source", "root", "videos"}))
        if unknown:
            raise ConfigError(f"{path}: entry {i}: unknown key(s) {unknown}; known: source, root, videos")
        videos = entry.get("videos")
        jobs.append(Job(entry["source"], path.parent / entry["root"], path.parent / videos if videos else None))
    return jobs


def manifest_path(out: str) -> Path:
    return Path(f"{out.removesuffix('.json')}.manifest.json")


def _overlaps(out: Path, out_is_folder: bool, inp: Path) -> bool:
    """Does an output (a file, or a folder the build writes into) overlap an input file or folder?"""
    return out == inp or inp in out.parents or (out_is_folder and out in inp.parents)


def check_overlap(args: argparse.Namespace, jobs: list[Job], files: Sequence[Path] = ()) -> None:
    """Outputs (--out, its manifest, --frames-out) are neither inputs nor inside or around one: an input
    folder (--root, --videos), an input file (config, --all YAML, --exclude-test, annotation files read)."""
    inputs: list[tuple[str, Path]] = [("--config", Path(args.config)) if args.config else ("config", DEFAULT)]
    inputs += [("--all", Path(args.all))] if args.all else []
    inputs += [("--exclude-test", Path(p)) for p in args.exclude_test]
    for job in jobs:
        inputs.append((f"{job.source} --root", job.root))
        inputs += [(f"{job.source} --videos", job.videos)] if job.videos else []
    inputs += [("input file", f) for f in files]
    outputs = [("--out", Path(args.out), False), ("--out's manifest", manifest_path(args.out), False)]
    outputs += [("--frames-out", Path(args.frames_out), True)] if args.frames_out else []
    for flag, out, is_folder in outputs:
        resolved = out.resolve()
        for what, inp in inputs:
            if _overlaps(resolved, is_folder, inp.resolve()):
                raise ConfigError(f"{flag} {out}: overlaps the {what} {inp}; write outputs outside the inputs "
                                  "(not an input, not inside an input folder, not a folder holding inputs)")
    if args.frames_out and Path(args.out).resolve() == Path(args.frames_out).resolve():
        raise ConfigError(f"--out {args.out}: is also --frames-out")


def _probe(folder: Path, flag: str, path: Path) -> None:
    """Create `folder` if needed and write a byte there, so a read-only or full output fails before the build."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe.", dir=folder)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot write in {folder} ({exc.strerror or exc})") from None


def check_flags(args: argparse.Namespace) -> None:
    """Flag values: --limit-videos not negative, --out a file path, --frames-out a folder path."""
    if args.limit_videos < 0:
        raise ConfigError(f"--limit-videos: must be 0 (every video) or a positive count, got {args.limit_videos}")
    out = Path(args.out)
    for flag, path in (("--out", out), ("--out's manifest", manifest_path(args.out))):
        if path.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; give a file path like train.json")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{flag} {path}: exists and is not a regular file")
    above = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if above is not None:
        raise ConfigError(f"--out {out}: {above} is a file, not a folder")
    if args.frames_out:
        frames = Path(args.frames_out)
        if frames.exists() and not frames.is_dir():
            raise ConfigError(f"--frames-out {frames}: is a file, not a folder")
        above = next((p for p in frames.parents if p.exists() and not p.is_dir()), None)
        if above is not None:
            raise ConfigError(f"--frames-out {frames}: {above} is a file, not a folder")


def probe_outputs(args: argparse.Namespace) -> None:
    """The output folders exist (made if missing) and take a write, before any long work."""
    if args.frames_out:
        _probe(Path(args.frames_out), "--frames-out", Path(args.frames_out))
    _probe(Path(args.out).parent, "--out", Path(args.out))


def write_outputs(path: str, built: list[Built], manifest: dict[str, Any]) -> None:
    """The records (a JSON list, one record at a time: frame lists are made here) and the manifest, each
    to a temp file; both replace their targets only once both are complete."""
    try:
        with atomic_path(path) as tmp, atomic_path(manifest_path(path)) as tmp_manifest:
            with tmp.open("wb") as f:
                f.write(b"[")
                for i, b in enumerate(built):
                    f.write(b"," if i else b"")
                    f.write(orjson.dumps(b.record))
                f.write(b"]\n")
            tmp_manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"--out {path}: cannot write ({exc.strerror or exc}); nothing was replaced") from None


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_flags(args)
    config = load_config(args.config)
    seed = config.seed if args.seed is None else args.seed
    jobs = jobs_from_args(args)
    check_overlap(args, jobs)
    probe_outputs(args)
    keys = load_test_keys(args.exclude_test)
    options = BuildOptions(seed=seed, captions=args.captions, limit_videos=args.limit_videos,
                           exclude=excluder(keys))
    built: list[Built] = []
    dropped: Counter[tuple[str, str, str]] = Counter()
    excluded: Counter[str] = Counter()
    excluded_videos: set[tuple[str, str]] = set()
    files: list[Path] = []
    read_sources: set[str] = set()
    skipped: dict[str, Counter[str]] = {}
    for job in jobs:
        result = build_source(job.source, job.root, job.videos, config, options)
        built += result.built
        dropped += result.dropped
        excluded += result.excluded
        excluded_videos |= result.excluded_videos
        files += result.read.files
        read_sources |= {v.source for v in result.read.videos}
        skipped.setdefault(job.source, Counter()).update(result.read.skipped)
    check_overlap(args, jobs, files)
    large = len(built)
    if args.split == "standard":
        def cap(source: str, task: str) -> int:
            return config.sources[source].tasks[task].cap
        built = standard_sample(built, lambda b: (b.video.source, b.task), cap, seed)
    frames: dict[str, Any] = {"frames_out": args.frames_out}
    if args.frames_out:
        from data_preprocess.build.extraction import run_frame_stage

        stage = run_frame_stage(built, Path(args.frames_out))
        built, dropped = stage.kept, dropped + stage.dropped
        frames.update(extracted=len(stage.extracted), resumed=stage.resumed, linked=stage.linked,
                      errors=stage.errors)
    manifest = {
        "command": "python -m data_preprocess.build " + " ".join(args.argv),
        "config": config.path, "seed": seed, "split": args.split, "captions": args.captions,
        "records": len(built), "records_large": large,
        "counts": mf.counts(built),
        "dropped": mf.nested(dropped),
        "excluded": {"records": sum(excluded.values()), "videos": len(excluded_videos),
                     "per_source": dict(excluded), "test_files": list(args.exclude_test),
                     "test_videos": len(keys)},
        "adapter_skipped": {name: dict(c) for name, c in skipped.items()},
        "frames": frames,
        "inputs": mf.inputs(files),
        "licences": mf.licences(config, read_sources),
    }
    write_outputs(args.out, built, manifest)
    return manifest


def _one_line(exc: BaseException) -> str:
    """The message on one line (a value quoted in it may hold a line break)."""
    return " ".join(str(exc).split("\n"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    try:
        manifest = run(args)
    except (AnnotationError, ConfigError, FrameLinkError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (OutputError, FrameOutputError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    for source, tasks in manifest["counts"].items():
        print(f"{source}: " + ", ".join(f"{t} {sum(f.values())}" for t, f in tasks.items()))
    print(f"{manifest['records']} records ({manifest['excluded']['records']} excluded as test/val clips) "
          f"in {time.perf_counter() - started:.1f} s -> {args.out}")
    return 0
