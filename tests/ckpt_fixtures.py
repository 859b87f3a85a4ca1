"""Make real verl checkpoints of a tiny Qwen2.5-VL on CPU, for the ckpt_tools tests.

FSDP: ``python tests/ckpt_fixtures.py fsdp MODEL_DIR ACTOR_DIR WORLD_SIZE`` spawns WORLD_SIZE
processes joined by a gloo process group, shards the model with verl's own ``apply_fsdp2``
(FSDP2 ``fully_shard`` on a CPU device mesh named ``fsdp``, as verl's workers name it) and saves it
with verl's ``FSDPCheckpointManager`` - so the shard files, ``fsdp_config.json`` and
``huggingface/`` folder are exactly what training writes. It runs in a subprocess so that the
process group and DeviceMesh state never touch the pytest process.

Megatron (no Megatron-Core on CPU): :func:`make_megatron_checkpoint` lays out the HF model folder
where verl + mbridge save it, which is all ``ckpt_tools`` reads from a Megatron checkpoint.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_fsdp_checkpoints(model_dir: Path, step_dirs: dict[int, Path], timeout: float = 240) -> dict[int, Path]:
    """Write ``step_dir/actor`` for each ``{world_size: step_dir}`` as verl's FSDP checkpoint manager does.

    The saves run concurrently (one subprocess per world size); returns ``{world_size: actor_dir}``.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    procs = {}
    for world_size, step_dir in step_dirs.items():
        actor = step_dir / "actor"
        cmd = [sys.executable, str(Path(__file__).resolve()), "fsdp", str(model_dir), str(actor), str(world_size)]
        procs[world_size] = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    failures = []
    for world_size, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            failures.append(f"world size {world_size} ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-4000:]}")
    if failures:
        raise RuntimeError("FSDP save failed: " + "\n".join(failures))
    return {world_size: step_dir / "actor" for world_size, step_dir in step_dirs.items()}


def make_megatron_checkpoint(model_dir: Path, step_dir: Path, subdir: str = "model/huggingface") -> Path:
    """Lay out ``step_dir/actor`` like verl + mbridge: the full HF model under ``actor/<subdir>``."""
    actor = step_dir / "actor"
    shutil.copytree(model_dir, actor / subdir)
    (actor / "model" / "dist_ckpt").mkdir(parents=True, exist_ok=True)
    return actor


def _fsdp_worker(rank: int, world_size: int, model_dir: str, actor_dir: str, port: int) -> None:
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
    from verl.utils.fsdp_utils import apply_fsdp2

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(model_dir)
        mesh = init_device_mesh("cpu", (world_size,), mesh_dim_names=("fsdp",))
        apply_fsdp2(model, {"mesh": mesh, "reshard_after_forward": True}, {})
        manager = FSDPCheckpointManager(
            model,
            optimizer=None,
            processing_class=processor,
            checkpoint_config={"save_contents": ["model"], "load_contents": ["model"]},
        )
        manager.save_checkpoint(actor_dir, global_step=int(Path(actor_dir).parent.name.rsplit("_", 1)[-1]))
    finally:
        dist.destroy_process_group()


def _main(argv: list[str]) -> None:
    import torch.multiprocessing as mp

    kind, model_dir, actor_dir, world_size = argv
    if kind != "fsdp":
        raise SystemExit(f"unknown kind {kind!r}; usage: ckpt_fixtures.py fsdp MODEL_DIR ACTOR_DIR WORLD_SIZE")
    n = int(world_size)
    mp.start_processes(_fsdp_worker, args=(n, model_dir, actor_dir, _free_port()), nprocs=n, start_method="spawn")


if __name__ == "__main__":
    _main(sys.argv[1:])
