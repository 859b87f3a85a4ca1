"""Write the Hugging Face model folder for one checkpoint: FSDP shards loaded safely by
:mod:`ckpt_tools.shards` and written by ``verl.model_merger``'s writer, Megatron by copying the HF
model that mbridge saved; then check the folder is complete.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ckpt_tools.layout import CheckpointError, CheckpointLayout

DTYPES = ("bfloat16", "float16", "float32")


def _set_config_dtype(target: Path, dtype: str) -> None:
    """Make config.json (and its sub-configs) declare ``dtype``: verl saves through a bfloat16 model."""
    path = target / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))

    def fix(node: object) -> None:
        if isinstance(node, dict):
            for key in ("dtype", "torch_dtype"):
                if key in node:
                    node[key] = dtype
            for value in node.values():
                fix(value)

    fix(config)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def export_fsdp(layout: CheckpointLayout, target: Path, dtype: str = "bfloat16") -> dict[str, str]:
    """Merge FSDP shards into ``target``; returns {shard path: SHA-256 of the bytes loaded}.

    The shards are read by :func:`ckpt_tools.shards.read_fsdp_checkpoint` (checksums verified,
    ``torch.load(weights_only=True)``: a shard cannot run code), never by verl's merger, whose loader
    unpickles with ``weights_only=False``. The state dict, cast to ``dtype`` (default bfloat16, the
    cast ``python -m verl.model_merger merge --backend fsdp`` applies), goes to that merger's
    ``save_hf_model_and_tokenizer`` (``trust_remote_code`` off), so weights, config, generation
    config, processor and tokenizer are written by verl as in its own merge.
    """
    import torch
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    from ckpt_tools.shards import read_fsdp_checkpoint

    if dtype not in DTYPES:
        raise CheckpointError(f"unknown dtype {dtype!r} for {layout.actor_dir}; choose one of {DTYPES}")
    state_dict, digests = read_fsdp_checkpoint(layout)
    torch_dtype = getattr(torch, dtype)
    state_dict = {key: value.to(torch_dtype) if value.is_floating_point() else value
                  for key, value in state_dict.items()}
    config = ModelMergerConfig(
        operation="merge",
        backend="fsdp",
        local_dir=str(layout.actor_dir),
        target_dir=str(target),
        hf_model_config_path=str(layout.hf_dir),
        trust_remote_code=False,
    )
    try:
        merger = FSDPModelMerger(config)
        try:
            merger.save_hf_model_and_tokenizer(state_dict)
        finally:
            merger.cleanup()
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, NotImplementedError, RuntimeError) as exc:
        text = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{layout.hf_dir}: verl's writer cannot build the model from this Hugging Face config "
                              f"and the shards ({type(exc).__name__}: {text})") from None
    if dtype != "bfloat16":
        _set_config_dtype(target, dtype)
    return digests


def export_megatron(layout: CheckpointLayout, target: Path) -> dict[str, str]:
    """Copy the HF model that mbridge wrote (``actor/model/huggingface/``) into ``target``.

    Only the files directly in that folder are copied; a PEFT ``adapter/`` subfolder is left out.
    Returns {source file: SHA-256 of the bytes copied}, for ``--verify`` to compare the copies with.
    """
    digests: dict[str, str] = {}
    for path in sorted(layout.hf_dir.iterdir()):
        if path.is_file():
            digests[str(path)] = copy_hashed(path, target / path.name)
    if not digests:
        raise CheckpointError(f"{layout.hf_dir} holds no files to copy")
    return digests


def copy_hashed(source: Path, dest: Path, chunk: int = 1 << 22) -> str:
    """Copy ``source`` to ``dest``; return the SHA-256 of the bytes copied."""
    digest = hashlib.sha256()
    with source.open("rb") as src, dest.open("wb") as dst:
        while block := src.read(chunk):
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def missing_parts(target: Path) -> list[str]:
    """List what a complete VLM folder needs but ``target`` lacks (empty when complete)."""
    missing = []
    config = _json(target / "config.json")
    if not config:
        missing.append("config.json")
    if not any(target.glob("*.safetensors")):
        missing.append("weights (*.safetensors)")
    tokenizer_config = _json(target / "tokenizer_config.json")
    if not tokenizer_config or not any((target / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        missing.append("tokenizer (tokenizer_config.json + tokenizer.json)")
    processor = _json(target / "processor_config.json")
    has_template = (
        (target / "chat_template.jinja").is_file()
        or (target / "chat_template.json").is_file()
        or bool(tokenizer_config.get("chat_template") or processor.get("chat_template"))
    )
    if not has_template:
        missing.append("chat template (chat_template.jinja)")
    if "vision_config" in config:
        if "image_processor" not in processor and not (target / "preprocessor_config.json").is_file():
            missing.append("image processor (processor_config.json or preprocessor_config.json)")
        if "video_processor" not in processor and not (target / "video_preprocessor_config.json").is_file():
            missing.append("video processor (processor_config.json or video_preprocessor_config.json)")
    if not (target / "generation_config.json").is_file():
        missing.append("generation_config.json")
    return missing


def add_generation_config(target: Path) -> bool:
    """Write a generation config derived from the model config when there is none; True if written."""
    if (target / "generation_config.json").is_file():
        return False
    from transformers import AutoConfig, GenerationConfig

    GenerationConfig.from_model_config(AutoConfig.from_pretrained(target)).save_pretrained(target)
    return True


def ensure_complete(target: Path, source: Path) -> None:
    """Raise naming ``source`` (the checkpoint folder the parts come from) if ``target`` is incomplete."""
    missing = missing_parts(target)
    if missing:
        raise CheckpointError(f"the checkpoint's Hugging Face files in {source} lack: {'; '.join(missing)}")
