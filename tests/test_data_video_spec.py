"""VideoSpec: frame selection, loading, and the smart-resize token estimate against qwen-vl-utils."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_preprocess.video_spec import VideoSpec, processor_resize


def test_defaults_are_the_papers_pixel_bounds() -> None:
    spec = VideoSpec()
    assert (spec.min_pixels, spec.max_pixels, spec.image_patch_size) == (8 * 28 * 28, 48 * 28 * 28, 14)
    entry = spec.video_entry(["/a.jpg"], 2.0)
    assert set(entry) == {"video", "fps", "sample_fps", "min_pixels", "max_pixels"}
    assert None not in entry.values()


def test_load_yaml_json_and_reject_unknown_keys(tmp_path) -> None:
    (tmp_path / "v.yaml").write_text("video_spec:\n  fps: 1.0\n  max_frames: 32\n")
    assert VideoSpec.load(tmp_path / "v.yaml") == VideoSpec(fps=1.0, max_frames=32)
    (tmp_path / "v.json").write_text(json.dumps({"max_pixels": 20000, "min_pixels": 6272}))
    assert VideoSpec.load(tmp_path / "v.json").max_pixels == 20000
    (tmp_path / "bad.yaml").write_text("max_frame: 3\n")
    with pytest.raises(ValueError, match="unknown VideoSpec keys"):
        VideoSpec.load(tmp_path / "bad.yaml")
    with pytest.raises(ValueError):
        VideoSpec(min_pixels=10, max_pixels=5)


def test_frame_selection_caps_frames_and_reports_their_fps() -> None:
    spec = VideoSpec(max_frames=4)
    keep, fps, _ = spec.select(10, 1.0)
    assert keep == [0, 3, 6, 9] and fps == pytest.approx(1 / 3)
    assert spec.select(4, 2.0) == (None, 2.0, None)
    keep, fps, _ = VideoSpec(fps=1.0, max_frames=0).select(10, 2.0)
    assert keep == [0, 2, 4, 6, 8] and fps == 1.0
    assert VideoSpec(max_frames=1).select(10, 2.0) == ([0], 2.0, None)
    keep, fps, _ = VideoSpec(fps=0.5, max_frames=3).select(20, 2.0)  # every 4th frame, then 3 of those 5
    assert keep == [0, 8, 16] and fps == pytest.approx(0.25)


def test_selection_keeps_the_region_caption_frame() -> None:
    keep, _, pos = VideoSpec(max_frames=4).select(10, 1.0, must_keep=4)
    assert 4 in keep and keep[pos] == 4 and len(keep) == 4 and keep == sorted(keep)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 80), w=st.integers(1, 80), lo=st.integers(4, 64), span=st.integers(0, 700))
def test_processor_resize_matches_transformers(h: int, w: int, lo: int, span: int) -> None:
    """For sizes qwen-vl-utils already made multiples of 28, as the processor receives them."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    if max(h, w) / min(h, w) > 200:
        return
    low, high = lo * 784, (lo + span) * 784
    assert processor_resize(h * 28, w * 28, 28, low, high) == smart_resize(h * 28, w * 28, 28, low, high)


@pytest.mark.parametrize(("n", "size"), [(10, (128, 96)), (1, (128, 96)), (7, (854, 480)), (3, (1920, 1080)),
                                         (4, (60, 400))])
def test_visual_tokens_match_qwen_vl_utils_fetch_video(tmp_path, n: int, size: tuple[int, int]) -> None:
    """qwen-vl-utils resizes a frame list twice (each frame with factor 56, then the clip with 28)."""
    from PIL import Image
    from qwen_vl_utils import fetch_video

    width, height = size
    Image.new("RGB", size, (90, 40, 40)).save(tmp_path / "f.jpg")
    spec = VideoSpec()
    entry = spec.video_entry([str(tmp_path / "f.jpg")] * n, 1.0)
    video = fetch_video(entry, image_patch_size=14)
    frames, _, h, w = video.shape
    assert (h, w) == spec.resized_hw(height, width, n)
    assert spec.visual_tokens(n, height, width) == (frames // 2) * (h // 14) * (w // 14) // 4
