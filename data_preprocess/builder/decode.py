"""Frame extraction of one video (PyAV): only the frames records need, seeking over gaps, resized to a pixel
budget, resumable. Runs in worker processes (everything here is picklable and self-contained). A frame
folder that cannot be written (read-only, full disk) raises frames.FrameOutputError, which stops the build;
an unreadable video is the Outcome's `error`.

Frame k at `fps` is the first decoded frame at or after k / fps seconds (from the stream's start), written
as `<folder>/<k:06d>.jpg` (a temp name renamed into place). Frames already on disk are not decoded again;
a jump to the next needed frame longer than `SEEK_GAP` seconds seeks to the keyframe before it instead of
decoding through.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from data_preprocess.builder.frames import writing
from reward_fns.atomic_io import atomic_path, write_text_atomic

DONE = ".done"
SEEK_GAP = 8.0  # seconds
JPEG_QUALITY = 90


def fit_pixels(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(height, width) multiples of `factor`, near the aspect ratio, with h x w within [min_pixels,
    max_pixels]: the rule of qwen-vl-utils' `smart_resize` (test_builder_frames checks they agree; a side it
    would floor to 0 stays one factor here), written here so extraction workers need not import it (it
    pulls in torch)."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w


@dataclass(frozen=True)
class Resize:
    """Frames above `max_pixels` are shrunk the way the recipes' VideoSpec shrinks them for the model
    (`fit_pixels` with sides multiples of `factor`); 0 keeps the full resolution; smaller frames keep
    their size (never enlarged)."""

    max_pixels: int = 0
    min_pixels: int = 0
    factor: int = 56

    def size(self, width: int, height: int) -> tuple[int, int]:
        if not self.max_pixels or width * height <= self.max_pixels or not width or not height:
            return width, height
        h, w = fit_pixels(height, width, self.factor, self.min_pixels, self.max_pixels)
        return w, h


NO_RESIZE = Resize()


@dataclass(frozen=True)
class Target:
    """The frames of one fps to have in `folder` (None: every frame to the end of the video)."""

    fps: float
    folder: str
    needed: tuple[int, ...] | None = None


@dataclass
class Outcome:
    """What one video's extraction left: per fps the needed frames now on disk and those written now."""

    path: str
    present: dict[float, int] = field(default_factory=dict)
    written: dict[float, int] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # the video's frame size
    stored: tuple[int, int] | None = None  # the JPEGs' size
    decoded: int = 0
    seeks: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def resumed(self) -> dict[float, bool]:
        return {fps: not self.written.get(fps) for fps in self.present}


def on_disk(folder: Path) -> set[int]:
    """Frame numbers of the complete JPEGs in a folder."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return set()
    return {int(n[:-4]) for n in names if n.endswith(".jpg") and n[:-4].isdigit()}


def _duration(container, stream) -> float:  # PyAV objects
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def extract_frames(path: str, targets: list[Target], resize: Resize = NO_RESIZE,
                   quality: int = JPEG_QUALITY) -> Outcome:
    """Write the missing frames of every target in one pass over the video (seeking over long gaps)."""
    import av

    started = time.perf_counter()
    out = Outcome(path)
    have = {t.fps: on_disk(Path(t.folder)) for t in targets}
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            out.size = (stream.codec_context.width, stream.codec_context.height)
            out.stored = resize.size(*out.size)
            end = _duration(container, stream)
            pending = []
            for t in targets:
                wanted = t.needed if t.needed is not None else range(math.floor(end * t.fps - 1e-9) + 1)
                pending += [(k / t.fps, t.fps, k, t.folder) for k in wanted if k not in have[t.fps]]
            pending.sort()
            for t in targets:
                with writing(Path(t.folder)):
                    Path(t.folder).mkdir(parents=True, exist_ok=True)
                out.written[t.fps] = 0
            if pending:
                _decode(container, stream, pending, out, quality)
    except (av.FFmpegError, OSError, IndexError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    for t in targets:
        now = on_disk(Path(t.folder)) if out.written.get(t.fps) else have[t.fps]
        out.present[t.fps] = len(now) if t.needed is None else len(now.intersection(t.needed))
        if not out.error and Path(t.folder).is_dir():
            with writing(Path(t.folder)):
                write_text_atomic(Path(t.folder) / DONE, str(out.present[t.fps]))
    out.seconds = time.perf_counter() - started
    return out


def _decode(container, stream, pending: list[tuple[float, float, int, str]], out: Outcome,
            quality: int) -> None:
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    width, height = out.stored or out.size or (0, 0)
    resize = out.stored != out.size
    i, frames, last, sought = 0, None, -math.inf, None
    while i < len(pending):
        target = pending[i][0]
        if frames is None or (target - last > SEEK_GAP and sought != target):
            if target > SEEK_GAP:
                container.seek(int((target + start) / stream.time_base), stream=stream, backward=True)
                out.seeks += 1
                sought = target
            frames = container.decode(stream)
        frame = next(frames, None)
        if frame is None:
            break  # the video ends before the remaining frames
        if frame.time is None:
            continue
        out.decoded += 1
        last = frame.time - start
        image = None
        while i < len(pending) and pending[i][0] <= last + 1e-6:
            _, fps, k, folder = pending[i]
            if image is None:
                picture = frame.reformat(width=width, height=height, format="rgb24") if resize else frame
                image = picture.to_image()
            with writing(Path(folder)), atomic_path(Path(folder) / f"{k:06d}.jpg") as tmp:
                image.save(tmp, format="JPEG", quality=quality)
            out.written[fps] += 1
            i += 1
