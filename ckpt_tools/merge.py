"""Turn a verl ``global_step_N`` checkpoint into a Hugging Face model folder (CLI).

    python ckpt_tools/merge.py --ckpt checkpoints/run/global_step_200 --out models/run-step200 --verify \\
        --base-model Qwen/Qwen2.5-VL-7B-Instruct --recipe grpo_qwen25vl_7b --reward-stats stats.json

FSDP shards are loaded by ``ckpt_tools.shards`` (CRC-checked, ``weights_only=True``: a shard cannot
run code) and written by ``verl.model_merger``'s writer (bfloat16 unless ``--dtype``); Megatron
checkpoints must hold the HF model mbridge saved (``actor/model/huggingface/``), which is copied.
``--out`` may not hold or lie inside the checkpoint, and ``--force`` replaces only an earlier export.
The folder is built beside ``--out`` and renamed into place only when complete (and verified, with
``--verify``), so ``--out`` never holds a partial export. Exit codes: 0 done, 1 verification
failed, 2 bad input (the message names the path).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not from ckpt_tools/
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from ckpt_tools.export import DTYPES, add_generation_config, ensure_complete, export_fsdp, export_megatron
from ckpt_tools.integrity import check_files
from ckpt_tools.layout import BACKENDS, CheckpointError, CheckpointLayout, resolve_checkpoint
from ckpt_tools.model_card import CardInfo, write_model_card
from reward_fns.atomic_io import current_umask


class VerificationFailed(RuntimeError):
    """The export does not reproduce the checkpoint within tolerance."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="ckpt_tools.merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="the global_step_N folder of a verl checkpoint")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: detected from the files")
    parser.add_argument("--out", required=True, help="Hugging Face model folder to create")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="reload the export and compare weights and probe logits with the checkpoint (CPU, fp32: needs RAM for "
        "two fp32 copies of the model)",
    )
    parser.add_argument("--atol", type=float, default=0.0, help="--verify tolerance on |diff| (default 0: exact)")
    parser.add_argument(
        "--dtype", choices=DTYPES, default=None, help="FSDP weights dtype (default bfloat16, as verl's merger)"
    )
    parser.add_argument("--base-model", default=None, help="base model name for the model card")
    parser.add_argument("--recipe", default=None, help="recipe name for the model card")
    parser.add_argument("--reward-stats", default=None, help="reward normalization stats file used in training")
    parser.add_argument(
        "--force", action="store_true",
        help="replace --out if it is an earlier export (or empty); never a folder holding the checkpoint")
    return parser


def _check_inputs(args: argparse.Namespace) -> tuple[CheckpointLayout, Path, Path | None]:
    layout = resolve_checkpoint(args.ckpt, args.backend)
    # a shard cut short: one error naming the file, before verl's merger or torch.load read it
    check_files([layout.shard_path(rank) for rank in range(layout.world_size)]
                + sorted(layout.hf_dir.glob("*.safetensors")))
    if args.dtype is not None and layout.backend != "fsdp":
        raise CheckpointError(f"--dtype applies to FSDP checkpoints; {layout.actor_dir} is {layout.backend}")
    stats = Path(args.reward_stats).resolve() if args.reward_stats else None
    if stats is not None and not stats.is_file():
        raise CheckpointError(f"reward stats file {stats} does not exist")
    out = Path(args.out).expanduser().resolve()
    _check_out(out, args.force, {"the checkpoint": [layout.step_dir, Path(args.ckpt).expanduser().absolute()],
                                 "the reward stats file": [stats] if stats else []})
    return layout, out, stats


def _check_out(out: Path, force: bool, inputs: dict[str, list[Path]]) -> None:
    """Refuse an ``--out`` that overlaps an input (inside it or holding it), or that ``--force`` could not
    replace without destroying something that is not an earlier export."""
    for what, paths in inputs.items():
        for path in paths:
            if out == path or out in path.parents:
                raise CheckpointError(f"--out {out} holds {what} {path}; replacing it would delete the input; "
                                      "choose another output folder")
            if path in out.parents:
                raise CheckpointError(f"--out {out} must not be inside {what} {path}")
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out} exists and is not a folder; refusing to replace it")
    if not out.exists():
        return
    if not force:
        raise CheckpointError(f"output folder {out} already exists; pass --force to replace it")
    if any(out.iterdir()) and not (out / "config.json").is_file():
        raise CheckpointError(f"--out {out} is a non-empty folder that is not a model export (no config.json); "
                              "--force replaces only an earlier export or an empty folder")


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; an existing ``out`` is swapped out, then removed."""
    umask = current_umask()
    os.chmod(tmp, 0o777 & ~umask)
    for path in tmp.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_checkpoint(args: argparse.Namespace) -> Path:
    """Export, complete, verify and card the checkpoint, then publish it at ``--out``."""
    layout, out, stats = _check_inputs(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        if layout.backend == "fsdp":
            dtype = args.dtype or "bfloat16"
            digests = export_fsdp(layout, tmp, dtype)
        else:
            dtype = "as stored by mbridge"
            digests = export_megatron(layout, tmp)
        if add_generation_config(tmp):
            print(f"note: {layout.hf_dir} has no generation_config.json; wrote one from the model config")
        ensure_complete(tmp, layout.hf_dir)
        verification = None
        if args.verify:
            from ckpt_tools.verify import verify_export

            report = verify_export(tmp, layout, atol=args.atol, read_digests=digests)
            for note in report.probe_notes:
                print(f"verify note: {note}")
            print(report.summary())
            if not report.ok:
                raise VerificationFailed(f"{report.summary()} (export of {layout.step_dir} not written to {out})")
            verification = report.summary()
        card = CardInfo(
            step=layout.step,
            backend=layout.backend,
            source=layout.step_dir,
            dtype=dtype,
            base_model=args.base_model,
            recipe=args.recipe,
            reward_stats=stats,
            verification=verification,
        )
        write_model_card(tmp, card)
        _publish(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        out = export_checkpoint(args)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except VerificationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # read-only or full disk, a file that vanished: one line naming the path
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot export{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
