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

from data_preprocess.build.canonical import Video
from data_preprocess.build.validate import frame_name
from reward_fns.atomic_io import atomic_path, write_text_atomic

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")
DONE = ".done"


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
def _writing(folder: Path) -> Iterator[None]:
    """Turn an OSError of writing into `folder` into a FrameOutputError naming it."""
    try:
        yield
    except OSError as exc:
        raise FrameOutputError(f"{folder}: cannot write frames ({exc.strerror or exc})") from None


def done_count(folder: Path) -> int | None:
    """The frame count in a finished folder's `.done` marker; None when there is no marker or it is corrupt
    (not a plain count, or its last frame file is missing): the folder is then redone, resuming."""
    marker = folder / DONE
    if not marker.is_file():
        return None
    try:
        text = marker.read_bytes()[:32].decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit() or len(text) > 10:
        return None
    n = int(text)
    return n if n == 0 or (folder / f"{n - 1:06d}.jpg").is_file() else None


def extract(path: Path, targets: Mapping[float, Path], quality: int = 90) -> dict[float, Extracted]:
    """Decode a video once and write, for each fps of `targets`, frame k (the first decoded frame at or
    after k / fps) as `<folder>/<k:06d>.jpg`. A `.done` marker per folder makes reruns skip that fps; an
    unfinished folder picks up after its last complete file (files are renamed into place when written).
    Decoding problems raise PyAV's errors; a folder that cannot be written raises FrameOutputError."""
    import av

    out: dict[float, Extracted] = {}
    pending: dict[float, tuple[Path, list[int]]] = {}  # fps -> (folder, [next k, first k to write])
    for fps, folder in targets.items():
        done = done_count(folder)
        if done is not None:
            out[fps] = Extracted(done, True)
            continue
        with _writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
            pending[fps] = (folder, [0, max(0, len(list(folder.glob("*.jpg"))) - 1)])
    if not pending:
        return out
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            image = None
            for fps, (folder, state) in pending.items():
                while frame.time + 1e-6 >= state[0] / fps:
                    if state[0] >= state[1]:
                        image = image or frame.to_image()
                        with _writing(folder), atomic_path(folder / f"{state[0]:06d}.jpg") as tmp:
                            image.save(tmp, format="JPEG", quality=quality)
                    state[0] += 1
    for fps, (folder, state) in pending.items():
        with _writing(folder):
            write_text_atomic(folder / DONE, str(state[0]))
        out[fps] = Extracted(state[0], False)
    return out


def link_frame_folder(frames_out: Path, source: str, root: Path) -> None:
    """Make `<frames_out>/<Source>` point at a release that ships its frames. An existing link must point
    at the same root (else FrameLinkError); an existing real folder is the user's and is left alone."""
    link = frames_out / source
    if link.is_symlink():
        if link.resolve() != root.resolve():
            raise FrameLinkError(f"{link}: links to {link.resolve()}, but {source} frames are read from "
                                 f"{root.resolve()}; remove the link or use another --frames-out")
        return
    if link.exists():
        return
    with _writing(frames_out):
        frames_out.mkdir(parents=True, exist_ok=True)
        link.symlink_to(root.resolve(), target_is_directory=True)


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
