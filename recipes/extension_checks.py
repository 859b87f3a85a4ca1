"""Dry-run checks of the verl extension points the recipes fill (recipes/ext): each class loads the way
verl loads it, so a wrong path fails here and not in a Ray worker minutes into a launch."""

from __future__ import annotations

from typing import Any

from recipes.check_report import _MISSING, Report, select


def check_dataset_class(cfg: Any, report: Report) -> None:
    """data.custom_cls (the SFT / RL dataset classes) is a torch Dataset loaded by verl's loader."""
    path, name = select(cfg, "data.custom_cls.path"), select(cfg, "data.custom_cls.name")
    if path in (None, _MISSING):
        return
    from torch.utils.data import Dataset
    from verl.utils.import_utils import load_extern_object

    try:
        cls = load_extern_object(path, name)
    except Exception as err:
        report.errors.append(f"data.custom_cls {path}:{name} does not load: {type(err).__name__}: {err}")
        return
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        report.errors.append(f"data.custom_cls {path}:{name} is not a torch Dataset class")
    else:
        report.notes.append(f"dataset class: {cls.__module__}.{cls.__qualname__}")


def check_agent_loops(cfg: Any, report: Report) -> None:
    """agent.agent_loop_config_path loads, its targets import, and agent.default_agent_loop is registered."""
    key = "actor_rollout_ref.rollout.agent"
    path, default = select(cfg, f"{key}.agent_loop_config_path"), select(cfg, f"{key}.default_agent_loop")
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.utils.import_utils import load_class_from_fqn, resolve_config_path

    names = set(_agent_loop_registry)  # verl's own loops (single_turn_agent, tool_agent, ...)
    if path not in (None, _MISSING):
        try:
            entries = OmegaConf.load(resolve_config_path(str(path)))
            for entry in entries:
                load_class_from_fqn(entry["_target_"], f"agent loop {entry['name']}")
                names.add(entry["name"])
        except Exception as err:
            report.errors.append(f"{key}.agent_loop_config_path {path}: {type(err).__name__}: {err}")
            return
    if default not in (None, _MISSING) and default not in names:
        report.errors.append(f"{key}.default_agent_loop={default} is not registered (known: {sorted(names)})")
    elif default not in (None, _MISSING):
        report.notes.append(f"agent loop: {default}")


RAY_MODULES_KEY = "ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES"


def check_trainer_mode(cfg: Any, report: Report) -> None:
    """trainer.v1.trainer_mode resolves in verl's trainer registry once the modules verl's Ray processes
    import (the runtime_env VERL_USE_EXTERNAL_MODULES, as verl/__init__.py imports them) are imported."""
    mode = select(cfg, "trainer.v1.trainer_mode")
    if mode in (None, _MISSING):
        return
    listed = select(cfg, RAY_MODULES_KEY)
    modules = [m.strip() for m in str(listed).split(",") if m.strip()] if listed not in (None, _MISSING) else []
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils.import_utils import import_external_libs

    try:
        import_external_libs(modules)
        cls = get_trainer_cls(str(mode))
    except Exception as err:
        report.errors.append(f"trainer.v1.trainer_mode={mode} does not resolve: {type(err).__name__}: {err}")
        return
    if not cls.__module__.startswith("verl.") and cls.__module__ not in modules:
        report.errors.append(f"trainer.v1.trainer_mode={mode} is registered by {cls.__module__}, which verl's Ray "
                             f"processes do not import: add it to {RAY_MODULES_KEY} (now {modules})")
    else:
        report.notes.append(f"trainer: {mode} ({cls.__module__}.{cls.__qualname__})")


def check_extensions(cfg: Any, kind: str, report: Report) -> None:
    check_dataset_class(cfg, report)
    if kind == "ppo":
        check_agent_loops(cfg, report)
        check_trainer_mode(cfg, report)
