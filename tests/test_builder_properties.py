"""Properties of built records on random canonical videos: spans inside clips, boxes inside images,
frames in time order at the configured fps, and perfect self-scores on every rule metric."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_preprocess.builder.canonical import Box, FrameSource, Segment, Video
from data_preprocess.builder.config import TaskSettings, load_config
from data_preprocess.builder.frames import clip_frames
from data_preprocess.builder.generators import GENERATORS, Item
from data_preprocess.builder.questions import GenContext, QuestionBank
from data_preprocess.builder.records import make_record
from evaluation.benchmark_metrics import build_references, score
from reward_fns.reference import record_answer
from testbed.toy_sources import CT50_PHASES, fill_captions

WIDTH, HEIGHT = 320, 240
CONFIG = load_config()
CTX = GenContext("laparoscopic cholecystectomy", QuestionBank(CONFIG, 0))
tenths = st.integers(0, 1200).map(lambda n: n / 10)


@st.composite
def videos(draw: st.DrawFn) -> Video:
    duration = draw(st.integers(4, 120)) * 1.0
    segments = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(tenths.filter(lambda t: t < duration))
        end = min(duration, start + draw(st.integers(1, 400)) / 10)
        segments.append(Segment(draw(st.sampled_from(CT50_PHASES[:4])), start, end))
    boxes = []
    for track in range(draw(st.integers(0, 2))):
        for t in sorted(set(draw(st.lists(st.integers(0, int(duration * 2) - 1), max_size=60)))):
            x1, y1 = draw(st.integers(-20, WIDTH)), draw(st.integers(-20, HEIGHT))
            boxes.append(Box(t / 2, "grasper", str(track), (x1, y1, x1 + draw(st.integers(0, 200)),
                                                             y1 + draw(st.integers(0, 200)))))
    frames = FrameSource("folder", "f", "{n:06d}.jpg", 2.0, 0, 2.0)
    return Video("CholecT50", "V", 25.0, duration, frames, WIDTH, HEIGHT, "", segments, boxes)


task_settings = st.builds(
    lambda fps, n_len, n_stride, box_stride: TaskSettings(fps=fps, clip_len=n_len / fps, stride=n_stride / fps,
                                                          horizon=4.0, min_span=0.5, min_segments=1,
                                                          box_stride=box_stride, min_boxes=1),
    st.sampled_from((0.5, 1.0, 2.0)), st.integers(2, 60), st.integers(1, 30), st.sampled_from((0.5, 1.0, 2.0)))


def _check(rec: dict, item: Item, s: TaskSettings) -> None:
    length = item.end - item.start
    assert rec["metadata"]["fps"] == f"{s.fps:.1f}"
    numbers = [int(p.rsplit("/", 1)[1].split(".")[0]) for p in rec["video"]]
    assert numbers == sorted(set(numbers)) and len(numbers) == max(1, int(length * s.fps + 1e-6))
    assert 0 <= item.start < item.end
    for info in rec["struc_info"]:
        for span in info.get("spans", []) if isinstance(info, dict) else []:
            assert 0 <= span["start"] < span["end"] <= round(length, 1)
        for box in (info.get("bbox_dict") or {}).values() if isinstance(info, dict) else []:
            assert 0 <= box[0] < box[2] <= WIDTH and 0 <= box[1] < box[3] <= HEIGHT
        for key in (info.get("bbox_dict") or {}) if isinstance(info, dict) else []:
            assert 0 <= float(key) < length
    if rec["is_RC"]:
        x1, y1, x2, y2 = rec["RC_info"]["start_frame_bbox"]
        assert 0 <= x1 < x2 <= WIDTH and 0 <= y1 < y2 <= HEIGHT


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(videos(), task_settings)
def test_records_hold_their_invariants_and_score_perfectly(video: Video, s: TaskSettings) -> None:
    records = []
    for task, generate in GENERATORS.items():
        settings_ = TaskSettings(**{**s.__dict__, "clip_len": 1 / s.fps}) if task == "RC" else s
        for item in generate(video, settings_, CTX):
            if not isinstance(item, Item):
                continue
            frames = clip_frames(video, item.start, item.end, settings_.fps)
            rec = make_record(video, item, settings_.fps, frames)
            _check(rec, item, settings_)
            records.append(rec)
    if not records:
        return
    records = fill_captions(records)
    report = score(build_references(records), [record_answer(r) for r in records])
    for column in ("nap_acc", "stg_miou", "tag_miou_03", "tag_miou_05", "dvc_f1"):
        assert report.columns[column] in (None, 1.0), (column, report.columns)


@given(st.text(max_size=40) | st.integers(min_value=0, max_value=10**400).map(str)
       | st.floats(allow_nan=True, allow_infinity=True).map(str))
def test_nurvid_ids_never_raise_and_keep_non_integers(text: str) -> None:
    from data_preprocess.builder.adapters.nurvid import _id

    out = _id(text)
    whole, dot, fraction = text.strip().partition(".")
    if whole.isascii() and whole.isdigit() and (not dot or (fraction.isascii() and not fraction.strip("0"))):
        assert out == (whole.lstrip("0") or "0")
    else:
        assert out == text.strip()


def test_nurvid_id_forms() -> None:
    from data_preprocess.builder.adapters.nurvid import _id

    assert [_id(v) for v in ("7", "007", "0", "7.0", " 7.00 ", 7, "7.5", "walk", "9" * 400 + ".5", "1" * 5000)] == \
        ["7", "7", "0", "7", "7", "7", "7.5", "walk", "9" * 400 + ".5", "1" * 5000]
