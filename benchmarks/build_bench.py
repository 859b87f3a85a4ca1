"""Benchmark the MedVidBench builder: records/s and peak RSS on a synthetic source, and frame extraction.

    python benchmarks/build_bench.py [--videos 500] [--minutes 30] [--extract-seconds 120] [--workdir DIR]

1. Writes a canonical source of `--videos` CholecT50-like videos (`--minutes` long; 7 phases, one tool
   track with a box every second for a fifth of the video, in-place frame folders so nothing is
   extracted) and runs `python -m data_preprocess.build --source canonical --captions facts` in a child
   process: records/s end to end (reading, generating, writing JSON + manifest; wall and CPU time, since
   the wall time on a shared host depends on the neighbours' load) and the child's peak RSS
   (with its RSS right after the imports, most of which is torch pulled in by `data_preprocess`).
2. Writes one synthetic 320x240 25 fps MPEG-4 video of `--extract-seconds` and extracts it with the
   builder's PyAV extractor at 0.5, 1 and 2 fps, then all three in one decode (as a build does for a video
   whose records use several fps): decoded video seconds per wall second and JPEGs/s.
"""

from __future__ import annotations

import argparse
import itertools
import json
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
           "import resource, sys, time; from data_preprocess.build.cli import main; "
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


def bench_extract(work: Path, seconds: int) -> list[dict]:
    from data_preprocess.build.frames import extract
    from tests.build_fixtures import write_video

    video = write_video(work / "clip.mp4", seconds, fps=25, size=(320, 240))
    rows = []
    for fps in (0.5, 1.0, 2.0):
        out = work / f"frames_{fps:g}"
        t = time.perf_counter()
        result = extract(video, {fps: out})[fps]
        wall = time.perf_counter() - t
        rows.append({"fps": fps, "frames": result.frames, "seconds": round(wall, 2),
                     "video_s_per_s": round(seconds / wall, 1), "frames_per_s": round(result.frames / wall, 1)})
        t = time.perf_counter()
        assert extract(video, {fps: out})[fps].resumed
        rows[-1]["rerun_ms"] = round((time.perf_counter() - t) * 1000, 2)
    targets = {fps: work / f"all_{fps:g}" for fps in (0.5, 1.0, 2.0)}
    t = time.perf_counter()
    frames = sum(r.frames for r in extract(video, targets).values())
    wall = time.perf_counter() - t
    rows.append({"fps": "0.5+1+2 in one decode", "frames": frames, "seconds": round(wall, 2),
                 "video_s_per_s": round(seconds / wall, 1), "frames_per_s": round(frames / wall, 1)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=500)
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--extract-seconds", type=int, default=120)
    p.add_argument("--workdir")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="build_bench_"))
    try:
        print(json.dumps({"build": bench_build(work, args.videos, args.minutes),
                          "extract_320x240_25fps": bench_extract(work, args.extract_seconds)}, indent=1))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
