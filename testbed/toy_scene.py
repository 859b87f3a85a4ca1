"""Synthetic surgical-looking videos for the toy MedVidBench: a timeline of actions (the background
colour changes exactly at action boundaries) and a moving tool whose box is the STG ground truth.

A video is a pure function of its parameters: frame `n` (at 25 fps) shows the scene at time n / 25 s,
so overlapping clips of one video share identical frames.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

SOURCE_FPS = 25  # the "original" video frame rate frame numbers refer to
IDLE = "idle"


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    label: str


@dataclass
class Video:
    """One synthetic video: id, source, size, action timeline and tool motion parameters."""

    video_id: str
    source: str
    labels: tuple[str, ...]
    tool: str
    size: tuple[int, int] = (128, 96)
    duration: float = 120.0
    segments: list[Segment] = field(default_factory=list)
    phase: tuple[float, float] = (0.0, 0.0)
    period: tuple[float, float] = (17.0, 11.0)
    extra: dict[str, str] = field(default_factory=dict)  # e.g. the NurViD procedure

    @classmethod
    def make(cls, rng: random.Random, video_id: str, source: str, labels: tuple[str, ...], tool: str,
             size: tuple[int, int], **extra: str) -> Video:
        """Random timeline: actions of 6-16 s, sometimes separated by 2-4 s idle gaps, integer seconds."""
        video = cls(video_id, source, labels, tool, size, extra=dict(extra),
                    phase=(rng.uniform(0, 6.3), rng.uniform(0, 6.3)),
                    period=(rng.uniform(12, 20), rng.uniform(8, 14)))
        t, previous = 0, None
        while t < video.duration:
            if previous is not None and rng.random() < 0.3:
                t += rng.randint(2, 4)
            label = rng.choice([lab for lab in labels if lab != previous] or list(labels))
            length = rng.randint(6, 16)
            video.segments.append(Segment(float(t), float(min(t + length, video.duration)), label))
            previous, t = label, t + length
        return video

    def label_at(self, t: float) -> str:
        for seg in self.segments:
            if seg.start <= t < seg.end:
                return seg.label
        return IDLE

    def box_at(self, t: float) -> list[int]:
        """The tool head's box [x1, y1, x2, y2] in pixels at time t (seconds)."""
        w, h = self.size
        cx = w / 2 + 0.28 * w * math.sin(2 * math.pi * t / self.period[0] + self.phase[0])
        cy = h / 2 + 0.22 * h * math.sin(2 * math.pi * t / self.period[1] + self.phase[1])
        bw, bh = 0.22 * w * (1 + 0.15 * math.sin(t / 5)), 0.2 * h
        x1, y1 = max(0, round(cx - bw / 2)), max(0, round(cy - bh / 2))
        return [x1, y1, min(w - 1, round(cx + bw / 2)), min(h - 1, round(cy + bh / 2))]

    def colour(self, label: str) -> tuple[int, int, int]:
        if label == IDLE:
            return (150, 120, 120)
        k = self.labels.index(label) if label in self.labels else len(self.labels)
        hue = (k * 0.618034) % 1.0
        return tuple(int(90 + 120 * (0.5 + 0.5 * math.sin(2 * math.pi * (hue + j / 3)))) for j in range(3))

    def render(self, frame_number: int) -> Image.Image:
        t = frame_number / SOURCE_FPS
        w, h = self.size
        image = Image.new("RGB", (w, h), self.colour(self.label_at(t)))
        draw = ImageDraw.Draw(image)
        draw.ellipse((w * 0.1, h * 0.55, w * 0.45, h * 0.95), fill=(170, 60, 60))  # tissue
        x1, y1, x2, y2 = self.box_at(t)
        draw.line(((x2 + x1) / 2, (y1 + y2) / 2, w - 1, 0), fill=(60, 60, 70), width=3)  # shaft
        draw.rectangle((x1, y1, x2, y2), fill=(200, 205, 215))  # tool head = the STG box
        return image


@dataclass(frozen=True)
class Clip:
    """A window of a video sampled at `fps`; times in records are relative to `t0`."""

    video: Video
    t0: float
    duration: float
    fps: float

    @property
    def n_frames(self) -> int:
        return max(2, int(self.duration * self.fps))

    def time(self, k: int) -> float:
        return k / self.fps

    def frame_number(self, k: int) -> int:
        return round((self.t0 + k / self.fps) * SOURCE_FPS)

    def box(self, k: int) -> list[int]:
        """The tool box shown in clip frame k."""
        return self.video.box_at(self.frame_number(k) / SOURCE_FPS)

    def frame_path(self, k: int) -> str:
        return f"frames/{self.video.source}/{self.video.video_id}/{self.frame_number(k):06d}.jpg"

    def frame_paths(self) -> list[str]:
        return [self.frame_path(k) for k in range(self.n_frames)]

    def segments(self) -> list[Segment]:
        """The video's actions clipped to the window, in clip time."""
        out = []
        end = self.t0 + self.n_frames / self.fps
        for seg in self.video.segments:
            s, e = max(seg.start, self.t0), min(seg.end, end)
            if e > s:
                out.append(Segment(s - self.t0, e - self.t0, seg.label))
        return out

    def next_label(self) -> str | None:
        end = self.t0 + self.n_frames / self.fps
        later = [seg for seg in self.video.segments if seg.start >= end]
        return later[0].label if later else None

    def metadata(self) -> dict[str, str]:
        return {"video_id": self.video.video_id, "fps": str(self.fps),
                "input_video_start_frame": str(self.frame_number(0)),
                "input_video_end_frame": str(self.frame_number(self.n_frames - 1))}

    def write_frames(self, root: Path, done: set[str]) -> None:
        """Render and save this clip's frames as JPEG (frames already written are skipped)."""
        for k in range(self.n_frames):
            rel = self.frame_path(k)
            if rel in done:
                continue
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            self.video.render(self.frame_number(k)).save(path, format="JPEG", quality=85)
            done.add(rel)
