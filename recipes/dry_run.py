"""Dry run of a recipe: compose the full verl config, validate it as verl does, check the inputs.

    python -m recipes.dry_run --kind ppo|sft --config-name NAME [--config-path recipes/config]
        [--emit-reward-config PATH] [--emit-video-spec PATH] [--quiet] [--launch] [Hydra overrides ...]

The launchers run this when DRY_RUN=1, with exactly the overrides of the real launch. It needs no
GPU, Ray, vLLM or model weights.
1. Hydra composes the config as verl's entry point does; a misspelt key fails here with Hydra's
   own message (exit 2).
2. verl's own checks: `validate_config` as `verl.trainer.main_ppo` calls it (ppo), or the config
   dataclass conversions and profiler-interval check of `SFTTrainer._build_config` (sft).
3. MedGRPO checks (all reported together, exit 1): keys the launcher sets are set; the reward
   manager class resolves through verl's `resolve_reward_manager_cls`; `medgrpo.reward` validates
   (`MedGRPORewardConfig`); with normalization on, the stats file loads and covers every
   (data_source, task) of the data; the data files exist with the expected columns;
   `medgrpo.video` is a valid VideoSpec equal to the data's manifest.json and to the model's patch size;
   the converter's prompt-token estimates fit the prompt limit; the frames of a sample of records of
   every (data_source, task) exist (recipes/data_checks.py); RL: the data's split and the Megatron
   engine's limits, then the run plan (steps, judge calls and cost, checkpoint disk: recipes/run_plan.py).
4. The resolved config is printed as YAML on stdout (unless --quiet), secrets redacted
   (recipes/redact.py); findings go to stderr.
5. --launch (the launchers' preflight of a real launch): also what the launch needs from this
   interpreter and node (recipes/preflight.py: CUDA torch and driver, visible GPUs for actor + judge,
   vLLM, flash-attn, Megatron packages, one real judge request).

Model path: a local path must exist and hold a config.json (read for its vision patch size);
a hub id (`org/name`) that is not a local folder is not looked up (this may run offline).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recipes.check_report import select
from recipes.checks import KINDS, run_checks
from recipes.preflight import check_launch
from recipes.redact import redact_config, redact_text
from reward_fns.atomic_io import write_text_atomic

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def compose(config_name: str, overrides: Sequence[str] = (), config_dir: str | Path = CONFIG_DIR,
            values: Mapping[str, Any] | None = None) -> Any:
    """The config verl would get: Hydra composition of `config_dir/config_name.yaml` + overrides, then
    `values` (dotted key -> value) set as they are, so a caller in Python never writes a path or URL into
    Hydra's override grammar (the launchers quote theirs, recipes/common.sh `hq`); a key the config
    lacks is added."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base=None):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    for key, value in (values or {}).items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def _summary(cfg: Any, kind: str) -> str:
    if kind == "ppo":
        arr = cfg.actor_rollout_ref
        return (f"adv_estimator={cfg.algorithm.adv_estimator} rollout={arr.rollout.name} n={arr.rollout.n} "
                f"strategy={arr.actor.strategy} lr={arr.actor.optim.lr} kl={arr.actor.kl_loss_type}:"
                f"{arr.actor.kl_loss_coef} batch={cfg.data.train_batch_size} "
                f"nodes={cfg.trainer.nnodes}x{cfg.trainer.n_gpus_per_node}")
    return (f"engine={cfg.engine.strategy} lr={cfg.optim.lr} batch={cfg.data.train_batch_size} "
            f"max_length={cfg.data.max_length} nodes={cfg.trainer.nnodes}x{cfg.trainer.n_gpus_per_node}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.dry_run", description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=KINDS, required=True, help="ppo: verl.trainer.main_ppo; sft: sft_trainer")
    p.add_argument("--config-path", default=str(CONFIG_DIR), help="folder of the recipe YAML files")
    p.add_argument("--config-name", required=True, help="e.g. medgrpo_grpo or medgrpo_sft")
    p.add_argument("--emit-reward-config", metavar="PATH", help="also write the resolved medgrpo.reward as YAML")
    p.add_argument("--emit-video-spec", metavar="PATH", help="also write the resolved medgrpo.video as YAML")
    p.add_argument("--quiet", action="store_true", help="do not print the resolved config")
    p.add_argument("--launch", action="store_true",
                   help="preflight of a real launch: also check this interpreter (GPUs, vLLM, flash-attn)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as given to verl")
    args = p.parse_intermixed_args(argv)

    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    tag = f"[{'preflight' if args.launch else 'dry-run'}] {args.config_name} ({args.kind})"
    try:
        cfg = compose(args.config_name, args.overrides, args.config_path)
        resolved = OmegaConf.to_yaml(OmegaConf.create(redact_config(OmegaConf.to_container(cfg, resolve=True))))
    except (HydraException, OmegaConfBaseException) as err:
        cause = f"\n  {err.__cause__}" if err.__cause__ is not None and str(err.__cause__) not in str(err) else ""
        print(redact_text(f"{tag}: Hydra could not compose the config:\n  {err}{cause}"), file=sys.stderr)
        return 2
    device = select(cfg, "trainer.device")  # as configured (verl's auto_set_device in the checks may change it)
    report = run_checks(cfg, args.kind)
    if args.launch:
        with contextlib.redirect_stdout(sys.stderr):
            check_launch(cfg, args.kind, report, device=device)
    if not args.quiet:
        sys.stdout.write(resolved)
        sys.stdout.flush()
    for prefix, lines in (("", report.notes), ("warning: ", report.warnings), ("error: ", report.errors)):
        for line in lines:
            print(redact_text(f"{tag}: {prefix}{line}"), file=sys.stderr)
    if report.errors:
        print(f"{tag}: FAILED ({len(report.errors)} error(s))", file=sys.stderr)
        return 1
    for path, block in ((args.emit_reward_config, {"medgrpo": {"reward": select(cfg, "medgrpo.reward")}}),
                        (args.emit_video_spec, select(cfg, "medgrpo.video"))):
        if path:
            write_text_atomic(path, OmegaConf.to_yaml(OmegaConf.create(block)))
            print(f"{tag}: wrote {path}", file=sys.stderr)
    print(f"{tag}: OK: {_summary(cfg, args.kind)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
