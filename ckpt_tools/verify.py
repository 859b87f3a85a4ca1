"""Check an exported folder against the checkpoint it came from.

The exported folder is reloaded with ``AutoModelForImageTextToText`` / ``AutoProcessor`` (in fp32,
on CPU). The reference model is built from the checkpoint's own weights: for FSDP the shard files
reassembled by :mod:`ckpt_tools.shards` (CRC-checked, weights only) and loaded into a model made
from the config; for Megatron the HF weights mbridge saved in the checkpoint. Every checkpoint file
must still hash to the SHA-256 of the bytes the export read (and a Megatron copy to its source), so
a file changed or corrupted between export and check fails. Reference weights are
rounded to the dtype stored in the export first (verl writes bfloat16), so a faithful export
matches exactly: both weight and logit differences are 0.0. The probe is a chat-templated prompt
with a tiny synthetic video and image, run through the exported processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ckpt_tools.layout import CheckpointLayout

PROBE_TEXT = "Describe what the surgeon does in this clip."
_SAFETENSORS_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}


@dataclass
class VerifyReport:
    """What ``--verify`` measured; ``ok`` when every difference is within ``atol`` and no key is off."""

    probe: str
    atol: float
    max_abs_logit_diff: float = float("inf")
    max_abs_weight_diff: float = float("inf")
    n_tensors: int = 0
    problems: list[str] = field(default_factory=list)
    probe_notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the export reproduces the checkpoint."""
        return not self.problems and max(self.max_abs_logit_diff, self.max_abs_weight_diff) <= self.atol

    def summary(self) -> str:
        """One line for logs and the model card."""
        status = "OK" if self.ok else "FAILED"
        text = (
            f"verify {status}: max abs logit diff {self.max_abs_logit_diff:.3g}, max abs weight diff "
            f"{self.max_abs_weight_diff:.3g} over {self.n_tensors} tensors (atol {self.atol:g}, fp32, CPU; "
            f"probe: {self.probe})"
        )
        return text + "".join(f"; {p}" for p in self.problems)


def _auto_model_class(config: object) -> type:
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if getattr(config, "model_type", None) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return AutoModelForImageTextToText
    return AutoModelForCausalLM


def stored_dtypes(folder: Path) -> dict[str, torch.dtype]:
    """Map every tensor name in ``folder``'s safetensors files to its stored dtype."""
    from safetensors import safe_open

    dtypes: dict[str, torch.dtype] = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                dtypes[key] = _SAFETENSORS_DTYPES.get(handle.get_slice(key).get_dtype(), torch.float32)
    return dtypes


def _round_to_stored(model: torch.nn.Module, stored: dict[str, torch.dtype]) -> None:
    """Round each floating weight to the dtype the export stores it in (keeps fp32 compute)."""
    floating = [d for d in stored.values() if d.is_floating_point]
    default = max(set(floating), key=floating.count) if floating else torch.float32
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if tensor.is_floating_point():
                tensor.data.copy_(tensor.data.to(stored.get(name, default)).to(tensor.dtype))


def checksum_problems(read: Mapping[str, str], now: Mapping[str, str], what: str) -> list[str]:
    """Files whose SHA-256 now differs from the one recorded when the export read them."""
    problems = [f"{path}: {what} (sha256 {read[path][:12]}... at export, {now.get(path, 'missing')[:12]}... now)"
                for path in sorted(read) if now.get(path) != read[path]]
    return problems + [f"{path}: not read by the export" for path in sorted(set(now) - set(read))]


def build_reference(layout: CheckpointLayout, out_dir: Path,
                    read_digests: Mapping[str, str] | None = None) -> tuple[torch.nn.Module, list[str]]:
    """Return the fp32 model holding the checkpoint's own weights, and any key or checksum problems.

    ``read_digests`` ({checkpoint file: SHA-256}) are the checksums of the bytes the export read; the
    reference's files must still hash to them, so the comparison is against what was exported.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(out_dir)
    model_class = _auto_model_class(config)
    if layout.backend == "megatron":
        problems = []
        if read_digests is not None:
            from ckpt_tools.model_card import sha256_file

            now = {path: sha256_file(path) for path in read_digests if Path(path).is_file()}
            copies = {path: sha256_file(out_dir / Path(path).name) for path in read_digests
                      if (out_dir / Path(path).name).is_file()}
            problems += checksum_problems(read_digests, now, "changed since the export read it")
            problems += checksum_problems(read_digests, copies, "its copy in the export differs")
        return model_class.from_pretrained(layout.hf_dir, dtype=torch.float32).eval(), problems
    from ckpt_tools.shards import read_fsdp_checkpoint

    model = model_class.from_config(config, dtype=torch.float32)
    state_dict, digests = read_fsdp_checkpoint(layout)
    problems = checksum_problems(read_digests, digests, "changed since the export read it") if read_digests else []
    result = model.load_state_dict(state_dict, strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or ())
    problems += [f"checkpoint lacks {k}" for k in result.missing_keys if k not in tied]
    problems += [f"checkpoint has unknown {k}" for k in result.unexpected_keys]
    model.tie_weights()
    return model.eval(), problems


def build_probe(out_dir: Path) -> tuple[str, dict[str, torch.Tensor], list[str]]:
    """Make probe inputs with the exported processor: video+image+text, else image+text, else text."""
    from transformers import AutoProcessor, AutoTokenizer

    generator = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (4, 3, 56, 56), generator=generator, dtype=torch.uint8)
    image = torch.randint(0, 256, (3, 56, 56), generator=generator, dtype=torch.uint8)
    notes: list[str] = []
    try:
        processor = AutoProcessor.from_pretrained(out_dir)
    except Exception as exc:  # reported, then fall back to the tokenizer
        notes.append(f"AutoProcessor failed: {exc}")
        processor = None
    for name, videos, images in (("video+image+text", [video], [image]), ("image+text", None, [image])):
        if processor is None:
            break
        content = [{"type": "video"}] * bool(videos) + [{"type": "image"}] * bool(images)
        messages = [{"role": "user", "content": [*content, {"type": "text", "text": PROBE_TEXT}]}]
        try:
            text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = processor(text=[text], videos=videos, images=images, return_tensors="pt")
            return name, dict(inputs), notes
        except Exception as exc:  # try a simpler probe, but say why
            notes.append(f"{name} probe failed: {exc}")
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    return "text", dict(tokenizer([PROBE_TEXT], return_tensors="pt")), notes


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    if not a.is_floating_point():
        return 0.0 if torch.equal(a, b) else float("inf")
    return 0.0 if a.numel() == 0 else (a.double() - b.double()).abs().max().item()


def verify_export(out_dir: str | Path, layout: CheckpointLayout, atol: float = 0.0,
                  read_digests: Mapping[str, str] | None = None) -> VerifyReport:
    """Reload ``out_dir`` and compare its weights and probe logits with the checkpoint's own weights
    (and, with ``read_digests``, the checkpoint files with the checksums of the bytes the export read)."""
    out_dir = Path(out_dir)
    from transformers import AutoConfig

    model_class = _auto_model_class(AutoConfig.from_pretrained(out_dir))
    merged, info = model_class.from_pretrained(out_dir, dtype=torch.float32, output_loading_info=True)
    merged.eval()
    reference, problems = build_reference(layout, out_dir, read_digests)
    problems += [f"export lacks {k}" for k in info.get("missing_keys", ())]
    problems += [f"export has unexpected {k}" for k in info.get("unexpected_keys", ())]
    problems += [
        f"export has mis-shaped {k[0] if isinstance(k, tuple) else k}" for k in info.get("mismatched_keys", ())
    ]
    _round_to_stored(reference, stored_dtypes(out_dir))

    probe, inputs, notes = build_probe(out_dir)
    report = VerifyReport(probe=probe, atol=atol, problems=problems, probe_notes=notes)
    merged_sd, reference_sd = merged.state_dict(), reference.state_dict()
    if set(merged_sd) != set(reference_sd):
        report.problems.append(f"state dict keys differ: {sorted(set(merged_sd) ^ set(reference_sd))[:5]}")
    common = sorted(set(merged_sd) & set(reference_sd))
    report.n_tensors = len(common)
    report.max_abs_weight_diff = max((_max_abs_diff(merged_sd[k], reference_sd[k]) for k in common), default=0.0)
    with torch.no_grad():
        logits_merged = merged(**inputs).logits
        logits_reference = reference(**inputs).logits
    report.max_abs_logit_diff = _max_abs_diff(logits_merged, logits_reference)
    return report
