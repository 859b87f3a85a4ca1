"""Benchmark the MedVidBench builder: records/s and peak RSS on a synthetic source, and frame extraction.

    python benchmarks/builder_bench.py [--videos 500] [--minutes 30] [--extract-seconds 60] [--copies 4]
        [--workers N] [--mix SCALE] [--skip-build] [--skip-extract] [--workdir DIR]

1. Writes a canonical source of `--videos` CholecT50-like videos (`--minutes` long; 7 phases, one tool
   track with a box every second for a fifth of the video, in-place frame folders so nothing is
   extracted) and runs `python -m data_preprocess.builder --source canonical --captions facts` in a child
   process: records/s end to end (reading, generating, writing JSON + manifest; wall and CPU time, since
   the wall time on a shared host depends on the neighbours' load) and the child's peak RSS
   (with its RSS right after the imports, most of which is torch pulled in by `data_preprocess`).
2. Writes a synthetic 1280x720 30 fps video (moving texture, H.264, a keyframe every 2 s) and builds NurViD-like
   records over it with `--frames-out` (the real frame stage: `--plan` first, then the build): frames/s and
   video-s/s of extraction for every frame at 1 and 2 fps (full resolution and resized to the recipes'
   VideoSpec), three sparse 10-s clips (seeking), and `--copies` videos with 1 and `--workers` processes;
   beside each, the plan's disk estimate and the bytes actually written.
3. `--mix S`: the medvidbench_paper preset on the release-sized synthetic root at scale S (fps and task shares,
   records against the paper's 531,850).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = ("preparation", "carlot-triangle-dissection", "clipping-and-cutting", "gallbladder-dissection",
          "gallbladder-packaging", "cleaning-and-coagulation", "gallbladder-extraction")
REPO = Path(__file__).resolve().parents[1]


def synthetic_video(i: int, seconds: int) -> dict:
    cuts = [0, *sorted({int(seconds * (k + i % 5 / 10) / 7) for k in range(1, 7)}), seconds]
    segments = [{"label": PHASES[k], "start": float(a), "end": float(b), "kind": "phase",
                 "details": {"instruments": ["grasper", "hook"], "verbs": ["dissect"]}}
                for k, (a, b) in enumerate(itertools.pairwise(cuts))]
    boxes = [{"time": float(t), "label": "grasper", "track": "1",
              "xyxy": [100 + t % 50, 80, 300 + t % 50, 260]} for t in range(seconds // 5)]
    return {"source": "CholecT50", "video_id": f"VID{i:04d}", "fps": 1.0, "duration": float(seconds),
            "width": 854, "height": 480, "segments": segments, "boxes": boxes,
            "frames": {"kind": "folder", "path": f"videos/VID{i:04d}", "pattern": "{n:06d}.png",
                       "index_fps": 1.0, "offset": 0, "rate": 1.0}}


def bench_build(work: Path, n_videos: int, minutes: int) -> dict:
    root = work / "canonical"
    root.mkdir(parents=True, exist_ok=True)
    (root / "videos.json").write_text(json.dumps([synthetic_video(i, minutes * 60) for i in range(n_videos)]))
    out = work / "built.json"
    cmd = [sys.executable, "-c",
           "import resource, sys, time; from data_preprocess.builder.cli import main; "
           "print('RSS0', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); t = time.perf_counter(); "
           "c = time.process_time(); code = main(sys.argv[1:]); print('WALL', time.perf_counter() - t); "
           "print('CPU', time.process_time() - c); "
           "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)",
           "--source", "canonical", "--root", str(root), "--out", str(out), "--captions", "facts"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("WALL", "RSS", "CPU")))
    manifest = json.loads(out.with_name("built.manifest.json").read_text())
    wall = float(lines["WALL"])
    return {"videos": n_videos, "video_minutes": minutes, "records": manifest["records"],
            "seconds": round(wall, 2), "records_per_s": round(manifest["records"] / wall),
            "build_cpu_seconds": round(float(lines["CPU"]), 2),
            "records_per_cpu_s": round(manifest["records"] / float(lines["CPU"])),
            "child_cpu_seconds_with_imports": round(after.ru_utime + after.ru_stime - before.ru_utime
                                                    - before.ru_stime, 2),
            "peak_rss_mb": round(int(lines["RSS"]) / 1024), "rss_after_imports_mb": round(int(lines["RSS0"]) / 1024),
            "output_mb": round(out.stat().st_size / 2**20, 1),
            "input_mb": round((root / "videos.json").stat().st_size / 2**20, 1)}


def textured_video(path: Path, seconds: int, fps: int = 30, size: tuple[int, int] = (1280, 720)) -> Path:
    """A synthetic 720p H.264 (else MPEG-4) video with moving texture and mild noise (real frames compress and
    decode more like this than like flat grey), keyframe every 2 s."""
    import av
    import numpy as np

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        try:
            stream = container.add_stream("libx264", rate=fps, options={"g": str(2 * fps), "preset": "veryfast"})
        except (av.FFmpegError, ValueError):
            stream = container.add_stream("mpeg4", rate=fps)
            stream.gop_size = 2 * fps
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * fps):
            base = 128 + 60 * np.sin((xx + 4 * i) / 37.0) * np.cos((yy - 3 * i) / 23.0)
            img = np.clip(base[..., None] + rng.normal(0, 6, (h, w, 1)) + [0, 20, -20], 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _canonical_source(work: Path, videos: list[Path], seconds: int, windows: list[tuple[float, float]]) -> Path:
    """NurViD-like canonical videos (extracted frames) whose TAG clips are exactly `windows`."""
    root = work / "canon_extract"
    root.mkdir(parents=True, exist_ok=True)
    items = [{"source": "NurViD", "video_id": v.stem, "fps": 30.0, "duration": float(seconds), "width": 1280,
              "height": 720, "procedure": "Bed Shampoo", "frames": {"kind": "video", "path": str(v)},
              "segments": [{"label": "Moisten hair", "start": a, "end": b, "kind": "action"} for a, b in windows]}
             for v in videos]
    (root / "videos.json").write_text(json.dumps(items))
    return root


def _extract_config(work: Path, fps: float, clip: float) -> Path:
    import yaml

    from data_preprocess.builder.config import DEFAULT_CONFIG

    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["sources"] = {"NurViD": {**data["sources"]["NurViD"], "tasks": {"TAG": {"kind": "action", "fps": fps,
                                                                                  "clip_len": clip, "stride": clip}}}}
    path = work / f"extract_{fps:g}_{clip:g}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run_build(root: Path, config: Path, out: Path, frames: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "data_preprocess.builder", "--source", "canonical", "--root", str(root),
           "--config", str(config), "--out", str(out), "--frames-out", str(frames), "--no-progress", *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    if "--plan" in extra:
        return json.loads(out.with_name(out.stem + ".plan.json").read_text())
    return json.loads(out.with_name(out.stem + ".manifest.json").read_text())["frames"]


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.jpg"))


def bench_extract(work: Path, seconds: int, copies: int, workers: int) -> dict:
    """Extraction of 720p30 videos through the builder (`--frames-out`), frames/s and the plan's disk
    estimate against the bytes written: every frame at 1 fps (full resolution and resized), sparse clips
    (seeking), and `copies` videos with 1 and `workers` processes."""
    video = textured_video(work / "v720.mp4", seconds)
    rows: dict[str, dict] = {"video": {"size": "1280x720", "fps": 30, "seconds": seconds,
                                       "mb": round(video.stat().st_size / 2**20, 1)}}
    full = [(0.0, float(seconds))]
    sparse = [(s, s + 10.0) for s in (10.0 * int(seconds * f / 10) for f in (0.15, 0.5, 0.85))]  # 10-s clips
    cases = [("all frames at 1 fps, full resolution", [video], full, 1.0, ("--full-resolution",), 1),
             ("all frames at 1 fps, resized (recipes' VideoSpec)", [video], full, 1.0, (), 1),
             ("three 10-s clips at 2 fps, resized (seeking)", [video], sparse, 2.0, (), 1)]
    more = [video] + [Path(shutil.copy(video, work / f"v720_{i}.mp4")) for i in range(1, copies)]
    cases += [(f"{copies} videos at 1 fps, resized, {n} process(es)", more, full, 1.0, (), n)
              for n in sorted({1, workers})]
    for i, (name, videos, windows, fps, extra, n) in enumerate(cases):
        root = _canonical_source(work / f"case{i}", videos, seconds, windows)
        config = _extract_config(work, fps, windows[0][1] - windows[0][0])
        frames = work / f"frames{i}"
        plan = _run_build(root, config, work / f"case{i}.json", frames, "--plan", *extra)["total"]
        got = _run_build(root, config, work / f"case{i}.json", frames, "--workers", str(n), *extra)
        written = _du(frames)
        rows[name] = {"frames": got["written"], "seconds": got["seconds"], "frames_per_s": got["frames_per_s"],
                      "video_s_per_s": round(len(videos) * (sum(b - a for a, b in windows)) / got["seconds"], 1),
                      "decoded": got["decoded"], "seeks": got["seeks"],
                      "plan_disk_mb": round(plan["disk_bytes"] / 2**20, 2),
                      "written_mb": round(written / 2**20, 2),
                      "bytes_per_frame": round(written / max(1, got["written"]))}
    return rows


def bench_mix(work: Path, scale: float) -> dict:
    """The paper preset on the synthetic root sized like the releases (testbed/toy_sources.release_sized)."""
    from testbed.toy_sources import release_sized

    root = release_sized(work / "sized", scale)
    out = work / "paper.json"
    cmd = [sys.executable, "-m", "data_preprocess.builder", "--source", "canonical", "--root", str(root), "--out",
           str(out), "--captions", "facts", "--config", str(REPO / "recipes" / "config" / "medvidbench_paper.yaml")]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    mix = json.loads(out.with_name("paper.manifest.json").read_text())["mix"]
    return {"scale": scale, "seconds": round(time.perf_counter() - t, 1), **{k: mix[k] for k in (
        "records_final", "ratio_to_paper", "fps_max_diff_points", "fps_within_5_points")},
        "fps": {r: v["share"] for r, v in mix["fps"].items()},
        "tasks": {t: v["share"] for t, v in mix["tasks"].items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=500)
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--extract-seconds", type=int, default=90, help="length of the synthetic 720p30 video")
    p.add_argument("--copies", type=int, default=2, help="videos for the parallel-extraction rows")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--mix", type=float, default=0.0, help="also build the paper preset on a release-sized root "
                                                          "of this scale (1 = full size, a few minutes)")
    p.add_argument("--skip-build", action="store_true", help="only the extraction (and --mix) rows")
    p.add_argument("--skip-extract", action="store_true", help="no extraction rows")
    p.add_argument("--workdir")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="builder_bench_"))
    try:
        result = {} if args.skip_build else {"build": bench_build(work, args.videos, args.minutes)}
        if not args.skip_extract:
            result["extract_720p30"] = bench_extract(work, args.extract_seconds, args.copies, args.workers)
        if args.mix:
            result["paper_mix"] = bench_mix(work, args.mix)
        print(json.dumps(result, indent=1))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
