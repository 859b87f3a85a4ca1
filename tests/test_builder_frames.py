"""Frame paths and PyAV extraction: the right source frame at each sampling time, once per (video, fps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_preprocess.builder.canonical import FrameSource, Video
from data_preprocess.builder.frames import DONE, clip_frames, extract, find_video, frame_times
from testbed.toy_sources import write_video


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


# ---- extraction at scale (issue 22): only the needed frames, seeking, resized, in parallel -------------------
def test_only_the_needed_frames_are_decoded_seeking_over_the_gap(tmp_path: Path) -> None:
    from data_preprocess.builder.decode import Target, extract_frames

    video = write_video(tmp_path / "v.mp4", 60, fps=2)  # frame i (at i / 2 s) has grey (10 * i) % 256
    out = extract_frames(str(video), [Target(1.0, str(tmp_path / "f"), (50, 51, 52))])
    assert out.written == {1.0: 3} and out.present == {1.0: 3} and out.seeks == 1 and not out.error
    assert out.decoded < 40  # from the keyframe before 50 s, not the 100 frames before it
    for k in (50, 51, 52):
        assert grey(tmp_path / "f" / f"{k:06d}.jpg") == pytest.approx((10 * 2 * k) % 256, abs=6)
    again = extract_frames(str(video), [Target(1.0, str(tmp_path / "f"), (50, 51, 52))])
    assert again.written == {1.0: 0} and again.decoded == 0 and again.resumed == {1.0: True}
    past = extract_frames(str(video), [Target(1.0, str(tmp_path / "f"), (58, 59, 60, 61))])
    assert past.present == {1.0: 2}  # 60 and 61 s lie past the end of the 60 s video


def test_frames_are_resized_to_the_video_specs_pixel_budget(tmp_path: Path) -> None:
    from data_preprocess.builder.decode import Resize, Target, extract_frames

    video = write_video(tmp_path / "v.mp4", 2, fps=2, size=(640, 480))
    resize = Resize(max_pixels=48 * 28 * 28, min_pixels=8 * 28 * 28, factor=56)
    out = extract_frames(str(video), [Target(1.0, str(tmp_path / "f"), (0, 1))], resize)
    assert out.size == (640, 480) and out.stored == (224, 168)
    assert Image.open(tmp_path / "f" / "000000.jpg").size == (224, 168)
    assert 224 * 168 <= 48 * 28 * 28 and resize.size(100, 50) == (100, 50)  # small frames keep their size


def test_the_frame_stage_in_parallel_matches_one_process(tmp_path: Path) -> None:
    import json

    from data_preprocess.builder.cli import main
    from testbed import toy_sources as fx

    sources = fx.write_all(tmp_path / "rel")
    config = fx.small_config(tmp_path / "c.yaml")
    outs = {}
    for workers in ("1", "3"):
        out = tmp_path / f"w{workers}.json"
        assert main(["--all", str(sources), "--config", str(config), "--out", str(out), "--captions", "facts",
                     "--frames-out", str(tmp_path / f"data{workers}"), "--workers", workers, "--no-progress"]) == 0
        manifest = json.loads(out.with_name(out.stem + ".manifest.json").read_text())
        outs[workers] = (json.loads(out.read_text()), manifest["frames"])
        assert manifest["frames"]["workers"] == int(workers) and manifest["frames"]["missing_frames"] == 0
    assert outs["1"][0] == outs["3"][0]
    assert outs["1"][1]["written"] == outs["3"][1]["written"] > 0
    files = {w: sorted(p.relative_to(tmp_path / f"data{w}") for p in (tmp_path / f"data{w}").rglob("*.jpg"))
             for w in ("1", "3")}
    assert files["1"] == files["3"]
    # CholecTrack20's Testing MP4 (854x480) is stored resized; its RC boxes follow the stored frames
    rc = [r for r in outs["1"][0] if r["data_source"] == "CholecTrack20" and r["qa_type"] == "region_caption"
          and "frames_" in r["video"][0]]
    assert rc and outs["1"][1]["resized_videos"] == 1
    for rec in rc:
        image = Image.open(tmp_path / "data1" / rec["RC_info"]["start_frame"])
        assert image.size == (224, 112)
        x1, y1, x2, y2 = rec["RC_info"]["start_frame_bbox"]
        assert 0 <= x1 < x2 <= 224 and 0 <= y1 < y2 <= 112
        assert rec["caption_facts"]["region"]["image_size"] == [224, 112]


def test_fit_pixels_agrees_with_qwen_vl_utils() -> None:
    from qwen_vl_utils import smart_resize

    from data_preprocess.builder.decode import fit_pixels

    for height in (24, 100, 360, 480, 719, 720, 1080, 1440, 2160):
        for width in (32, 100, 640, 854, 1280, 1920, 3840):
            if max(height, width) / min(height, width) > 200:
                continue
            for factor, lo, hi in ((56, 6272, 37632), (28, 3136, 12845056), (64, 8192, 49152)):
                theirs = smart_resize(height, width, factor, lo, hi)
                ours = fit_pixels(height, width, factor, lo, hi)
                # where qwen-vl-utils floors a side to 0 (aspect ratios near its limit), ours keeps one factor
                assert ours == tuple(v or factor for v in theirs), (height, width, factor)


def test_the_cli_reads_the_video_spec_without_importing_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from data_preprocess.builder.cli import build_parser, frame_resize; "
            "r = frame_resize(build_parser().parse_args(['--source', 'canonical', '--out', 'x.json'])); "
            "print(r.max_pixels, r.min_pixels, r.factor, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out == ["37632", "6272", "56", "False"]


def test_extraction_progress_shows_frames_rate_and_eta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from data_preprocess.builder.extraction import Progress

    bar = Progress(10, True)
    bar.update(4)
    bar.update(6)
    bar.close()
    err = capsys.readouterr().err
    assert "frames: 100%" in err and "10/10" in err and "<00:00" in err  # elapsed<remaining, the ETA
    Progress(10, False).close()
    assert capsys.readouterr().err == ""
