"""Find what a verl checkpoint holds: the actor folder, the training step and the backend.

verl writes ``<trainer.default_local_dir>/global_step_N/actor/`` with, for FSDP,
``fsdp_config.json`` (``{"FSDP_version": 2, "world_size": W}``), one
``model_world_size_W_rank_r.pt`` per rank and a ``huggingface/`` folder (config, tokenizer,
processor, generation config); and for Megatron with mbridge ``model/huggingface/`` holding the
full HF model (older layouts: ``huggingface/`` directly under ``actor/``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

STEP_PATTERN = re.compile(r"^global_step_(\d+)$")
BACKENDS = ("fsdp", "megatron")
MEGATRON_HF_SUBDIRS = ("model/huggingface", "huggingface")


class CheckpointError(ValueError):
    """A checkpoint folder is missing something or is laid out unexpectedly (the message names the path)."""


@dataclass(frozen=True)
class CheckpointLayout:
    """Where the pieces of one ``global_step_N`` checkpoint are.

    Attributes:
        step_dir: the ``global_step_N`` folder.
        actor_dir: ``global_step_N/actor``.
        step: N, parsed from the folder name.
        backend: ``"fsdp"`` or ``"megatron"``.
        hf_dir: the folder with the HF config/tokenizer/processor (FSDP) or the full HF model (Megatron).
        world_size: number of FSDP shard files (0 for Megatron).
    """

    step_dir: Path
    actor_dir: Path
    step: int
    backend: str
    hf_dir: Path
    world_size: int = 0

    def shard_path(self, rank: int) -> Path:
        """The FSDP model shard file written by ``rank``."""
        return self.actor_dir / f"model_world_size_{self.world_size}_rank_{rank}.pt"


def parse_step(step_dir: Path) -> int:
    """Return N from a folder named ``global_step_N``."""
    match = STEP_PATTERN.match(step_dir.name)
    if match is None:
        raise CheckpointError(f"cannot read the training step from {step_dir}: expected a folder named global_step_N")
    return int(match.group(1))


def _has_hf_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _detect_backend(actor_dir: Path) -> str:
    if (actor_dir / "fsdp_config.json").is_file():
        return "fsdp"
    megatron_markers = ("model", "dist_ckpt", "ckpt_contents.json", "transformer_config.json")
    if any((actor_dir / name).exists() for name in megatron_markers) or _has_hf_weights(actor_dir / "huggingface"):
        return "megatron"
    raise CheckpointError(
        f"cannot tell the backend of {actor_dir}: it has no fsdp_config.json (FSDP) and no model/ or "
        "huggingface/ folder (Megatron); pass --backend fsdp|megatron"
    )


MAX_CONFIG_BYTES = 1 << 20  # fsdp_config.json is a few dozen bytes


def _read_world_size(config_path: Path) -> int:
    """The ``world_size`` of fsdp_config.json: a JSON integer >= 1 (not a float, string or bool)."""
    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{config_path}: {config_path.stat().st_size} bytes; not an fsdp_config.json")
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{config_path}: not readable JSON ({type(exc).__name__}: {exc})") from None
    value = config.get("world_size") if isinstance(config, dict) else None
    if type(value) is not int or value < 1:
        raise CheckpointError(f"{config_path}: 'world_size' must be an integer >= 1, got {value!r:.40}")
    return value


def _present_ranks(actor_dir: Path, world_size: int) -> set[int]:
    """Ranks r < world_size with a ``model_world_size_{world_size}_rank_r.pt`` file (one directory scan)."""
    pattern = re.compile(rf"^model_world_size_{world_size}_rank_(0|[1-9]\d*)\.pt$")
    ranks = set()
    for path in actor_dir.iterdir():
        match = pattern.match(path.name)
        if match and int(match.group(1)) < world_size and path.is_file():
            ranks.add(int(match.group(1)))
    return ranks


def _fsdp_layout(step_dir: Path, actor_dir: Path, step: int) -> CheckpointLayout:
    config_path = actor_dir / "fsdp_config.json"
    if not config_path.is_file():
        raise CheckpointError(f"not an FSDP checkpoint: {config_path} is missing")
    world_size = _read_world_size(config_path)
    hf_dir = actor_dir / "huggingface"
    layout = CheckpointLayout(step_dir, actor_dir, step, "fsdp", hf_dir, world_size)
    present = _present_ranks(actor_dir, world_size)  # bounded by the folder, whatever world_size claims
    if len(present) < world_size:
        missing = []
        for rank in range(world_size):  # stops after the first few gaps: len(present) + 5 steps at most
            if rank not in present:
                missing.append(str(layout.shard_path(rank)))
                if len(missing) == 5:
                    break
        more = world_size - len(present) - len(missing)
        raise CheckpointError(f"FSDP checkpoint {actor_dir} (world_size={world_size}) lacks shard files: {missing}"
                              + (f" and {more} more" if more > 0 else ""))
    if not (hf_dir / "config.json").is_file():
        raise CheckpointError(
            f"FSDP checkpoint {actor_dir} lacks {hf_dir / 'config.json'} (verl's checkpoint manager writes the "
            "HF config, tokenizer and processor there on rank 0)"
        )
    return layout


def _megatron_layout(step_dir: Path, actor_dir: Path, step: int) -> CheckpointLayout:
    for sub in MEGATRON_HF_SUBDIRS:
        if _has_hf_weights(actor_dir / sub):
            return CheckpointLayout(step_dir, actor_dir, step, "megatron", actor_dir / sub)
    expected = " or ".join(str(actor_dir / sub) + "/" for sub in MEGATRON_HF_SUBDIRS)
    raise CheckpointError(
        f"no Hugging Face weights in Megatron checkpoint {actor_dir}: expected config.json and *.safetensors in "
        f"{expected}. verl writes them there only with mbridge (actor_rollout_ref.actor.megatron.use_mbridge=True) "
        "and 'hf_model' in actor_rollout_ref.actor.checkpoint.save_contents; verl's Megatron merger cannot "
        "convert Qwen-VL dist_ckpt shards."
    )


def resolve_checkpoint(ckpt: str | Path, backend: str | None = None) -> CheckpointLayout:
    """Check a ``global_step_N`` folder (or its ``actor/`` subfolder) and describe its layout.

    Args:
        ckpt: path to ``.../global_step_N`` (``.../global_step_N/actor`` is accepted too).
        backend: ``"fsdp"``, ``"megatron"`` or ``None`` to detect it from the files.

    Raises:
        CheckpointError: naming the missing or malformed path.
    """
    path = Path(ckpt).expanduser().resolve()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder {path} does not exist")
    step_dir = path.parent if path.name == "actor" else path
    actor_dir = step_dir / "actor"
    step = parse_step(step_dir)
    if not actor_dir.is_dir():
        raise CheckpointError(f"checkpoint {step_dir} has no actor/ folder (expected {actor_dir})")
    if backend is not None and backend not in BACKENDS:
        raise CheckpointError(f"unknown backend {backend!r} for {actor_dir}; choose one of {BACKENDS}")
    backend = backend or _detect_backend(actor_dir)
    if backend == "fsdp":
        return _fsdp_layout(step_dir, actor_dir, step)
    return _megatron_layout(step_dir, actor_dir, step)
