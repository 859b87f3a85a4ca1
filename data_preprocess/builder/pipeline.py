"""Build one source: adapter -> canonical videos -> task generators -> records (with drop reasons)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_preprocess.builder.adapters import SourceRead, get_adapter
from data_preprocess.builder.canonical import AnnotationError, Video, check_video
from data_preprocess.builder.config import BuildConfig, ConfigError
from data_preprocess.builder.frames import clip_frames, frame_problem
from data_preprocess.builder.generators import CAPTION_TASKS, GENERATORS, Drop, Item
from data_preprocess.builder.questions import GenContext, QuestionBank
from data_preprocess.builder.records import make_record
from reward_fns.registry import SOURCES

CAPTION_MODES = ("none", "facts")


@dataclass
class Built:
    """One record, kept compact (its frame list is only made when it is written)."""

    item: Item
    video: Video
    task: str
    fps: float
    root: Path
    videos_dir: Path | None
    scale: tuple[float, float] | None = None  # set by the frame stage when the video's frames were resized

    def frames(self) -> list[str]:
        frames = clip_frames(self.video, self.item.start, self.item.end, self.fps)
        assert not isinstance(frames, str), frames  # checked when the record was built
        return frames

    @property
    def record(self) -> dict[str, Any]:
        return make_record(self.video, self.item, self.fps, self.frames(), self.scale)


@dataclass
class SourceBuild:
    name: str
    read: SourceRead
    built: list[Built] = field(default_factory=list)
    dropped: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (source, task, reason)
    excluded: Counter[str] = field(default_factory=Counter)  # source -> records of test/val videos
    excluded_videos: set[tuple[str, str]] = field(default_factory=set)
    seen: set[tuple[str, str]] = field(default_factory=set)  # (source, video_id) of every video built from


@dataclass(frozen=True)
class BuildOptions:
    seed: int = 0
    captions: str = "none"
    limit_videos: int = 0
    exclude: Callable[[Video], bool] = lambda video: False


def _video_source(video: Video, adapter_source: str, where: str) -> str:
    source = adapter_source or video.source
    if source not in SOURCES:
        raise AnnotationError(where, video.video_id, "source", f"{source!r} not a MedVidBench source {SOURCES}")
    return source


def read_release(name: str, root: Path, videos_dir: Path | None) -> SourceRead:
    """The adapter's output. A release whose shape the adapter did not foresee (a list where an object
    belongs, a cell of the wrong type, an unreadable file) is an AnnotationError naming the release, never
    a traceback; adapters name the file, entry and field where they check it themselves."""
    if not root.exists():
        raise AnnotationError(str(root), "-", "<root>", f"missing ({name} release folder)")
    try:
        return get_adapter(name).read(root, videos_dir)
    except AnnotationError:
        raise
    except OSError as exc:
        raise AnnotationError(str(exc.filename or root), "-", "<file>",
                              f"cannot be read ({exc.strerror or exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        raise AnnotationError(str(root), "-", f"<{name} release>",
                              f"malformed: {type(exc).__name__}: {str(exc)[:200]}") from None


def _where(read: SourceRead, root: Path) -> str:
    """What to name in a video's error: the one file the adapter read, else the release root."""
    return str(read.files[0]) if len(read.files) == 1 else str(root)


def build_source(name: str, root: Path, videos_dir: Path | None, config: BuildConfig,
                 options: BuildOptions) -> SourceBuild:
    """Every record the config's windowing yields for one source release (Large)."""
    adapter = get_adapter(name)
    read = read_release(name, root, videos_dir)
    where = _where(read, root)
    for video in read.videos:
        check_video(video, where, video.video_id)
    videos = sorted(read.videos, key=lambda v: (v.source, v.video_id))
    if options.limit_videos:
        videos = videos[: options.limit_videos]
    out = SourceBuild(name, read)
    bank = QuestionBank(config, options.seed)
    for prev, video in zip([None, *videos], videos, strict=False):
        if prev is not None and (prev.source, prev.video_id) == (video.source, video.video_id):
            raise AnnotationError(where, video.video_id, "video_id", f"{video.source} video listed twice")
        source = _video_source(video, adapter.data_source, where)
        src_cfg = config.sources.get(source)
        if src_cfg is None:
            raise ConfigError(f"{config.path}: sources.{source}: missing (needed by {name} at {root})")
        ctx = GenContext(src_cfg.procedure, bank)
        excluded = options.exclude(video)
        out.seen.add((source, video.video_id))
        for task, settings in src_cfg.tasks.items():
            if task in CAPTION_TASKS and options.captions == "none":
                continue
            for item in GENERATORS[task](video, settings, ctx):
                if isinstance(item, Drop):
                    out.dropped[source, item.task, item.reason] += 1
                    continue
                if excluded:
                    out.excluded[source] += 1
                    out.excluded_videos.add((source, video.video_id))
                    continue
                problem = frame_problem(video, settings.fps)
                if problem:
                    out.dropped[source, task, problem] += 1
                    continue
                out.built.append(Built(item, video, task, settings.fps, root, videos_dir))
    return out
