"""Reassemble verl FSDP shard files into one full state dict, independently of ``verl.model_merger``.

Each ``model_world_size_W_rank_r.pt`` holds rank r's ``model.state_dict()``: DTensors for sharded
parameters (FSDP2 ``fully_shard``, or FSDP1 sharded state dicts) and plain tensors for replicated
buffers. verl's merger concatenates local tensors in rank order and casts them to bfloat16; this
module instead places every local tensor at its global offset, computed from the DTensor's device
mesh and placements, keeps the stored dtype, and checks that the pieces cover the full tensor.
That makes it a reference to check verl's output against (``--verify``), and the source for
non-bfloat16 exports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.distributed.tensor import DTensor, Replicate, Shard

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
    """Build the full tensor of one DTensor entry from every rank's local piece."""
    first = pieces[0]
    mesh = first.device_mesh.mesh.cpu()
    placements = tuple(first.placements)
    local0 = first.to_local()
    full = torch.empty(first.shape, dtype=local0.dtype)
    covered = 0
    for rank, piece in enumerate(pieces):
        path = layout.shard_path(rank)
        if not isinstance(piece, DTensor) or tuple(piece.placements) != placements:
            raise CheckpointError(f"{path}: entry {key!r} is not sharded like on rank 0 ({placements})")
        try:
            region = _rank_region(first.shape, mesh, placements, rank)
        except NotImplementedError as exc:
            raise CheckpointError(f"{path}: {key!r}: {exc}") from exc
        if region is None:
            raise CheckpointError(f"{path}: rank {rank} is not in the device mesh {mesh.tolist()} of {key!r}")
        slices, canonical = region
        local = piece.to_local().detach()
        expected = tuple(s.stop - s.start for s in slices)
        if tuple(local.shape) != expected:
            raise CheckpointError(f"{path}: {key!r} local shape {tuple(local.shape)} != expected {expected}")
        if canonical:
            full[tuple(slices)] = local
            covered += local.numel()
    if covered != full.numel():
        raise CheckpointError(
            f"{layout.actor_dir}: shards of {key!r} cover {covered} of {full.numel()} elements; "
            f"are all {layout.world_size} shard files from the same save?"
        )
    return full


def load_fsdp_full_state_dict(layout: CheckpointLayout) -> dict[str, torch.Tensor]:
    """Return the full (unsharded) model state dict of an FSDP checkpoint, in the stored dtype.

    Raises:
        CheckpointError: naming the shard file whose keys, shapes or replicated values disagree.
    """
    if layout.backend != "fsdp":
        raise CheckpointError(f"{layout.actor_dir} is a {layout.backend} checkpoint, not FSDP")
    with quiet_device_mesh_warnings():
        shards = [
            torch.load(layout.shard_path(r), map_location="cpu", weights_only=False) for r in range(layout.world_size)
        ]
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
            if not isinstance(piece, torch.Tensor) or isinstance(piece, DTensor) or not torch.equal(piece, pieces[0]):
                raise CheckpointError(f"{layout.shard_path(rank)}: replicated entry {key!r} differs from rank 0")
        full[key] = pieces[0].detach()
    return full
