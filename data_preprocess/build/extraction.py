"""The frame stage of a build: extract what the kept records reference, then drop records whose frames
the video file does not have (a video shorter than its annotations, or a missing file)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data_preprocess.build.frames import (
    FrameLinkError,
    extract,
    extracted_dir,
    find_video,
    last_frame_index,
    link_frame_folder,
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


def _extract(b: Built, frames_out: Path, stage: FrameStage) -> int | str:
    """Frames extracted for the record's (video, fps), or why there are none (an unreadable or missing
    video drops its records with the reason; it does not stop a long extraction)."""
    import av

    path = find_video(b.video, b.videos_dir, b.root)
    if path is None:
        return "video file not found"
    folder = extracted_dir(b.video, b.fps)
    try:
        result = extract(path, frames_out / folder, b.fps)
    except (av.FFmpegError, OSError, IndexError) as exc:
        stage.errors[str(path)] = f"{type(exc).__name__}: {exc}"
        return "video file unreadable (see frames.errors)"
    stage.extracted[folder] = result.frames
    stage.resumed += result.resumed
    return result.frames


def run_frame_stage(builds: list[Built], frames_out: Path) -> FrameStage:
    """Extract each (video, fps) once into `frames_out`; link shipped frame folders under it."""
    stage = FrameStage(kept=[])
    counts: dict[tuple[str, str, float], int | str] = {}
    roots: dict[str, Path] = {}
    for b in builds:
        v = b.video
        if v.frames.kind == "folder":
            if v.source not in roots:
                link_frame_folder(frames_out, v.source, b.root)
                roots[v.source] = b.root.resolve()
                stage.linked.append(v.source)
            elif roots[v.source] != b.root.resolve():
                raise FrameLinkError(f"{v.source} frame folders come from two roots ({roots[v.source]} and "
                                     f"{b.root.resolve()}); one data root can hold one of them")
            stage.kept.append(b)
            continue
        key = (v.source, v.video_id, b.fps)
        if key not in counts:
            counts[key] = _extract(b, frames_out, stage)
        n = counts[key]
        if isinstance(n, str):
            stage.dropped[v.source, b.task, n] += 1
        elif _last_index(b) >= n:
            stage.dropped[v.source, b.task, "frames past the end of the video file"] += 1
        else:
            stage.kept.append(b)
    return stage
