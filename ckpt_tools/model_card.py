"""The short ``README.md`` model card written beside exported weights."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class CardInfo:
    """Everything the card states about one export."""

    step: int
    backend: str
    source: Path
    dtype: str
    base_model: str | None = None
    recipe: str | None = None
    reward_stats: Path | None = None
    verification: str | None = None
    date: str | None = None


def render_model_card(info: CardInfo) -> str:
    """Return the card's Markdown (with Hugging Face YAML metadata)."""
    date = info.date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = ["---", "library_name: transformers", "pipeline_tag: image-text-to-text"]
    if info.base_model:
        meta.append(f"base_model: {info.base_model}")
    meta += ["tags: [medgrpo, verl, grpo, medical-video]", "---"]
    if info.reward_stats is not None:
        stats = f"`{info.reward_stats}` (sha256 `{sha256_file(info.reward_stats)}`)"
    else:
        stats = "none given"
    rows = [
        ("Base model", info.base_model or "not given (pass --base-model)"),
        ("Recipe", info.recipe or "not given (pass --recipe)"),
        ("Training step", str(info.step)),
        ("Reward stats file", stats),
        ("Source checkpoint", f"`{info.source}` ({info.backend})"),
        ("Weights dtype", info.dtype),
        ("Verification", info.verification or "not run (pass --verify)"),
        ("Exported", date),
    ]
    lines = [
        *meta,
        "",
        f"# MedGRPO checkpoint, step {info.step}",
        "",
        "Exported from a verl checkpoint with `ckpt_tools/merge.py`.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "```python",
        "from transformers import AutoModelForImageTextToText, AutoProcessor",
        'model = AutoModelForImageTextToText.from_pretrained("<this folder>", dtype="auto")',
        'processor = AutoProcessor.from_pretrained("<this folder>")',
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(target: str | Path, info: CardInfo) -> Path:
    """Write ``README.md`` into ``target`` and return its path."""
    path = Path(target) / "README.md"
    path.write_text(render_model_card(info), encoding="utf-8")
    return path
