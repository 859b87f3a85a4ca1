"""CLI: build MedVidBench records from local copies of the source datasets.

    python -m data_preprocess.builder --source NAME --root DIR [--videos DIR] --out OUT.json
        [--frames-out DIR] [--config YAML] [--split large|standard] [--exclude-test TEST.json]
        [--seed N] [--limit-videos N] [--captions none|facts] [--workers N] [--video-spec YAML |
        --full-resolution] [--plan]
    python -m data_preprocess.builder --all SOURCES.yaml --out OUT.json [...]

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

from data_preprocess.builder import manifest as mf
from data_preprocess.builder.adapters import ADAPTERS
from data_preprocess.builder.canonical import AnnotationError
from data_preprocess.builder.config import DEFAULT_CONFIG, BuildConfig, ConfigError, load_config
from data_preprocess.builder.decode import Resize
from data_preprocess.builder.frames import FrameLinkError, FrameOutputError
from data_preprocess.builder.generators import CAPTION_TASKS
from data_preprocess.builder.pipeline import CAPTION_MODES, BuildOptions, Built, build_source
from data_preprocess.builder.selection import excluder, load_test_keys, match_report, no_match_sources, standard_sample
from data_preprocess.builder.validate import integer_problem, read_text
from reward_fns.atomic_io import atomic_path, write_json_atomic

DEFAULT_VIDEO_SPEC = DEFAULT_CONFIG.with_name("medgrpo_video.yaml")
SPEC_DEFAULTS = {"max_pixels": 48 * 28 * 28, "min_pixels": 8 * 28 * 28, "image_patch_size": 14, "merge_size": 2}


@dataclass(frozen=True)
class Job:
    source: str
    root: Path
    videos: Path | None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_preprocess.builder", description=__doc__.split("\n")[0])
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
                   help="drop every clip of a video in this MedVidBench test/val JSON (repeatable); ids compare "
                        "normalized (case, _partN suffixes), sources however spelled")
    p.add_argument("--allow-no-match", action="store_true",
                   help="let a source present in both the test files and the build match no test video (warned)")
    p.add_argument("--seed", type=int, help="question draws and Standard sampling (default: the config's)")
    p.add_argument("--limit-videos", type=int, default=0, help="only the first N videos (by id) of each release")
    p.add_argument("--captions", choices=CAPTION_MODES, default="none",
                   help="none: leave DVC/VS/RC out; facts: write them with caption_facts for the caption stage")
    p.add_argument("--plan", action="store_true",
                   help="print (and write OUT.plan.json) the records, frames and disk a build needs; extract nothing")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="frame extraction processes (default: the CPUs, at most 8)")
    p.add_argument("--video-spec", help="VideoSpec YAML whose max_pixels extracted frames are shrunk to "
                                        "(default recipes/config/medgrpo_video.yaml)")
    p.add_argument("--full-resolution", action="store_true", help="extract frames at the videos' own size")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    p.add_argument("--caption-variants", type=int, default=2, choices=(1, 2),
                   help="records the caption stage writes per facts item (gpt, gemini): Standard caps and the "
                        "manifest's mix count final records")
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


def plan_path(out: str) -> Path:
    return Path(f"{out.removesuffix('.json')}.plan.json")


def _overlaps(out: Path, out_is_folder: bool, inp: Path) -> bool:
    """Does an output (a file, or a folder the build writes into) overlap an input file or folder?"""
    return out == inp or inp in out.parents or (out_is_folder and out in inp.parents)


def check_overlap(args: argparse.Namespace, jobs: list[Job], files: Sequence[Path] = ()) -> None:
    """Outputs (--out, its manifest, --frames-out) are neither inputs nor inside or around one: an input
    folder (--root, --videos), an input file (config, --all YAML, --exclude-test, annotation files read)."""
    inputs: list[tuple[str, Path]] = [("--config", Path(args.config)) if args.config else ("config", DEFAULT_CONFIG)]
    inputs += [("--video-spec", Path(args.video_spec))] if args.video_spec else []
    inputs += [("--all", Path(args.all))] if args.all else []
    inputs += [("--exclude-test", Path(p)) for p in args.exclude_test]
    for job in jobs:
        inputs.append((f"{job.source} --root", job.root))
        inputs += [(f"{job.source} --videos", job.videos)] if job.videos else []
    inputs += [("input file", f) for f in files]
    outputs = [("--out", Path(args.out), False), ("--out's manifest", manifest_path(args.out), False)]
    outputs += [("--plan's file", plan_path(args.out), False)] if args.plan else []
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
    if args.workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {args.workers}")
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
    if args.frames_out and not args.plan:  # --plan extracts nothing
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


def frame_resize(args: argparse.Namespace) -> Resize:
    """The resize of extracted frames: the VideoSpec YAML's per-frame pixel budget (`max_pixels`,
    `min_pixels`, `image_patch_size` x `merge_size` x 2 as the side multiple, as the model's frame resize),
    or none. Read as plain YAML: importing VideoSpec would pull in torch through qwen-vl-utils."""
    if args.full_resolution:
        return Resize()
    path = Path(args.video_spec) if args.video_spec else DEFAULT_VIDEO_SPEC
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except ValueError as exc:  # read_text's reasons
        raise ConfigError(f"{path}: {exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a VideoSpec YAML ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
    data = data.get("video_spec", data) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a VideoSpec YAML (a mapping, optionally under video_spec:)")
    spec = {k: data.get(k, default) for k, default in SPEC_DEFAULTS.items()}
    for key, value in spec.items():
        if problem := integer_problem(value, 1, 10**9):
            raise ConfigError(f"{path}: {key}: {problem}")
    spec = {k: int(v) for k, v in spec.items()}
    if not spec["min_pixels"] <= spec["max_pixels"]:
        raise ConfigError(f"{path}: needs 0 < min_pixels <= max_pixels and positive patch sizes, got {spec}")
    return Resize(spec["max_pixels"], spec["min_pixels"], 2 * spec["image_patch_size"] * spec["merge_size"])


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
    seen: set[tuple[str, str]] = set()
    files: list[Path] = []
    read_sources: set[str] = set()
    skipped: dict[str, Counter[str]] = {}
    warnings: dict[str, Counter[str]] = {}
    for job in jobs:
        result = build_source(job.source, job.root, job.videos, config, options)
        built += result.built
        dropped += result.dropped
        excluded += result.excluded
        excluded_videos |= result.excluded_videos
        seen |= result.seen
        files += result.read.files
        read_sources |= {v.source for v in result.read.videos}
        skipped.setdefault(job.source, Counter()).update(result.read.skipped)
        warnings.setdefault(job.source, Counter()).update(result.read.warnings)
    warnings["build"] = empty_tasks(config, built, dropped, read_sources, args.captions)
    matches = match_report(keys, seen)
    unmatched = no_match_sources(matches)
    if unmatched and not args.allow_no_match:
        s = unmatched[0]
        raise ConfigError(f"--exclude-test: none of the {matches[s]['test_videos']} {s} test videos matches one of "
                          f"the {matches[s]['built_videos']} built {s} videos (video_id forms differ?); fix the ids "
                          "or pass --allow-no-match")
    for s in unmatched:
        warnings["build"][f"--exclude-test: no {s} test video matched a built one (--allow-no-match)"] += 1
    check_overlap(args, jobs, files)
    large = len(built)
    if args.split == "standard":
        def cap(source: str, task: str) -> int:  # caps count final records
            per = args.caption_variants if task in CAPTION_TASKS else 1
            return config.sources[source].tasks[task].cap // per
        built = standard_sample(built, lambda b: (b.video.source, b.task), cap, seed)
    resize = frame_resize(args) if args.plan or args.frames_out else Resize()
    if args.plan:
        from data_preprocess.builder.plan import make_plan

        plan = make_plan(built, Path(args.frames_out) if args.frames_out else None, resize,
                         args.caption_variants, CAPTION_TASKS)
        try:
            write_json_atomic(plan_path(args.out), plan)
        except OSError as exc:
            raise OutputError(f"--plan {plan_path(args.out)}: cannot write ({exc.strerror or exc})") from None
        return {"plan": plan}
    frames: dict[str, Any] = {"frames_out": args.frames_out}
    if args.frames_out:
        from data_preprocess.builder.extraction import run_frame_stage

        stage = run_frame_stage(built, Path(args.frames_out), args.workers, resize,
                                progress=False if args.no_progress else None)
        built, dropped = stage.kept, dropped + stage.dropped
        for b in built:
            b.scale = stage.scales.get((b.video.source, b.video.video_id))
        frames.update(extracted=len(stage.extracted), written=stage.written, resumed=stage.resumed,
                      linked=stage.linked, errors=stage.errors, missing_frames=stage.missing_frames,
                      resize_max_pixels=resize.max_pixels, resized_videos=len(stage.scales),
                      workers=args.workers, seconds=round(stage.seconds, 2), decoded=stage.decoded,
                      seeks=stage.seeks,
                      frames_per_s=round(stage.written / stage.seconds, 1) if stage.seconds else None)
    manifest = {
        "command": "python -m data_preprocess.builder " + " ".join(args.argv),
        "config": config.path, "seed": seed, "split": args.split, "captions": args.captions,
        "records": len(built), "records_large": large,
        "counts": mf.counts(built),
        "mix": mf.mix(built, args.split, args.caption_variants, CAPTION_TASKS),
        "dropped": mf.nested(dropped),
        "excluded": {"records": sum(excluded.values()), "videos": len(excluded_videos),
                     "per_source": dict(excluded), "test_files": list(args.exclude_test),
                     "test_videos": sum(len(k) for k in keys.values()), "matches": matches},
        "adapter_skipped": {name: dict(c) for name, c in skipped.items()},
        "warnings": {name: dict(c) for name, c in warnings.items() if c},
        "frames": frames,
        "inputs": mf.inputs(files),
        "licences": mf.licences(config, read_sources),
    }
    write_outputs(args.out, built, manifest)
    return manifest


def _one_line(exc: BaseException) -> str:
    """The message on one line (a value quoted in it may hold a line break)."""
    return " ".join(str(exc).split("\n"))


def empty_tasks(config: BuildConfig, built: list[Built], dropped: Counter[tuple[str, str, str]],
                sources: set[str], captions: str) -> Counter[str]:
    """A warning per (source, task) the config asks for that yielded no record, with its main drop reason."""
    made = {(b.video.source, b.task) for b in built}
    out: Counter[str] = Counter()
    for source in sorted(sources & set(config.sources)):
        for task in config.sources[source].tasks:
            if (source, task) in made or (task in CAPTION_TASKS and captions == "none"):
                continue
            reasons = Counter({r: n for (s, t, r), n in dropped.items() if (s, t) == (source, task)})
            why = f"most dropped: {reasons.most_common(1)[0][0]}" if reasons else "nothing to build it from"
            out[f"{source} {task}: no records ({why})"] += 1
    return out


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
    if "plan" in manifest:
        from data_preprocess.builder.plan import describe

        print("\n".join(describe(manifest["plan"])))
        return 0
    for name, messages in manifest["warnings"].items():
        for message, n in messages.items():
            print(f"warning: {name}: {message} ({n})", file=sys.stderr)
    for source, tasks in manifest["counts"].items():
        print(f"{source}: " + ", ".join(f"{t} {sum(f.values())}" for t, f in tasks.items()))
    mix = manifest["mix"]
    if mix["records_final"]:
        shares = "/".join(f"{mix['fps'][r]['share']:.1f}" for r in ("0.5", "1.0", "2.0"))
        print(f"mix: {mix['records_final']} final records ({mix['ratio_to_paper']:.3f} x the paper's "
              f"{mix['paper_records']}); fps 0.5/1/2: {shares} % (paper 63.3/22.0/7.5)")
    for source, m in manifest["excluded"]["matches"].items():
        print(f"--exclude-test {source}: {m['matched']} of {m['test_videos']} test videos matched among "
              f"{m['built_videos']} built")
    print(f"{manifest['records']} records ({manifest['excluded']['records']} excluded as test/val clips) "
          f"in {time.perf_counter() - started:.1f} s -> {args.out}")
    return 0
