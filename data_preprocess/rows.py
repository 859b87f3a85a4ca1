"""verl parquet rows: RL (`verl.utils.dataset.rl_dataset.RLHFDataset`) and multi-turn SFT
(`verl.utils.dataset.multiturn_sft_dataset.MultiTurnSFTDataset`), built column-wise with pyarrow.
Each row's `videos` holds one `VideoSpec.video_entry` (its Arrow struct is derived from that dict);
`reward_model.ground_truth` is `Reference.to_json()` (`ground_truth_json`)."""

from __future__ import annotations

from collections import namedtuple

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_preprocess.video_spec import VideoSpec
from reward_fns.reference import Reference

STR, F64, I64 = pa.string(), pa.float64(), pa.int64()
MESSAGE = pa.struct([("role", STR), ("content", STR)])
VIDEO = pa.infer_type([VideoSpec().video_entry([""], 1.0)])
EXTRA = pa.struct([("index", I64), ("id", STR), ("qa_type", STR), ("data_source", STR), ("task", STR),
                   ("fps", F64), ("split", STR)])
REWARD = pa.struct([("style", STR), ("ground_truth", STR)])
RL_SCHEMA = pa.schema([("data_source", STR), ("prompt", pa.list_(MESSAGE)), ("videos", pa.list_(VIDEO)),
                       ("ability", STR), ("reward_model", REWARD), ("extra_info", EXTRA)])
SFT_SCHEMA = pa.schema([("messages", pa.list_(MESSAGE)), ("videos", pa.list_(VIDEO)), ("data_source", STR),
                        ("ability", STR), ("extra_info", EXTRA)])


_ENCODER = msgspec.json.Encoder()
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")  # then look for "0e" and "0.0000"


def ground_truth_json(ref: Reference) -> str:
    """`ref.to_json()` byte for byte (what the reward manager reads back), about 20x faster: msgspec
    encodes; where its float spelling may differ from Python's (an exponent, below 1e-4), the stdlib."""
    try:
        fast = _ENCODER.encode(ref.to_dict())
    except (msgspec.EncodeError, TypeError, OverflowError):
        return ref.to_json()  # the stdlib (the reference implementation) decides
    folded = fast.translate(_DIGITS_TO_ZERO)
    return ref.to_json() if b"0e" in folded or b"0.0000" in folded else fast.decode()


# The rows of one batch as columns, each a list: `Rows(*map(list, zip(*row_tuples)))`.
Rows = namedtuple("Rows", "index id qa_type source task fps split question answer ground_truth model_fps rl_ok "
                          "rejection video_id")


def _messages(*columns: tuple[str, list[str]]) -> pa.ListArray:
    """One list of chat messages per row, `columns` = ((role, contents), ...) in turn order."""
    n, k = len(columns[0][1]), len(columns)
    roles = pa.array([role for role, _ in columns] * n, STR)
    contents = [c for row in zip(*(col for _, col in columns), strict=True) for c in row]
    struct = pa.StructArray.from_arrays([roles, pa.array(contents, STR)], fields=list(MESSAGE))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), struct)


def _videos(frames: pa.ListArray, fps: list[float], spec: VideoSpec) -> pa.ListArray:
    """One `videos` list of one item per row: `spec.video_entry` on columns, its constants repeated."""
    n, entry = len(fps), spec.video_entry(frames, pa.array(fps, F64))
    columns = [v if isinstance(v, pa.Array) else pa.array(np.full(n, v)) for v in entry.values()]
    struct = pa.StructArray.from_arrays(columns, names=list(entry))
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), struct)


def to_table(rows: Rows, frames: pa.ListArray, spec: VideoSpec) -> pa.Table:
    """All columns of the RL and SFT rows of one split (plus `rl_ok`), sharing one `videos` array."""
    source = pa.array(rows.source, STR)
    task = pa.array(rows.task, STR)
    extra = pa.StructArray.from_arrays(
        [pa.array(rows.index, I64), pa.array(rows.id, STR), pa.array(rows.qa_type, STR), source, task,
         pa.array(rows.fps, F64), pa.array(rows.split, STR)], fields=list(EXTRA))
    n = len(rows.index)
    reward = pa.StructArray.from_arrays([pa.array(["rule"] * n, STR), pa.array(rows.ground_truth, STR)],
                                        fields=list(REWARD))
    columns = {"data_source": source, "prompt": _messages(("user", rows.question)),
               "messages": _messages(("user", rows.question), ("assistant", rows.answer)),
               "videos": _videos(frames, rows.model_fps, spec), "ability": task, "reward_model": reward,
               "extra_info": extra, "rl_ok": pa.array(rows.rl_ok, pa.bool_())}
    return pa.table(columns)


def outputs(table: pa.Table, split: str) -> dict[str, pa.Table]:
    """`sft_<split>` and `rl_<split>` tables (column selections; RL drops rejected rows)."""
    rl, ok = table.select(RL_SCHEMA.names), table.column("rl_ok")
    return {f"sft_{split}": table.select(SFT_SCHEMA.names), f"rl_{split}": rl if pc.all(ok).as_py() else rl.filter(ok)}
