"""Reassemble verl FSDP shard files into one full state dict, independently of ``verl.model_merger``.

Each ``model_world_size_W_rank_r.pt`` holds rank r's ``model.state_dict()``: DTensors for sharded
parameters (FSDP2 ``fully_shard``, or FSDP1 sharded state dicts) and plain tensors for replicated
buffers. verl's merger concatenates local tensors in rank order and casts them to bfloat16; this
module instead places every local tensor at its global offset, computed from the DTensor's device
mesh and placements, keeps the stored dtype, and checks that the pieces cover the full tensor.
It is the one loader of shard files in this project (the export hands its state dict to verl's
writer; ``--verify`` rebuilds its reference from it).

Shards are untrusted input: each file is read once into memory, its zip members are checked
against their CRC-32 (a corrupted byte fails, naming the file), its SHA-256 is recorded, and those
same bytes are unpickled with ``torch.load(weights_only=True)``, which builds tensors, DTensors and
their meshes but never calls arbitrary code (a pickle payload is refused, naming the file).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor, Replicate, Shard

from ckpt_tools.integrity import verify_torch_zip_bytes
from ckpt_tools.layout import CheckpointError, CheckpointLayout


@contextmanager
def quiet_device_mesh_warnings() -> Iterator[None]:
    """Hide torch's "DeviceMesh unpickled before the PGs were created" warning (harmless offline)."""
    logger = logging.getLogger("torch.distributed.device_mesh")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _rank_region(
    global_shape: torch.Size, mesh: torch.Tensor, placements: tuple, rank: int
) -> tuple[list[slice], bool] | None:
    """Return (slices of the global tensor held by ``rank``, whether it is the canonical copy).

    ``None`` when the rank is not in the mesh. Sharding follows ``torch.chunk`` (what DTensor's
    ``Shard`` uses): chunks of ceil(L / n) elements, the last ones possibly short or empty.
    """
    where = (mesh == rank).nonzero()
    if where.numel() == 0:
        return None
    coord = where[0].tolist()
    starts = [0] * len(global_shape)
    sizes = list(global_shape)
    canonical = True
    for mesh_dim, placement in enumerate(placements):
        n, index = mesh.shape[mesh_dim], coord[mesh_dim]
        if type(placement) is Shard:
            dim = placement.dim
            chunk = math.ceil(sizes[dim] / n) if sizes[dim] else 0
            begin = min(index * chunk, sizes[dim])
            end = min(begin + chunk, sizes[dim])
            starts[dim] += begin
            sizes[dim] = end - begin
        elif isinstance(placement, Replicate):
            canonical = canonical and index == 0
        else:
            raise NotImplementedError(f"placement {placement!r} is not supported (only Shard and Replicate)")
    return [slice(start, start + size) for start, size in zip(starts, sizes, strict=True)], canonical


def _assemble_dtensor(key: str, pieces: list[DTensor], layout: CheckpointLayout) -> torch.Tensor:
    """Build the full tensor of one DTensor entry from every rank's local piece.

    Every claim of the file (global shape, mesh, placements) is checked against the local pieces
    before the full tensor is allocated, so a forged global shape cannot make it allocate more
    than the pieces hold.
    """
    first = pieces[0]
    try:
        mesh = first.device_mesh.mesh.cpu()
        placements = tuple(first.placements)
        shape = torch.Size(first.shape)
    except (AttributeError, RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{layout.shard_path(0)}: {key!r} has an unreadable DTensor spec: {exc}") from None
    for placement in placements:
        if type(placement) is Shard and not 0 <= placement.dim < len(shape):
            raise CheckpointError(f"{layout.shard_path(0)}: {key!r} is sharded on dim {placement.dim} of a "
                                  f"{len(shape)}-d tensor")
    if mesh.dim() != len(placements):
        raise CheckpointError(f"{layout.shard_path(0)}: {key!r} has {len(placements)} placements for a "
                              f"{mesh.dim()}-d device mesh")
    parts: list[tuple[tuple[slice, ...], torch.Tensor]] = []
    covered = 0
    for rank, piece in enumerate(pieces):
        path = layout.shard_path(rank)
        if not isinstance(piece, DTensor) or tuple(piece.placements) != placements:
            raise CheckpointError(f"{path}: entry {key!r} is not sharded like on rank 0 ({placements})")
        try:
            region = _rank_region(shape, mesh, placements, rank)
        except NotImplementedError as exc:
            raise CheckpointError(f"{path}: {key!r}: {exc}") from exc
        if region is None:
            raise CheckpointError(f"{path}: rank {rank} is not in the device mesh {mesh.tolist()[:16]} of {key!r}")
        slices, canonical = region
        local = piece.to_local().detach()
        expected = tuple(s.stop - s.start for s in slices)
        if tuple(local.shape) != expected:
            raise CheckpointError(f"{path}: {key!r} local shape {tuple(local.shape)} != expected {expected}")
        if local.dtype != first.to_local().dtype:
            raise CheckpointError(f"{path}: {key!r} is {local.dtype} here but {first.to_local().dtype} on rank 0")
        if canonical:
            parts.append((tuple(slices), local))
            covered += local.numel()
    if covered != shape.numel():
        raise CheckpointError(
            f"{layout.actor_dir}: shards of {key!r} cover {covered} of {shape.numel()} elements; "
            f"are all {layout.world_size} shard files from the same save?"
        )
    full = torch.empty(shape, dtype=first.to_local().dtype)
    for slices, local in parts:
        full[slices] = local
    return full


def read_shard(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Load one shard file safely; returns (its state dict, the SHA-256 of the bytes loaded).

    Raises:
        CheckpointError: naming ``path`` when it cannot be read, fails its checksums, holds anything but
            tensors (e.g. a pickled function call) or is not a ``{name: tensor}`` mapping.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the shard: {exc.strerror or exc}") from None
    verify_torch_zip_bytes(data, path)
    digest = hashlib.sha256(data).hexdigest()
    try:
        with quiet_device_mesh_warnings():
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: refused: the shard holds Python objects other than tensors, which "
                              f"could run code when loaded (torch.load weights_only=True: {first[:200]})") from None
    except (RuntimeError, ValueError, TypeError, AttributeError, KeyError, EOFError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not a loadable torch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).strip()[:200]})") from None
    del data
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: expected a model state dict {{name: tensor}}, got {type(state).__name__}")
    if not state:
        raise CheckpointError(f"{path}: the shard holds no tensors")
    return dict(state), digest


def read_fsdp_checkpoint(layout: CheckpointLayout) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (the full model state dict in the stored dtype, {shard path: SHA-256 of the bytes read}).

    Raises:
        CheckpointError: naming the shard file that is unsafe, corrupt, or whose keys, shapes or
            replicated values disagree.
    """
    if layout.backend != "fsdp":
        raise CheckpointError(f"{layout.actor_dir} is a {layout.backend} checkpoint, not FSDP")
    shards, digests = [], {}
    for rank in range(layout.world_size):
        shard, digests[str(layout.shard_path(rank))] = read_shard(layout.shard_path(rank))
        shards.append(shard)
    return _assemble(shards, layout), digests


def load_fsdp_full_state_dict(layout: CheckpointLayout) -> dict[str, torch.Tensor]:
    """Return the full (unsharded) model state dict of an FSDP checkpoint (see :func:`read_fsdp_checkpoint`)."""
    return read_fsdp_checkpoint(layout)[0]


def _assemble(shards: list[dict[str, torch.Tensor]], layout: CheckpointLayout) -> dict[str, torch.Tensor]:
    keys = list(shards[0])
    for rank, shard in enumerate(shards[1:], start=1):
        if set(shard) != set(keys):
            diff = sorted(set(shard) ^ set(keys))[:5]
            raise CheckpointError(f"{layout.shard_path(rank)} has other keys than rank 0, e.g. {diff}")
    full: dict[str, torch.Tensor] = {}
    for key in keys:
        pieces = [shard[key] for shard in shards]
        if isinstance(pieces[0], DTensor):
            full[key] = _assemble_dtensor(key, pieces, layout)
            continue
        for rank, piece in enumerate(pieces[1:], start=1):
            if (isinstance(piece, DTensor) or piece.shape != pieces[0].shape or piece.dtype != pieces[0].dtype
                    or not torch.equal(piece, pieces[0])):
                raise CheckpointError(f"{layout.shard_path(rank)}: replicated entry {key!r} differs from rank 0")
        full[key] = pieces[0].detach()
    return full
