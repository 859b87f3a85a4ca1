"""Cheap completeness checks of checkpoint files, before anything loads them.

A shard cut short (a save killed mid-write, a partial copy, a full disk) otherwise surfaces deep in
``torch.load`` or safetensors as ``PytorchStreamReader failed reading zip archive`` or a header
error without the file name. These checks read only the index of each file:
- torch ``.pt`` shards (``torch.save``'s zip format): the zip central directory must be present (it
  sits at the end of the file) and every member's data must lie inside the file;
- ``.safetensors``: the JSON header must be complete and every tensor's byte range inside the file.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from ckpt_tools.layout import CheckpointError

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


def _truncated(path: Path, detail: str) -> CheckpointError:
    size = path.stat().st_size
    return CheckpointError(f"{path}: truncated or corrupt ({detail}; {size} bytes on disk); save or copy it again")


def check_torch_zip(path: Path) -> None:
    """Raise CheckpointError naming `path` unless it is a complete torch zip checkpoint."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                end = info.header_offset + _LOCAL_HEADER + len(info.filename) + info.compress_size
                if end > size:
                    raise _truncated(path, f"member {info.filename!r} ends at byte {end}")
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise _truncated(path, f"not a complete torch.save zip archive: {exc}") from None


def check_safetensors(path: Path) -> None:
    """Raise CheckpointError naming `path` unless its header and tensor data are all in the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise _truncated(path, "no safetensors header length")
        (length,) = struct.unpack("<Q", head)
        if 8 + length > size:
            raise _truncated(path, f"header of {length} bytes does not fit")
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise _truncated(path, f"unreadable safetensors header: {exc}") from None
    data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if 8 + length + data_end > size:
        raise _truncated(path, f"tensor data ends at byte {8 + length + data_end}")


def check_files(paths: list[Path]) -> None:
    """Check every torch shard / safetensors file in `paths` (others are ignored)."""
    for path in paths:
        if path.suffix == ".pt":
            check_torch_zip(path)
        elif path.suffix == ".safetensors":
            check_safetensors(path)
