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


def _last_index(built: Built) -> int:
    return last_frame_index(built.item.start, built.item.end, built.fps)


def run_frame_stage(builds: list[Built], frames_out: Path) -> FrameStage:
    """Extract each (video, fps) once into `frames_out`; link shipped frame folders under it."""
    stage = FrameStage(kept=[])
    counts: dict[tuple[str, str, float], int | None] = {}
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
            path = find_video(v, b.videos_dir, b.root)
            if path is None:
                counts[key] = None
            else:
                result = extract(path, frames_out / extracted_dir(v, b.fps), b.fps)
                counts[key] = result.frames
                stage.extracted[extracted_dir(v, b.fps)] = result.frames
                stage.resumed += result.resumed
        n = counts[key]
        if n is None:
            stage.dropped[v.source, b.task, "video file not found"] += 1
        elif _last_index(b) >= n:
            stage.dropped[v.source, b.task, "frames past the end of the video file"] += 1
        else:
            stage.kept.append(b)
    return stage
