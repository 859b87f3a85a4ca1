"""How vLLM spreads a model over GPUs: tensor parallel size (T) and data-parallel replicas (R).

vLLM refuses a tensor parallel size that does not divide the model's attention heads, its KV heads
and its vision encoder's heads (Qwen2.5-VL-7B: 28 / 4 / 16, so 8 GPUs cannot make one TP-8 engine).
- `engine_tp(config, gpus)`: one engine in one process: the largest valid T <= gpus (what
  `evaluation.backends.vllm_offline` uses for its visible GPUs).
- `plan(config, gpus, ...)`: a node for throughput (recipes/calibrate_reward_stats.sh): the smallest
  valid T whose share of the weights fits a GPU (weights / T <= WEIGHT_SHARE of its memory, a
  heuristic that leaves the rest to the KV cache and video activations), then R = gpus // T replicas.

    python -m evaluation.backends.vllm_plan --model DIR [--gpus N] [--gpu-memory-gib 80]
        -> `tensor_parallel_size=T replicas=R` (and why, on stderr)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_SHARE = 0.4  # weights per GPU at most this share of its memory (heuristic, see above)
DEFAULT_GPU_MEMORY_GIB = 80.0  # H100 80 GB, assumed when no GPU is visible (dry runs)
_HEAD_KEYS = (("text", "num_attention_heads"), ("text", "num_key_value_heads"), ("vision", "num_heads"))


class PlanError(ValueError):
    """No tensor parallel size fits (the message says why)."""


@dataclass(frozen=True)
class VLLMPlan:
    tensor_parallel_size: int
    replicas: int
    gpus: int
    reason: str

    def line(self) -> str:
        return f"tensor_parallel_size={self.tensor_parallel_size} replicas={self.replicas}"


def head_counts(config: Mapping[str, Any]) -> dict[str, int]:
    """Head counts an HF config.json declares (text fields top-level or under text_config, vision
    under vision_config); a missing count is left out, KV heads default to the attention heads."""
    text = dict(config.get("text_config") or {})
    text = {**{k: v for k, v in config.items() if k in ("num_attention_heads", "num_key_value_heads")}, **text}
    parts = {"text": text, "vision": dict(config.get("vision_config") or {})}
    counts = {}
    for part, key in _HEAD_KEYS:
        value = parts[part].get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            counts[f"{part}.{key}"] = value
    if "text.num_attention_heads" in counts and "text.num_key_value_heads" not in counts:
        counts["text.num_key_value_heads"] = counts["text.num_attention_heads"]
    return counts


def valid_sizes(config: Mapping[str, Any], gpus: int) -> list[int]:
    """Tensor parallel sizes 1..gpus that divide every head count (ascending)."""
    counts = head_counts(config).values()
    return [t for t in range(1, max(1, gpus) + 1) if all(c % t == 0 for c in counts)]


def check_size(config: Mapping[str, Any], size: int) -> None:
    """PlanError naming the head count that `size` does not divide."""
    for name, count in head_counts(config).items():
        if count % size:
            raise PlanError(f"tensor_parallel_size={size} does not divide the model's {name}={count}")


def engine_tp(config: Mapping[str, Any], gpus: int) -> int:
    """One engine over `gpus` GPUs: the largest valid tensor parallel size (1 without a GPU)."""
    return valid_sizes(config, gpus)[-1]


def plan(config: Mapping[str, Any], gpus: int, weight_bytes: int | None = None,
         gpu_memory_bytes: float | None = None, tensor_parallel_size: int | None = None) -> VLLMPlan:
    """T and R for `gpus` GPUs (0: one CPU engine). `tensor_parallel_size` forces T (checked)."""
    if gpus <= 0:
        return VLLMPlan(1, 1, 0, "no GPU: one engine")
    memory = gpu_memory_bytes or DEFAULT_GPU_MEMORY_GIB * 2**30
    if tensor_parallel_size is not None:
        check_size(config, tensor_parallel_size)
        if tensor_parallel_size > gpus:
            raise PlanError(f"tensor_parallel_size={tensor_parallel_size} needs more than the {gpus} GPU(s)")
        size, why = tensor_parallel_size, "tensor_parallel_size given"
    else:
        sizes = valid_sizes(config, gpus)
        fits = [t for t in sizes if weight_bytes is None or weight_bytes / t <= WEIGHT_SHARE * memory]
        if not fits:
            raise PlanError(f"the weights ({weight_bytes / 2**30:.1f} GiB) need more than {sizes[-1]} GPU(s) of "
                            f"{memory / 2**30:.0f} GiB at {WEIGHT_SHARE:.0%} each, the largest tensor parallel size "
                            f"<= {gpus} dividing the heads {head_counts(config)}")
        size = fits[0]
        shown = "unknown" if weight_bytes is None else f"{weight_bytes / 2**30:.1f} GiB"
        why = (f"smallest size dividing the heads {head_counts(config)} with weights ({shown}) / T <= "
               f"{WEIGHT_SHARE:.0%} of {memory / 2**30:.0f} GiB")
    return VLLMPlan(size, gpus // size, gpus, why)


def load_config(model: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of a model folder, else transformers' AutoConfig (hub id or cache) as a dict."""
    path = Path(model) / "config.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(model)).to_dict()


def weight_bytes(model: str | os.PathLike[str]) -> int | None:
    """Size of the model folder's *.safetensors files (None when there are none)."""
    files = list(Path(model).glob("*.safetensors")) if Path(model).is_dir() else []
    return sum(f.stat().st_size for f in files) or None


def visible_gpus() -> tuple[int, float | None]:
    """(count, memory of GPU 0 in bytes) as torch sees them; (0, None) without CUDA."""
    try:
        import torch

        if not torch.cuda.is_available():
            return 0, None
        count = torch.cuda.device_count()
        return count, float(torch.cuda.get_device_properties(0).total_memory) if count else None
    except Exception:  # no torch, no driver
        return 0, None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.backends.vllm_plan", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="HF model folder (config.json, *.safetensors)")
    p.add_argument("--gpus", type=int, help="GPUs of the node (default: the ones torch sees)")
    p.add_argument("--gpu-memory-gib", type=float, help=f"memory per GPU (default: GPU 0's, else "
                   f"{DEFAULT_GPU_MEMORY_GIB:g})")
    p.add_argument("--tensor-parallel-size", type=int, help="force T (checked against the heads)")
    args = p.parse_args(argv)
    count, memory = visible_gpus()
    gpus = count if args.gpus is None else args.gpus
    if args.gpu_memory_gib:
        memory = args.gpu_memory_gib * 2**30
    try:
        config = load_config(args.model)
        result = plan(config, gpus, weight_bytes(args.model), memory, args.tensor_parallel_size)
    except (OSError, ValueError) as err:
        print(f"error: vLLM plan for {args.model} on {gpus} GPU(s): {err}", file=sys.stderr)
        return 2
    print(result.line())
    print(f"[vllm-plan] {gpus} GPU(s): {result.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
