"""Frame paths of a clip, and frame extraction with PyAV (once per (video, fps), resumable).

Paths are relative to a data root: `<Source>/<folder>/<file>` for releases that ship frame folders
(the data root's `<Source>` is the source root; `--frames-out` gets that link), and
`<Source>/frames_<fps>fps/<video_id>/<k:06d>.jpg` (frame k at k/fps seconds) for extracted frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.validate import frame_name

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")
DONE = ".done"  # decode.DONE


def frame_times(start: float, end: float, fps: float) -> list[float]:
    """Sampling times of a clip: start, start + 1/fps, ... before end (at least one)."""
    n = max(1, int((end - start) * fps + 1e-6))
    return [start + k / fps for k in range(n)]


def extracted_dir(video: Video, fps: float) -> str:
    return f"{video.source}/frames_{fps:g}fps/{video.video_id}"


def frame_problem(video: Video, fps: float) -> str:
    """Why a video's clips cannot be sampled at `fps` ('' when they can)."""
    src = video.frames
    if src.kind == "folder" and fps > src.rate + 1e-9:
        return f"record fps {fps:g} above the frame folder's {src.rate:g} fps"
    return ""


def clip_frames(video: Video, start: float, end: float, fps: float) -> list[str] | str:
    """The clip's frame paths in time order, or the reason there are none."""
    problem = frame_problem(video, fps)
    if problem:
        return problem
    src = video.frames
    times = frame_times(start, end, fps)
    if src.kind == "folder":
        prefix, rate, scale = f"{video.source}/{src.path}/", src.rate, src.index_fps / src.rate
        return [prefix + frame_name(src.pattern, src.offset + round(round(t * rate) * scale)) for t in times]
    prefix = f"{extracted_dir(video, fps)}/"
    return [f"{prefix}{round(t * fps):06d}.jpg" for t in times]


def last_frame_index(start: float, end: float, fps: float) -> int:
    """The extracted-frame number of a clip's last frame."""
    return round(frame_times(start, end, fps)[-1] * fps)


def find_video(video: Video, videos_dir: Path | None, root: Path) -> Path | None:
    """The video file of a `video` frame source: its path, its file name or `videos/<file name>` under
    --videos, then under --root; a path without extension tries the common video extensions. The path is
    relative (check_video refuses absolute ones and `..`), so the file is looked for inside those roots only."""
    given = Path(video.frames.path)
    for base in (videos_dir, root):
        if base is None:
            continue
        for rel in dict.fromkeys((given, Path(given.name), Path("videos") / given.name)):
            candidates = [base / rel] if rel.suffix else [base / f"{rel}{ext}" for ext in VIDEO_EXTENSIONS]
            found = next((p for p in candidates if p.is_file()), None)
            if found:
                return found
    return None


@dataclass
class Extracted:
    frames: int  # frames written (or found done) for this (video, fps)
    resumed: bool


class FrameOutputError(Exception):
    """Frames cannot be written under --frames-out (read-only, full disk, not a folder): the build stops."""


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Turn an OSError of writing into `folder` into a FrameOutputError naming it."""
    try:
        yield
    except OSError as exc:
        raise FrameOutputError(f"{folder}: cannot write frames ({exc.strerror or exc})") from None


def extract(path: Path, targets: Mapping[float, Path], quality: int = 90) -> dict[float, Extracted]:
    """Every frame of a video at each fps of `targets`, in one decode (see decode.extract_frames, which
    extracts only the frames records need); frames already on disk are kept. Raises on an unreadable file."""
    from data_preprocess.builder.decode import Target, extract_frames

    outcome = extract_frames(str(path), [Target(fps, str(folder)) for fps, folder in targets.items()],
                             quality=quality)
    if outcome.error:
        raise OSError(f"{path}: {outcome.error}")
    return {fps: Extracted(outcome.present[fps], outcome.resumed[fps]) for fps in targets}


def link_frame_folder(frames_out: Path, source: str, root: Path, top: str) -> None:
    """Make `<frames_out>/<Source>/<top>` point at `<root>/<top>`, a frame folder tree the release ships
    (so extracted frames of the same source, under `<Source>/frames_<fps>fps/`, never land inside the
    release). An existing link must point at the same folder (else FrameLinkError); an existing real
    folder is the user's and is left alone; a whole-root `<Source>` link of an earlier build is accepted."""
    base = frames_out / source
    if base.is_symlink():
        if base.resolve() != root.resolve():
            raise FrameLinkError(f"{base}: links to {base.resolve()}, but {source} frames are read from "
                                 f"{root.resolve()}; remove the link or use another --frames-out")
        return
    link = base / top
    if link.is_symlink():
        if link.resolve() != (root / top).resolve():
            raise FrameLinkError(f"{link}: links to {link.resolve()}, but {source} frames are read from "
                                 f"{(root / top).resolve()}; remove the link or use another --frames-out")
        return
    if link.exists():
        return
    with writing(frames_out):
        base.mkdir(parents=True, exist_ok=True)
        link.symlink_to((root / top).resolve(), target_is_directory=True)


def top_folder(video: Video) -> str:
    """The first folder of a `folder` frame source's path (what `link_frame_folder` links)."""
    parts = [p for p in Path(video.frames.path).parts if p not in ("", ".")]
    if not parts or parts[0].startswith("frames_"):
        raise FrameLinkError(f"{video.source} {video.video_id}: frame folder {video.frames.path!r} must be a "
                             "sub-folder of the release root not named frames_*")
    return parts[0]


class FrameLinkError(ValueError):
    """The data root's `<Source>` entry cannot serve the frame folders of this build."""


def probe_duration(path: Path) -> float:
    """A video file's duration in seconds (container duration, else frames / rate)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000
        return float(stream.frames / stream.average_rate) if stream.frames and stream.average_rate else 0.0
