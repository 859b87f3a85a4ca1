"""Completeness and checksum checks of checkpoint files, before anything loads them.

A shard cut short (a save killed mid-write, a partial copy, a full disk) otherwise surfaces deep in
``torch.load`` or safetensors as ``PytorchStreamReader failed reading zip archive`` or a header
error without the file name. The cheap checks read only the index of each file:
- torch ``.pt`` shards (``torch.save``'s zip format): the zip central directory must be present (it
  sits at the end of the file) and every member's data must lie inside the file;
- ``.safetensors``: the JSON header must be complete and every tensor's byte range inside the file.

Corrupted bytes inside a complete file (a bad disk or copy) pass those checks and torch.load alike;
:func:`verify_torch_zip_bytes` catches them with the CRC-32 that ``torch.save`` stores for every
member (pickle and tensor data), on the very bytes that are then loaded.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
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


def verify_torch_zip_bytes(data: bytes, path: Path) -> None:
    """Raise CheckpointError naming `path` unless every member of the torch zip `data` matches its CRC-32.

    ``torch.save`` stores members uncompressed; a member saved without a checksum (CRC 0, from
    ``torch.serialization.set_crc32_options(False)``) cannot be checked and is passed.
    """
    view = memoryview(data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    archive.read(info)  # zipfile checks the CRC of a compressed member itself
                    continue
                local = view[info.header_offset:info.header_offset + _LOCAL_HEADER]
                if len(local) < _LOCAL_HEADER or bytes(local[:4]) != b"PK\x03\x04":
                    raise _corrupt(path, f"member {info.filename!r} has no local header")
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                start = info.header_offset + _LOCAL_HEADER + name_len + extra_len
                member = view[start:start + info.compress_size]
                if len(member) != info.compress_size:
                    raise _truncated(path, f"member {info.filename!r} ends past the file")
                if info.CRC != 0 and zlib.crc32(member) != info.CRC:
                    raise _corrupt(path, f"member {info.filename!r} fails its CRC-32 checksum")
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, struct.error, ValueError) as exc:
        raise _corrupt(path, f"not a readable torch.save zip archive: {exc}") from None


def _corrupt(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(f"{path}: corrupt ({detail}); the bytes on disk are not what was saved, "
                           "copy or save it again")


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
            data_end = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
                           default=0)
        except (ValueError, RecursionError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise _truncated(path, f"unreadable safetensors header: {type(exc).__name__}: {exc}") from None
    if 8 + length + data_end > size:
        raise _truncated(path, f"tensor data ends at byte {8 + length + data_end}")


def check_files(paths: list[Path]) -> None:
    """Check every torch shard / safetensors file in `paths` (others are ignored)."""
    for path in paths:
        if path.suffix == ".pt":
            check_torch_zip(path)
        elif path.suffix == ".safetensors":
            check_safetensors(path)
