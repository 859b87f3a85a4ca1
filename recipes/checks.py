"""The checks of the recipe dry run (recipes/dry_run.py) on a composed verl config.

Each check appends to a `Report` (errors, warnings, notes) instead of raising, so one dry run lists
every problem. verl's own checks are called as verl's entry points call them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from recipes.check_report import _MISSING, Report, select

KINDS = ("ppo", "sft")  # ppo: verl.trainer.main_ppo; sft: verl.trainer.sft_trainer(_ray)

# Keys the launchers set from environment variables: key -> variable (named in the error).
LAUNCHER_KEYS = {
    "ppo": {"actor_rollout_ref.model.path": "MODEL_PATH", "data.train_files": "DATA_DIR",
            "data.val_files": "DATA_DIR"},
    "sft": {"model.path": "MODEL_PATH", "data.train_files": "DATA_DIR"},  # val_files: null = no validation
}
VIDEO_DATA_FIELDS = ("fps", "max_frames", "min_pixels", "max_pixels")  # what changes the prepared data


def installed(module: str) -> bool:
    """Whether `module` can be imported here (a missing parent package counts as missing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _files(value: Any) -> list[str]:
    if value is None or value is _MISSING:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def check_launcher_keys(cfg: Any, kind: str, report: Report) -> None:
    for key, env in LAUNCHER_KEYS[kind].items():
        if select(cfg, key) in (None, _MISSING):
            report.errors.append(f"{key} is not set (the launcher sets it from ${env}; or pass {key}=...)")


# ---- verl's own checks -----------------------------------------------------------------------
def check_verl_ppo(cfg: Any, report: Report) -> None:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    try:
        auto_set_device(cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # need_critic warns that the critic is off (intended for GRPO)
            use_critic = need_critic(cfg)
        validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=use_critic)
    except Exception as err:
        report.errors.append(f"verl validate_config: {type(err).__name__}: {err}")
    if cfg.algorithm.adv_estimator == "grpo" and cfg.actor_rollout_ref.rollout.n < 2:
        report.errors.append(f"GRPO needs actor_rollout_ref.rollout.n >= 2 (group-relative advantages), "
                             f"got {cfg.actor_rollout_ref.rollout.n}")


def check_verl_sft(cfg: Any, report: Report) -> None:
    """What SFTTrainer._build_config checks, minus the model (HFModelConfig loads the model)."""
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.device import auto_set_device

    auto_set_device(cfg)
    for key in ("engine", "optim", "checkpoint", "profiler"):
        try:
            omega_conf_to_dataclass(cfg[key])
        except Exception as err:
            report.errors.append(f"verl {key} config: {type(err).__name__}: {err}")
    start, end = list(cfg.trainer.profile_interval)
    if end < start or (start < 0 and end >= 0):
        report.errors.append(f"trainer.profile_interval {[start, end]}: needs start <= end, both < 0 to disable")
    n_gpus = int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)
    dp = max(1, n_gpus // int(cfg.engine.get("ulysses_sequence_parallel_size", 1) or 1))
    batch = int(cfg.data.train_batch_size)
    if batch < dp:
        report.errors.append(f"data.train_batch_size {batch} < data-parallel size {dp}: nothing per GPU")
    elif batch % dp:
        report.warnings.append(f"data.train_batch_size {batch} is not a multiple of the data-parallel size {dp}; "
                               f"verl uses {batch // dp * dp}")


# ---- MedGRPO checks --------------------------------------------------------------------------
def check_reward(cfg: Any, data_files: list[str], report: Report) -> Any:
    """Reward manager class, medgrpo.reward, stats file, (source, task) coverage; returns the settings."""
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    try:
        cls = resolve_reward_manager_cls(cfg)
        if not (isinstance(cls, type) and issubclass(cls, RewardManagerBase)):
            report.errors.append(f"reward.reward_manager resolves to {cls!r}, not a RewardManagerBase subclass")
        else:
            report.notes.append(f"reward manager: {cls.__module__}.{cls.__qualname__}")
    except Exception as err:
        report.errors.append(f"reward.reward_manager does not resolve: {type(err).__name__}: {err}")

    from reward_fns.build import load_reward
    from reward_fns.config import RewardConfigError
    from reward_fns.judge.health import judge_used
    from reward_fns.judge.verl_backend import check_verl_judge

    try:
        settings, _ = load_reward(cfg, data_files)  # what the reward manager runs at start-up
    except RewardConfigError as err:
        report.errors.append(str(err))
        return None
    report.notes.extend(check_verl_judge(cfg)[1])  # medgrpo_judge=verl: verl's reward-model servers
    judge = settings.judge
    if judge.backend == "openai" and judge_used(settings):
        if judge.base_url is None and not os.environ.get(judge.api_key_env):
            report.warnings.append(f"the judge calls api.openai.com but ${judge.api_key_env} is not set here "
                                   f"(every Ray node needs it)")
        report.notes.append(f"judge: {judge.model} at {judge.base_url or 'api.openai.com'} "
                            f"(key from ${judge.api_key_env})")
    return settings


def check_data_files(cfg: Any, kind: str, report: Report) -> list[str]:
    """Existing local train/val files with the expected columns, of finished conversions (others are errors
    naming the path)."""
    import pyarrow.parquet as pq

    from data_preprocess.outputs import OutputError, check_outputs

    data = cfg.data
    if kind == "ppo":
        columns = [data.prompt_key, data.get("reward_fn_key", "data_source"), "reward_model", "extra_info",
                   data.video_key]
    else:
        columns = [data.messages_key, data.get("video_key", "videos")]
    found = []
    for key in ("train_files", "val_files"):
        for name in _files(select(cfg, f"data.{key}")):
            if "://" in name:
                report.notes.append(f"data.{key}: {name} is remote, not checked")
                continue
            path = Path(name).expanduser()
            if not path.is_file():
                report.errors.append(f"data.{key}: file not found: {path}")
                continue
            try:
                meta = pq.ParquetFile(path)
            except Exception as err:
                report.errors.append(f"data.{key}: {path}: not a parquet file: {err}")
                continue
            lacking = [c for c in columns if c not in meta.schema_arrow.names]
            if lacking:
                report.errors.append(f"data.{key}: {path}: missing column(s) {lacking} "
                                     f"(has {meta.schema_arrow.names})")
                continue
            rows = meta.metadata.num_rows
            if rows == 0:
                report.errors.append(f"data.{key}: {path}: no rows")
                continue
            report.notes.append(f"data.{key}: {path} ({rows} rows)")
            found.append(str(path))
    for folder in dict.fromkeys(Path(name).parent for name in found):
        try:
            check_outputs(folder)  # a conversion interrupted between two files: their manifest says so
        except OutputError as err:
            report.errors.append(f"data: {err}")
            found = [name for name in found if Path(name).parent != folder]
    return found


def check_video(cfg: Any, kind: str, data_files: list[str], report: Report) -> None:
    """medgrpo.video is a VideoSpec equal to the data's manifest, the patch size and the processor kwargs."""
    from data_preprocess.video_spec import VideoSpec

    try:
        spec = VideoSpec.from_mapping(select(cfg, "medgrpo.video") or {})
    except (TypeError, ValueError) as err:
        report.errors.append(f"medgrpo.video: {err}")
        return
    patch = select(cfg, "data.image_patch_size")
    if patch not in (_MISSING, None) and patch != spec.image_patch_size:
        report.errors.append(f"data.image_patch_size {patch} != medgrpo.video.image_patch_size {spec.image_patch_size}")
    kwargs = select(cfg, "medgrpo.processor_kwargs") or {}
    for key in sorted(k for k, v in kwargs.items() if isinstance(v, dict | list)):
        report.errors.append(f"medgrpo.processor_kwargs.{key}: only flat values work (verl hands the processor a "
                             f"config node; nested nodes fail transformers' type checks)")
    if "min_pixels" in kwargs or "max_pixels" in kwargs:
        for key in ("min_pixels", "max_pixels"):
            if kwargs.get(key) != getattr(spec, key):
                report.errors.append(f"medgrpo.processor_kwargs.{key} is {kwargs.get(key)!r}, but "
                                     f"medgrpo.video.{key} is {getattr(spec, key)}")
    elif kwargs.get("do_resize") is not False:
        report.warnings.append("medgrpo.processor_kwargs sets neither min/max_pixels nor do_resize: false: the "
                               "HF/vLLM video processor may re-scale the frames (pick a medgrpo_model)")
    if kind == "sft" and select(cfg, "data.enable_thinking_default") not in (None, _MISSING):
        report.warnings.append("data.enable_thinking_default is set: transformers then drops the processor_kwargs "
                               "of data.apply_chat_template_kwargs (unless the chat template reads enable_thinking)")
    if not data_files:
        return
    manifest = Path(data_files[0]).parent / "manifest.json"
    if not manifest.is_file():
        report.notes.append(f"no {manifest}: VideoSpec of the data not compared")
        return
    try:
        info = json.loads(manifest.read_text())
        prepared = VideoSpec.from_mapping(info["video_spec"])
    except (OSError, KeyError, TypeError, ValueError) as err:
        report.warnings.append(f"{manifest}: unreadable video_spec ({err}); not compared")
        return
    diff = {f: (getattr(prepared, f), getattr(spec, f)) for f in VIDEO_DATA_FIELDS
            if getattr(prepared, f) != getattr(spec, f)}
    if diff:
        shown = ", ".join(f"{f}: data {a!r} vs recipe {b!r}" for f, (a, b) in diff.items())
        report.errors.append(f"{manifest}: the data was prepared with another VideoSpec ({shown}); prepare it with "
                             f"--video-spec recipes/config/medgrpo_video.yaml or edit medgrpo.video")
    check_prompt_estimates(cfg, kind, manifest, info, report)


def check_prompt_estimates(cfg: Any, kind: str, manifest: Path, info: dict, report: Report) -> None:
    """The converter's prompt-token estimates (manifest.json) against the prompt limit. RL without verl's
    start-up filter (`data.filter_overlong_prompts: false`, the recipe's default: the filter decodes every
    clip before any GPU work, again on every resume) relies on them: a task over the limit is an error."""
    limit_key = "data.max_prompt_length" if kind == "ppo" else "data.max_length"
    limit = select(cfg, limit_key)
    per_task = (info.get("prompt_tokens") or {}).get("per_task") or {}
    over = {t: s.get("max") for t, s in sorted(per_task.items()) if isinstance(s, dict) and isinstance(limit, int)
            and isinstance(s.get("max"), int) and s["max"] > limit}
    if not per_task or not isinstance(limit, int):
        report.warnings.append(f"{manifest}: no prompt-token estimates; prompts are not checked against {limit_key}")
    elif not over:
        top = max((s.get("max", 0) for s in per_task.values() if isinstance(s, dict)), default=0)
        report.notes.append(f"prompt tokens (converter estimate): max {top} <= {limit_key}={limit}")
    elif kind == "ppo" and select(cfg, "data.filter_overlong_prompts") is not True:
        report.errors.append(f"{manifest}: estimated prompts exceed {limit_key}={limit} (task: max tokens {over}) and "
                             f"data.filter_overlong_prompts is off, so such a prompt would stop the run: raise "
                             f"{limit_key}, prepare the data with a smaller medgrpo.video (max_frames / max_pixels), "
                             f"or set data.filter_overlong_prompts=true (decodes every clip at start-up)")
    else:
        report.warnings.append(f"{manifest}: estimated prompts of {sorted(over)} exceed {limit_key}={limit}"
                               + (" (filter_overlong_prompts drops them)" if kind == "ppo" else ""))


def check_model(cfg: Any, kind: str, report: Report) -> None:
    key = "actor_rollout_ref.model.path" if kind == "ppo" else "model.path"
    value = select(cfg, key)
    if value in (None, _MISSING):
        return
    name = str(value)
    path = Path(name).expanduser()
    if path.exists():
        config = path / "config.json"
        if not config.is_file():
            report.errors.append(f"{key}: {path} has no config.json (not an HF model folder)")
            return
        try:
            hf = json.loads(config.read_text())
        except (OSError, ValueError) as err:
            report.errors.append(f"{key}: {config}: {err}")
            return
        patch = (hf.get("vision_config") or {}).get("patch_size")
        want = select(cfg, "medgrpo.video.image_patch_size")
        if patch is not None and patch != want:
            report.errors.append(f"{key}: {path} is a {hf.get('model_type')} with vision patch_size {patch}, but "
                                 f"medgrpo.video.image_patch_size is {want} (pick the matching medgrpo_model)")
        report.notes.append(f"model: {path} ({hf.get('model_type')})")
    elif name.startswith(("/", "./", "../", "~")):
        report.errors.append(f"{key}: model folder not found: {path}")
    elif "://" in name:
        report.notes.append(f"model: {name} is remote, not checked")
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        report.warnings.append(f"model: {name} is not a local folder; taken as a hub id, not checked")
    else:
        report.errors.append(f"{key}: model folder not found: {path}")


def check_environment(cfg: Any, kind: str, report: Report) -> None:
    nnodes = select(cfg, "trainer.nnodes")
    if isinstance(nnodes, int) and nnodes > 1 and not os.environ.get("RAY_ADDRESS"):
        report.warnings.append(f"trainer.nnodes={nnodes} but RAY_ADDRESS is not set: the real launch joins an "
                               f"existing Ray cluster (see recipes/README.md)")
    rollout = select(cfg, "actor_rollout_ref.rollout.name") if kind == "ppo" else None
    if rollout == "vllm" and not installed("vllm"):
        report.notes.append("vllm is not installed here (fine for a dry run; GPU nodes need requirements-gpu.txt)")


def add_run_plan(cfg: Any, settings: Any, report: Report) -> None:
    """The run plan (recipes/run_plan.py) as notes; skipped when the train file is not readable."""
    from recipes.run_plan import run_plan

    train, val = (_files(select(cfg, f"data.{key}")) for key in ("train_files", "val_files"))
    if len(train) != 1 or not Path(train[0]).is_file():
        return
    try:
        plan = run_plan(cfg, train[0], val[0] if len(val) == 1 and Path(val[0]).is_file() else None, settings)
    except Exception as err:  # the plan is information; a problem in it is not a launch error
        report.warnings.append(f"run plan not computed: {type(err).__name__}: {err}")
        return
    report.notes.extend(plan.lines())


# ---- all of them ------------------------------------------------------------------------------
def run_checks(cfg: Any, kind: str) -> Report:
    from recipes.data_checks import check_records
    from recipes.extension_checks import check_extensions

    report = Report()
    with contextlib.redirect_stdout(sys.stderr):  # verl prints progress; stdout is for the YAML
        check_launcher_keys(cfg, kind, report)
        (check_verl_ppo if kind == "ppo" else check_verl_sft)(cfg, report)
        data_files = check_data_files(cfg, kind, report)
        settings = check_reward(cfg, data_files, report) if kind == "ppo" else None
        check_video(cfg, kind, data_files, report)
        check_records(cfg, kind, data_files, report)
        if kind == "ppo":
            add_run_plan(cfg, settings, report)
        check_model(cfg, kind, report)
        check_extensions(cfg, kind, report)
        check_environment(cfg, kind, report)
    return report


