"""CLI: build MedVidBench records from local copies of the source datasets.

    python -m data_preprocess.build --source NAME --root DIR [--videos DIR] --out OUT.json
        [--frames-out DIR] [--config YAML] [--split large|standard] [--exclude-test TEST.json]
        [--seed N] [--limit-videos N] [--captions none|facts] [--workers N] [--video-spec YAML |
        --full-resolution] [--plan]
    python -m data_preprocess.build --all SOURCES.yaml --out OUT.json [...]

Writes OUT.json (a list of records) and OUT.manifest.json atomically. Exit status 2: bad input or config.
"""

from __future__ import annotations

import argparse
import os
import sys
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
from data_preprocess.build.config import DEFAULT_CONFIG, BuildConfig, ConfigError, load_config
from data_preprocess.build.decode import Resize
from data_preprocess.build.frames import FrameLinkError
from data_preprocess.build.generators import CAPTION_TASKS
from data_preprocess.build.pipeline import CAPTION_MODES, BuildOptions, Built, build_source
from data_preprocess.build.select import excluder, load_test_keys, match_report, no_match_sources, standard_sample
from reward_fns.atomic_io import atomic_path, write_json_atomic

DEFAULT_VIDEO_SPEC = DEFAULT_CONFIG.with_name("medgrpo_video.yaml")
SPEC_DEFAULTS = {"max_pixels": 48 * 28 * 28, "min_pixels": 8 * 28 * 28, "image_patch_size": 14, "merge_size": 2}


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


def jobs_from_args(args: argparse.Namespace) -> list[Job]:
    if args.source:
        if not args.root:
            raise ConfigError("--root is required with --source")
        return [Job(args.source, Path(args.root), Path(args.videos) if args.videos else None)]
    path = Path(args.all)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    entries = data.get("sources") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: must be a list (or {{sources: [...]}}) of {{source, root, videos}}")
    jobs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("source") not in ADAPTERS or not entry.get("root"):
            raise ConfigError(f"{path}: entry {i}: needs source (one of {sorted(ADAPTERS)}) and root")
        videos = entry.get("videos")
        jobs.append(Job(entry["source"], path.parent / entry["root"], path.parent / videos if videos else None))
    return jobs


def write_records(path: str, built: list[Built]) -> None:
    """The JSON list, one record at a time (frame lists are made here), replaced atomically."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(b"[")
        for i, b in enumerate(built):
            f.write(b"," if i else b"")
            f.write(orjson.dumps(b.record))
        f.write(b"]\n")


def frame_resize(args: argparse.Namespace) -> Resize:
    """The resize of extracted frames: the VideoSpec YAML's per-frame pixel budget (`max_pixels`,
    `min_pixels`, `image_patch_size` x `merge_size` x 2 as the side multiple, as the model's frame resize),
    or none. Read as plain YAML: importing VideoSpec would pull in torch through qwen-vl-utils."""
    if args.full_resolution:
        return Resize()
    path = Path(args.video_spec) if args.video_spec else DEFAULT_VIDEO_SPEC
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data = data.get("video_spec", data) if isinstance(data, dict) else {}
        spec = {k: int(data.get(k, default)) for k, default in SPEC_DEFAULTS.items()}
    except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a VideoSpec YAML ({exc})") from None
    if not 0 < spec["min_pixels"] <= spec["max_pixels"] or spec["image_patch_size"] < 1 or spec["merge_size"] < 1:
        raise ConfigError(f"{path}: needs 0 < min_pixels <= max_pixels and positive patch sizes, got {spec}")
    return Resize(spec["max_pixels"], spec["min_pixels"], 2 * spec["image_patch_size"] * spec["merge_size"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {args.workers}")
    config = load_config(args.config)
    seed = config.seed if args.seed is None else args.seed
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
    for job in jobs_from_args(args):
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
    large = len(built)
    if args.split == "standard":
        def cap(source: str, task: str) -> int:  # caps count final records
            per = args.caption_variants if task in CAPTION_TASKS else 1
            return config.sources[source].tasks[task].cap // per
        built = standard_sample(built, lambda b: (b.video.source, b.task), cap, seed)
    resize = frame_resize(args) if args.plan or args.frames_out else Resize()
    if args.plan:
        from data_preprocess.build.plan import make_plan

        plan = make_plan(built, Path(args.frames_out) if args.frames_out else None, resize,
                         args.caption_variants, CAPTION_TASKS)
        write_json_atomic(f"{args.out.removesuffix('.json')}.plan.json", plan)
        return {"plan": plan}
    frames: dict[str, Any] = {"frames_out": args.frames_out}
    if args.frames_out:
        from data_preprocess.build.extraction import run_frame_stage

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
    write_records(args.out, built)
    manifest = {
        "command": "python -m data_preprocess.build " + " ".join(args.argv),
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
    write_json_atomic(f"{args.out.removesuffix('.json')}.manifest.json", manifest)
    return manifest


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
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "plan" in manifest:
        from data_preprocess.build.plan import describe

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
