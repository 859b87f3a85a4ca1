"""Frame paths and PyAV extraction: the right source frame at each sampling time, once per (video, fps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_preprocess.build.canonical import FrameSource, Video
from data_preprocess.build.frames import DONE, clip_frames, extract, find_video, frame_times
from tests.build_fixtures import write_video


def test_frame_times_at_the_record_fps() -> None:
    assert frame_times(10.0, 20.0, 0.5) == [10.0, 12.0, 14.0, 16.0, 18.0]
    assert frame_times(3.0, 3.2, 1.0) == [3.0]  # at least one frame
    assert len(frame_times(0.0, 30.0, 2.0)) == 60


def test_folder_paths_and_a_rate_above_the_folder_is_refused() -> None:
    frames = FrameSource("folder", "T/VID02/Frames", "{n:06d}.png", 25.0, 1, 1.0)
    v = Video("CholecTrack20", "vid02", 25.0, 60.0, frames)
    assert clip_frames(v, 4.0, 8.0, 0.5) == ["CholecTrack20/T/VID02/Frames/000101.png",
                                            "CholecTrack20/T/VID02/Frames/000151.png"]
    assert clip_frames(v, 0.0, 4.0, 2.0) == "record fps 2 above the frame folder's 1 fps"


def test_extracted_paths_count_in_record_fps_units() -> None:
    v = Video("NurViD", "abc", 30.0, 60.0, FrameSource("video", "abc"))
    assert clip_frames(v, 10.0, 14.0, 0.5) == ["NurViD/frames_0.5fps/abc/000005.jpg",
                                              "NurViD/frames_0.5fps/abc/000006.jpg"]


def test_find_video_by_relative_path_or_file_name(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "v1.mkv").write_bytes(b"x")
    v = Video("AVOS", "v1", 15.0, 5.0, FrameSource("video", "clips/v1"))
    assert find_video(v, tmp_path / "videos", tmp_path) == tmp_path / "videos" / "v1.mkv"
    assert find_video(v, None, tmp_path) == tmp_path / "videos" / "v1.mkv"  # --root/videos/<name>
    assert find_video(v, None, tmp_path / "nowhere") is None


def grey(path: Path) -> float:
    return float(np.asarray(Image.open(path)).mean())


def test_one_decode_writes_every_fps_with_the_right_source_frames(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", 10, fps=2)  # source frame i (at i / 2 s) has grey 10 * i
    targets = {fps: tmp_path / f"f{fps:g}" for fps in (0.5, 1.0, 2.0)}
    results = extract(video, targets)
    assert {fps: r.frames for fps, r in results.items()} == {0.5: 5, 1.0: 10, 2.0: 20}
    for fps, folder in targets.items():
        files = sorted(folder.glob("*.jpg"))
        assert [f.name for f in files] == [f"{k:06d}.jpg" for k in range(results[fps].frames)]
        for k, f in enumerate(files):
            assert grey(f) == pytest.approx(10 * round(k * 2 / fps), abs=6), (fps, k)
        assert (folder / DONE).read_text() == str(results[fps].frames)
    again = extract(video, targets)
    assert all(r.resumed for r in again.values())
