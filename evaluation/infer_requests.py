"""Inference requests: MedVidBench records -> the chat messages a model sees, exactly as in training.

Validation is preprocessing's (`data_preprocess.schema.check_record`), so a bad record fails with a
`RecordError` naming the file, the record index and the field. The frame list goes through the same
steps as `data_preprocess.batch`: `VideoSpec.select` (the region-caption start
frame is always kept), the start frame swapped for its green-box overlay (`rc_overlay.overlay_frame`),
paths made absolute under the data root, and the video given as `VideoSpec.video_entry`, the verl
`videos` item. The human turn is split at its `<video>` placeholder the way verl's
`RLHFDataset._build_messages` does it.

An RL parquet (`data_preprocess.medvidbench`) gives its requests directly (`read_rl_requests`): the
row's single user prompt and its `videos` item, as verl's `RLHFDataset` reads them for training (frames
already selected, absolute and boxed), keyed by `extra_info.index` (the record's index in the GT file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from data_preprocess.rc_overlay import overlay_frame
from data_preprocess.schema import DECODER, Checked, check_record
from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import RecordError

_SEGMENTS = re.compile(r"(<image>|<video>|<audio>)")


@dataclass(frozen=True)
class Request:
    """One record ready for a backend: output keys, the human turn and the verl video item."""

    index: int
    id: str
    qa_type: str
    data_source: str
    question: str  # the human turn, `<video>` placeholder included
    video: dict[str, Any]  # VideoSpec.video_entry: absolute frame paths, fps, sample_fps, pixel bounds

    @property
    def frames(self) -> list[str]:
        return self.video["video"]

    def messages(self) -> list[dict[str, Any]]:
        """The chat, `<video>` replaced by `{"type": "video", **video}` (verl's `_build_messages`)."""
        content: list[dict[str, Any]] = []
        for segment in _SEGMENTS.split(self.question):
            if segment == "<video>":
                content.append({"type": "video", **self.video})
            elif segment:
                content.append({"type": "text", "text": segment})
        return [{"role": "user", "content": content}]

    def output_row(self, text: str, key: str = "prediction") -> dict[str, Any]:
        """The inference output row (see `evaluation.submission`); `key="response"` for a rollout line."""
        return {"index": self.index, "id": self.id, "qa_type": self.qa_type, "data_source": self.data_source,
                key: text}


def read_records(path: str | os.PathLike[str]) -> list[Any]:
    """The records of a MedVidBench JSON file (decoded lazily: frame lists stay raw JSON)."""
    where = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RecordError(None, "<file>", f"cannot read: {exc}", where) from None
    try:
        return DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise RecordError(None, "<file>", f"not a JSON list of records: {exc}", where) from None


def _no_nap_classes(source: str, question: str) -> None:
    """Inference does not need next-action class lists."""
    return None


def validate(records: Sequence[Any], where: str, limit: int | None = None) -> list[Checked]:
    """Check the first `limit` records (all when None); the first bad one raises RecordError."""
    count = len(records) if limit is None else min(limit, len(records))
    return [check_record(records[i], i, where, _no_nap_classes) for i in range(count)]


class RequestBuilder:
    """Builds `Request`s for one GT file: frames resolved under `data_root`, RC overlays cached in `rc_cache`."""

    def __init__(self, records: Sequence[Any], where: str, data_root: str | os.PathLike[str], spec: VideoSpec,
                 rc_cache: str | os.PathLike[str]):
        self.records, self.where, self.spec = records, where, spec
        self.data_root = os.path.abspath(data_root)
        self.rc_cache = Path(rc_cache)

    def _path(self, frame: str) -> str:
        return frame if os.path.isabs(frame) else os.path.join(self.data_root, frame)

    def build(self, checked: Checked) -> Request:
        """The request of a validated record (its RC overlay drawn, if any)."""
        index = checked.index
        frames = list(checked.frames)
        must = None
        if checked.rc_frame is not None:
            if checked.rc_frame not in frames:
                raise RecordError(index, "RC_info.start_frame", f"{checked.rc_frame!r} is not one of the record's "
                                  "frames", self.where)
            must = frames.index(checked.rc_frame)
        keep, fps, pos = self.spec.select(len(frames), checked.ref.fps, must)
        if keep is not None:
            frames = [frames[i] for i in keep]
        paths = [self._path(frame) for frame in frames]
        if checked.rc_frame is not None and checked.rc_box is not None and pos is not None:
            try:
                paths[pos], _ = overlay_frame(self._path(checked.rc_frame), checked.rc_box, self.rc_cache)
            except (OSError, ValueError) as exc:
                raise RecordError(index, "RC_info.start_frame", f"cannot draw the region box: {exc}",
                                  self.where) from None
        ref = checked.ref
        return Request(index=index, id=checked.id, qa_type=ref.qa_type, data_source=ref.data_source,
                       question=ref.question, video=self.spec.video_entry(paths, fps))

    def build_all(self, checked: Sequence[Checked], check_frames: bool = True) -> list[Request]:
        """Requests for `checked`; with `check_frames`, a missing frame file raises naming the path."""
        requests = [self.build(c) for c in checked]
        if check_frames:
            check_frame_files(requests, self.where)
        return requests


def check_frame_files(requests: Sequence[Request], where: str, field_name: str = "video") -> None:
    """A missing frame file raises RecordError naming the record and the first missing path."""
    if not requests:
        return
    missing = {p for p in {p for r in requests for p in r.frames} if not os.path.isfile(p)}
    for request in requests:
        lost = [p for p in request.frames if p in missing]
        if lost:
            raise RecordError(request.index, field_name, f"{len(lost)} frame file(s) not found, first: {lost[0]}",
                              where)


def is_parquet(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith(".parquet")


def _rl_request(row: dict[str, Any], number: int, where: str) -> Request:
    """One RL parquet row -> Request; errors name the record (`extra_info.index`) and the field."""
    extra = row.get("extra_info")
    index = extra.get("index") if isinstance(extra, dict) else None
    if not isinstance(index, int):
        raise RecordError(None, "extra_info.index", f"row {number}: missing or not an integer", where)
    keys = {}
    for key in ("id", "qa_type", "data_source"):
        keys[key] = extra.get(key)
        if not isinstance(keys[key], str):
            raise RecordError(index, f"extra_info.{key}", "missing or not a string", where)
    prompt = row.get("prompt")
    if (not isinstance(prompt, list) or len(prompt) != 1 or not isinstance(prompt[0], dict)
            or prompt[0].get("role") != "user" or not isinstance(prompt[0].get("content"), str)):
        raise RecordError(index, "prompt", "must be one user message with string content", where)
    question = prompt[0]["content"]
    placeholders = _SEGMENTS.findall(question)
    if placeholders != ["<video>"]:
        raise RecordError(index, "prompt", f"must hold exactly one <video> placeholder, found {placeholders}", where)
    videos = row.get("videos")
    if (not isinstance(videos, list) or len(videos) != 1 or not isinstance(videos[0], dict)
            or not isinstance(videos[0].get("video"), list) or not videos[0]["video"]
            or not all(isinstance(f, str) for f in videos[0]["video"])):
        raise RecordError(index, "videos", "must be one {video: [frame paths], ...} item", where)
    return Request(index=index, question=question, video=dict(videos[0]), **keys)


def read_rl_requests(path: str | os.PathLike[str], limit: int | None = None) -> list[Request]:
    """Requests of the first `limit` rows (all when None) of an RL parquet file; frames are not checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = os.fspath(path)
    try:
        table = pq.read_table(path, columns=["prompt", "videos", "extra_info"])
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise RecordError(None, "<file>", f"cannot read as an RL parquet (prompt, videos, extra_info): {exc}",
                          where) from None
    if limit is not None:
        table = table.slice(0, limit)
    requests, seen = [], set()
    for number, row in enumerate(table.to_pylist()):
        request = _rl_request(row, number, where)
        if request.index in seen:
            raise RecordError(request.index, "extra_info.index", f"row {number}: index used by an earlier row", where)
        seen.add(request.index)
        requests.append(request)
    return requests
