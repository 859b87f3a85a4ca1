"""The frame stage of a build: extract the frames the kept records name (only those: each video decoded once
for all its record fps, seeking over gaps, in parallel worker processes, resized to the recipes' pixel
budget), link the frame folders releases ship, then check that every frame each record names exists and
drop the records whose frames do not (a video shorter than its annotations, a missing or unreadable file,
a release folder missing images)."""

from __future__ import annotations

import bisect
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from data_preprocess.builder.decode import NO_RESIZE, Outcome, Resize, Target, extract_frames
from data_preprocess.builder.frames import (
    FrameLinkError,
    clip_frames,
    extracted_dir,
    find_video,
    frame_times,
    link_frame_folder,
    top_folder,
)
from data_preprocess.builder.pipeline import Built

Group = tuple[str, str, float]  # (source, video_id, fps)


@dataclass
class FrameStage:
    kept: list[Built]
    dropped: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    extracted: dict[str, int] = field(default_factory=dict)  # "<Source>/frames_<fps>fps/<id>" -> frames present
    written: int = 0  # JPEGs written by this run
    resumed: int = 0  # (video, fps) folders that had every needed frame already
    linked: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # video file -> why it could not be read
    missing_frames: int = 0  # frame files records named that do not exist (their records dropped)
    scales: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # resized videos
    seconds: float = 0.0  # extraction wall time
    decoded: int = 0
    seeks: int = 0


def merged(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching [start, end) intervals joined, in order."""
    out: list[list[float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def group_builds(builds: Sequence[Built]) -> dict[Group, list[Built]]:
    groups: dict[Group, list[Built]] = defaultdict(list)
    for b in builds:
        groups[b.video.source, b.video.video_id, b.fps].append(b)
    return groups


def frame_names(group: Sequence[Built]) -> dict[int, str]:
    """{frame index k (t = k / fps): path} of every frame the group's records name."""
    first = group[0]
    out: dict[int, str] = {}
    for start, end in merged((b.item.start, b.item.end) for b in group):
        paths = clip_frames(first.video, start, end, first.fps)
        assert not isinstance(paths, str), paths  # checked when the records were built
        out.update(zip((round(t * first.fps) for t in frame_times(start, end, first.fps)), paths, strict=True))
    return out


def record_indices(b: Built) -> tuple[int, int]:
    """First and last frame index of a record."""
    times = frame_times(b.item.start, b.item.end, b.fps)
    return round(times[0] * b.fps), round(times[-1] * b.fps)


class Listing:
    """Folder listings, read once each (existence checks of millions of frames without a stat each)."""

    def __init__(self, root: Path) -> None:
        self.root, self.cache = root, {}

    def has(self, rel: str) -> bool:
        folder, _, name = rel.rpartition("/")
        if folder not in self.cache:
            try:
                self.cache[folder] = set(os.listdir(self.root / folder))
            except OSError:
                self.cache[folder] = set()
        return name in self.cache[folder]


def _link(b: Built, frames_out: Path, stage: FrameStage, roots: dict[str, Path], done: set[tuple[str, str]]) -> None:
    source, root = b.video.source, b.root.resolve()
    if source not in roots:
        roots[source] = root
        stage.linked.append(source)
    elif roots[source] != root:
        raise FrameLinkError(f"{source} frame folders come from two roots ({roots[source]} and {root}); "
                             "one data root can hold one of them")
    top = top_folder(b.video)
    if (source, top) not in done:
        link_frame_folder(frames_out, source, b.root, top)
        done.add((source, top))


def _check_writable(frames_out: Path, source: str) -> None:
    """Extracted frames go to `<frames_out>/<Source>/frames_*`: never through a link into a release."""
    if (frames_out / source).is_symlink():
        raise FrameLinkError(f"{frames_out / source}: links into a release (an earlier build's layout), so "
                             f"{source} frames extracted now would be written there; remove the link")


@dataclass(frozen=True)
class Job:
    key: tuple[str, str]  # (source, video_id)
    path: str
    targets: tuple[Target, ...]

    @property
    def frames(self) -> int:
        return sum(len(t.needed or ()) for t in self.targets)


def extraction_jobs(groups: dict[Group, list[Built]], frames_out: Path) -> tuple[list[Job], dict[tuple[str, str], str]]:
    """One job per video file (all its fps), and the videos whose file is not found."""
    by_video: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for key, group in groups.items():
        if group[0].video.frames.kind == "video":
            by_video[key[0], key[1]].append(key)
    jobs, missing = [], {}
    for video_key, keys in sorted(by_video.items()):
        first = groups[keys[0]][0]
        path = find_video(first.video, first.videos_dir, first.root)
        if path is None:
            missing[video_key] = "video file not found"
            continue
        targets = tuple(Target(fps, str(frames_out / extracted_dir(first.video, fps)),
                               tuple(sorted(frame_names(groups[(*video_key, fps)])))) for *_, fps in sorted(keys))
        jobs.append(Job(video_key, str(path), targets))
    return jobs, missing


class Progress:
    """Frames done of the total with a rate and an ETA, on stderr (tqdm when it is a terminal)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        from tqdm import tqdm

        disable = {True: False, False: True, None: None}[enabled]  # None: only on a terminal
        self.bar = tqdm(total=total, unit="frame", desc="frames", disable=disable, file=sys.stderr, smoothing=0.1)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def run_jobs(jobs: list[Job], resize: Resize, workers: int, on_done: Callable[[Job, Outcome], None]) -> None:
    """Each job in a worker process (`workers` > 1) or here, calling `on_done` as each finishes."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_done(job, extract_frames(job.path, list(job.targets), resize))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(extract_frames, job.path, list(job.targets), resize): job for job in jobs}
        try:
            for future in as_completed(futures):
                on_done(futures[future], future.result())
        except BaseException:  # e.g. FrameOutputError: the build stops, so start no further video
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def run_frame_stage(builds: list[Built], frames_out: Path, workers: int = 1, resize: Resize = NO_RESIZE,
                    progress: bool | None = None) -> FrameStage:
    """Link shipped frame folders, extract the frames the records need, then keep the records whose every
    frame exists under `frames_out`."""
    import time

    stage = FrameStage(kept=[])
    roots: dict[str, Path] = {}
    done: set[tuple[str, str]] = set()
    for b in builds:
        if b.video.frames.kind == "folder":
            _link(b, frames_out, stage, roots, done)
    groups = group_builds(builds)
    jobs, failed = extraction_jobs(groups, frames_out)
    for source in sorted({key[0] for key in (*failed, *(j.key for j in jobs))}):
        _check_writable(frames_out, source)
    bar = Progress(sum(j.frames for j in jobs), progress)
    started = time.perf_counter()

    def on_done(job: Job, outcome: Outcome) -> None:
        bar.update(job.frames)
        stage.decoded += outcome.decoded
        stage.seeks += outcome.seeks
        if outcome.error:
            stage.errors[job.path] = outcome.error
            failed[job.key] = "video file unreadable (see frames.errors)"
        for target in job.targets:
            stage.extracted[str(Path(target.folder).relative_to(frames_out))] = outcome.present.get(target.fps, 0)
            stage.written += outcome.written.get(target.fps, 0)
            stage.resumed += bool(outcome.resumed.get(target.fps)) and not outcome.error
        if outcome.size and outcome.stored and outcome.size != outcome.stored:
            stage.scales[job.key] = (outcome.stored[0] / outcome.size[0], outcome.stored[1] / outcome.size[1])

    try:
        run_jobs(jobs, resize, workers, on_done)
    finally:
        bar.close()
    stage.seconds = time.perf_counter() - started
    keep_existing(groups, frames_out, stage, failed)
    order = {id(b): i for i, b in enumerate(builds)}
    stage.kept.sort(key=lambda b: order[id(b)])
    return stage


def keep_existing(groups: dict[Group, list[Built]], frames_out: Path, stage: FrameStage,
                  failed: dict[tuple[str, str], str]) -> None:
    """Keep the records whose every frame file exists (one listing per folder); count the others."""
    listing = Listing(frames_out)
    absent: set[str] = set()
    for (source, video_id, _), group in groups.items():
        reason = failed.get((source, video_id))
        if reason:
            for b in group:
                stage.dropped[source, b.task, reason] += 1
            continue
        names = frame_names(group)
        missing = sorted(k for k, path in names.items() if not listing.has(path))
        absent.update(names[k] for k in missing)
        why = ("frames past the end of the video file" if group[0].video.frames.kind == "video"
               else "frame files missing from the release folder")
        for b in group:
            first, last = record_indices(b)
            if missing and bisect.bisect_left(missing, first) < bisect.bisect_right(missing, last):
                stage.dropped[source, b.task, why] += 1
            else:
                stage.kept.append(b)
    stage.missing_frames = len(absent)
