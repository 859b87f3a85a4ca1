"""`--plan`: what a build would do before any extraction: records, the frame files they name (read in place
from releases or to extract from videos, already on disk or not) and the disk the extracted JPEGs need."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_preprocess.builder.decode import Resize, on_disk
from data_preprocess.builder.extraction import frame_names, group_builds
from data_preprocess.builder.frames import extracted_dir, find_video
from data_preprocess.builder.pipeline import Built

# JPEG (quality 90) bytes of a frame of w x h pixels: header + bytes per pixel. Surgical frames measured
# here compress to about 0.1-0.3 byte per pixel; the estimate uses the upper middle.
JPEG_HEADER_BYTES = 700
JPEG_BYTES_PER_PIXEL = 0.2


FIELDS = ("records", "records_final", "frames", "frames_in_place", "frames_on_disk", "frames_to_extract",
          "videos_to_decode", "videos_probed", "videos_not_found", "frames_unknown_size", "disk_bytes")


def jpeg_bytes(width: int, height: int) -> int:
    return round(JPEG_HEADER_BYTES + JPEG_BYTES_PER_PIXEL * width * height)


def probe_size(path: Path) -> tuple[int, int] | None:
    """A video file's frame size (PyAV reads the header only), None when unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            return ctx.width, ctx.height
    except (av.FFmpegError, OSError, IndexError):
        return None


def make_plan(built: Sequence[Built], frames_out: Path | None, resize: Resize, variants: int,
              caption_tasks: frozenset[str]) -> dict[str, Any]:
    """The plan as a dict (per source and totals)."""
    groups = group_builds(built)
    per: dict[str, Counter[str]] = defaultdict(Counter)
    sizes: dict[tuple[str, str], tuple[int, int] | None] = {}
    for b in built:
        per[b.video.source]["records"] += 1
        per[b.video.source]["records_final"] += variants if b.task in caption_tasks else 1
    stored_max = (0, 0)
    for (source, video_id, fps), group in sorted(groups.items()):
        video = group[0].video
        names = frame_names(group)
        row = per[source]
        row["frames"] += len(names)
        if video.frames.kind == "folder":
            row["frames_in_place"] += len(names)
            continue
        if (source, video_id) not in sizes:
            path = find_video(video, group[0].videos_dir, group[0].root)
            size = (video.width, video.height) if video.width and video.height else None
            if path is None:
                row["videos_not_found"] += 1
            elif size is None:
                size = probe_size(path)
                row["videos_probed"] += 1
            sizes[source, video_id] = size
            row["videos_to_decode"] += 1
        have = on_disk(frames_out / extracted_dir(video, fps)) if frames_out else set()
        todo = len(names.keys() - have)
        row["frames_on_disk"] += len(names) - todo
        row["frames_to_extract"] += todo
        size = sizes[source, video_id]
        if size is None:
            row["frames_unknown_size"] += todo
            continue
        stored = resize.size(*size)
        stored_max = max(stored_max, stored, key=lambda s: s[0] * s[1])
        row["disk_bytes"] += todo * jpeg_bytes(*stored)
    total: Counter[str] = Counter()
    for row in per.values():
        total.update(row)
    return {"total": {key: total[key] for key in FIELDS}, "per_source": {s: dict(c) for s, c in sorted(per.items())},
            "largest_stored_frame": list(stored_max), "resize_max_pixels": resize.max_pixels,
            "jpeg_estimate": {"header_bytes": JPEG_HEADER_BYTES, "bytes_per_pixel": JPEG_BYTES_PER_PIXEL}}


def describe(plan: dict[str, Any]) -> list[str]:
    """The plan as printed lines."""
    t = Counter(plan["total"])
    lines = [f"plan: {t['records']} records ({t['records_final']} final) naming {t['frames']} frame files",
             f"  in place in the releases: {t['frames_in_place']}; from videos: {t['frames_on_disk']} already on "
             f"disk, {t['frames_to_extract']} to extract from {t['videos_to_decode']} videos "
             f"({t['videos_not_found']} video files not found)",
             f"  disk for the extracted JPEGs: about {t['disk_bytes'] / 1e9:.2f} GB (estimate; frames up to "
             f"{plan['largest_stored_frame'][0]}x{plan['largest_stored_frame'][1]}"
             + (f", resized to at most {plan['resize_max_pixels']} pixels" if plan["resize_max_pixels"] else
                ", full resolution") + ")"]
    if t["frames_unknown_size"]:
        lines.append(f"  {t['frames_unknown_size']} frames of unreadable or missing videos are not in the estimate")
    for source, row in plan["per_source"].items():
        lines.append(f"  {source}: {row.get('records', 0)} records, {row.get('frames', 0)} frames, "
                     f"{row.get('frames_to_extract', 0)} to extract, {row.get('disk_bytes', 0) / 1e9:.2f} GB")
    return lines
