"""Frame lists as Arrow arrays, built from the raw JSON bytes without a Python string per frame.

`from_raw` handles the common case (arrays of plain, non-empty strings without escapes) with numpy;
anything else returns None and the caller decodes those records one by one with msgspec, which names
the bad field. `select` and `replace` edit the flat string array with vectorized masks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[[ord(c) for c in "[], \t\r\n"]] = True
_QUOTE, _OPEN, _CLOSE, _COMMA = 34, 91, 93, 44


Chooser = Callable[[np.ndarray], dict[int, Sequence[int]]]


def from_raw(raws: Sequence[bytes | memoryview], choose: Chooser | None = None) -> pa.ListArray | None:
    """list<string> from JSON arrays of plain strings, or None if one of them is anything else.

    `choose(counts)` may return `{row: positions}` to keep only those frames of some rows; the
    selection costs nothing extra here (it goes into the byte mask that copies the strings).
    """
    n = len(raws)
    if n == 0:
        return pa.array([], type=pa.list_(pa.string()))
    buf = b"".join(raws)
    if b"\\" in buf:
        return None
    sizes = np.fromiter(map(len, raws), dtype=np.int64, count=n)
    v = np.frombuffer(buf, dtype=np.uint8)
    ends = np.cumsum(sizes)
    quotes = np.flatnonzero(v == _QUOTE)
    if quotes.size == 0 or quotes.size % 2:
        return None
    opens, closes = quotes[0::2], quotes[1::2]
    lengths = closes - opens - 1
    # the bytes outside the strings: '[', ']', ',' and whitespace only, one '[' and ']' per record
    gap_starts = np.concatenate(([0], closes + 1))
    gap_lens = np.concatenate((opens, [len(v)])) - gap_starts
    firsts = np.concatenate(([0], np.cumsum(gap_lens)[:-1]))
    structure = v[np.repeat(gap_starts - firsts, gap_lens) + np.arange(int(gap_lens.sum()))]
    per_record = np.searchsorted(opens, ends) - np.searchsorted(opens, ends - sizes)
    if (not _ALLOWED[structure].all() or np.count_nonzero(structure == _OPEN) != n
            or np.count_nonzero(structure == _CLOSE) != n or np.count_nonzero(structure == _COMMA) != opens.size - n
            or lengths.min() <= 0 or per_record.min() <= 0 or v[0] != _OPEN or v[-1] != _CLOSE):
        return None
    keep = np.ones(opens.size, dtype=bool)
    picks = choose(per_record.copy()) if choose is not None else {}
    if picks:
        first = np.concatenate(([0], np.cumsum(per_record)))
        for row, positions in picks.items():
            keep[first[row]:first[row + 1]] = False
            keep[first[row] + np.asarray(positions, dtype=np.int64)] = True
            per_record[row] = len(positions)
    # one run per gap (quotes included) and per string; copy the bytes of the kept strings
    runs = np.empty(2 * opens.size + 1, dtype=np.int64)
    runs[0], runs[-1] = opens[0] + 1, len(v) - closes[-1]
    runs[1::2] = lengths
    runs[2:-1:2] = opens[1:] - closes[:-1] + 1
    pattern = np.zeros(runs.size, dtype=bool)
    pattern[1::2] = keep
    data = v[np.repeat(pattern, runs)]
    offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=offsets[1:])
    if offsets[-1] >= 2**31:
        return None
    strings = pa.StringArray.from_buffers(offsets.size - 1, pa.py_buffer(offsets.astype(np.int32)),
                                          pa.py_buffer(data))
    if not buf.isascii():
        try:
            strings.validate(full=True)  # UTF-8
        except pa.ArrowInvalid:
            return None
    list_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(per_record, out=list_offsets[1:])
    return pa.ListArray.from_arrays(pa.array(list_offsets), strings)


def from_lists(frames: Sequence[Sequence[str]]) -> pa.ListArray:
    return pa.array(frames, type=pa.list_(pa.string()))


def select(frames: pa.ListArray, keep: dict[int, Sequence[int]]) -> pa.ListArray:
    """Keep only the given positions of some rows (`{row: positions}`); other rows are unchanged."""
    if not keep:
        return frames
    offsets = frames.offsets.to_numpy()
    offsets = offsets - offsets[0]
    flat = frames.flatten()
    mask = np.ones(len(flat), dtype=bool)
    counts = np.diff(offsets)
    for row, positions in keep.items():
        mask[offsets[row]:offsets[row + 1]] = False
        mask[offsets[row] + np.asarray(positions, dtype=np.int64)] = True
        counts[row] = len(positions)
    new_offsets = np.zeros(len(frames) + 1, dtype=np.int32)
    np.cumsum(counts, out=new_offsets[1:])
    return pa.ListArray.from_arrays(pa.array(new_offsets), flat.filter(pa.array(mask)))


def replace(frames: pa.ListArray, items: dict[tuple[int, int], str]) -> pa.ListArray:
    """Set `frames[row][pos] = path` for each `(row, pos): path`."""
    if not items:
        return frames
    offsets = frames.offsets.to_numpy()
    flat = frames.flatten()
    mask = np.zeros(len(flat), dtype=bool)
    ordered = sorted((int(offsets[row] - offsets[0] + pos), path) for (row, pos), path in items.items())
    mask[[i for i, _ in ordered]] = True
    values = pc.replace_with_mask(flat, pa.array(mask), pa.array([p for _, p in ordered], pa.string()))
    return pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), values)


def absolute(frames: pa.ListArray, data_root: str) -> pa.ListArray:
    """Relative paths joined to `data_root` (absolute ones kept), vectorized."""
    offsets = frames.offsets.to_numpy()
    flat = frames.flatten()
    prefix = os.path.abspath(data_root).rstrip(os.sep) + os.sep
    joined = pc.binary_join_element_wise(prefix, flat, "")
    is_abs = pc.starts_with(flat, "/")
    if pc.any(is_abs).as_py():
        joined = pc.if_else(is_abs, flat, joined)
    return pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), joined)
