"""The frame stage of a build: extract what the kept records reference (each video decoded once for all
its record fps), then drop records whose frames the video file does not have (a video shorter than its
annotations, or a missing or unreadable file)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from data_preprocess.build.frames import (
    FrameLinkError,
    extract,
    extracted_dir,
    find_video,
    last_frame_index,
    link_frame_folder,
    top_folder,
)
from data_preprocess.build.pipeline import Built


@dataclass
class FrameStage:
    kept: list[Built]
    dropped: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    extracted: dict[str, int] = field(default_factory=dict)  # "<Source>/frames_<fps>fps/<id>" -> frames
    resumed: int = 0
    linked: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # video file -> why it could not be read


def _last_index(built: Built) -> int:
    return last_frame_index(built.item.start, built.item.end, built.fps)


def _extract(video_builds: list[Built], frames_out: Path, stage: FrameStage) -> dict[float, int | str]:
    """Frames extracted per fps for one video's records (one decode for all its fps), or why there are
    none: a missing or unreadable video drops its records with the reason, it does not stop the build."""
    import av

    first = video_builds[0]
    fps_set = sorted({b.fps for b in video_builds})
    path = find_video(first.video, first.videos_dir, first.root)
    if path is None:
        return dict.fromkeys(fps_set, "video file not found")
    folders = {fps: extracted_dir(first.video, fps) for fps in fps_set}
    try:
        results = extract(path, {fps: frames_out / folder for fps, folder in folders.items()})
    except (av.FFmpegError, OSError, IndexError) as exc:
        stage.errors[str(path)] = f"{type(exc).__name__}: {exc}"
        return dict.fromkeys(fps_set, "video file unreadable (see frames.errors)")
    for fps, result in results.items():
        stage.extracted[folders[fps]] = result.frames
        stage.resumed += result.resumed
    return {fps: r.frames for fps, r in results.items()}


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


def run_frame_stage(builds: list[Built], frames_out: Path) -> FrameStage:
    """Extract each video once (all the fps its records use) into `frames_out`; link shipped frame folders."""
    stage = FrameStage(kept=[])
    roots: dict[str, Path] = {}
    done: set[tuple[str, str]] = set()
    by_video: dict[tuple[str, str], list[Built]] = defaultdict(list)
    for b in builds:
        if b.video.frames.kind == "folder":
            _link(b, frames_out, stage, roots, done)
        else:
            by_video[b.video.source, b.video.video_id].append(b)
    for source in sorted({source for source, _ in by_video}):
        _check_writable(frames_out, source)
    counts = {key: _extract(group, frames_out, stage) for key, group in by_video.items()}
    for b in builds:
        n = counts[b.video.source, b.video.video_id][b.fps] if b.video.frames.kind == "video" else None
        if isinstance(n, str):
            stage.dropped[b.video.source, b.task, n] += 1
        elif n is not None and _last_index(b) >= n:
            stage.dropped[b.video.source, b.task, "frames past the end of the video file"] += 1
        else:
            stage.kept.append(b)
    return stage
