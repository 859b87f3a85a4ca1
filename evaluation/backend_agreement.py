"""CLI: do the vLLM and transformers backends decode the same greedy tokens for the same prompts?

    python -m evaluation.backend_agreement --model HF_DIR --data GT.json [--data-root DIR] [--limit N] \
        [--video-spec FILE] [--max-new-tokens 32] [--tolerance 0.02] [--engine-arg KEY=VALUE ...] [--out R.json]

Both backends answer every record greedily (evaluation.infer's request building and backends). Two
answers agree when their token ids are equal. Where they differ, the transformers model's top-2 logit
margin at the first differing position says why: below `--tolerance` (nats) the two engines stood at a
near-tie, where float rounding order legitimately picks either token; above it, the engines disagree.
Prints and writes `{"records", "equal", "near_ties", "disagree", "details"}`; exit 1 when any disagree.
Token ids, not text, are compared: stray byte tokens can render differently.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from data_preprocess.video_spec import VideoSpec
from evaluation.backends import BackendConfig, BackendError, load_backend
from evaluation.infer import parse_engine_args
from evaluation.infer_requests import Request, RequestBuilder, read_records, validate
from reward_fns.atomic_io import write_json_atomic
from reward_fns.reference import RecordError

DEFAULT_TOLERANCE = 0.02


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first position where the two id lists differ (None when equal)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def top2_margins(hf: Any, request: Request, answer: Sequence[int]) -> list[float]:
    """The transformers model's top-1 minus top-2 logit at each answer position (teacher-forced)."""
    torch = hf._torch
    inputs = hf.prepare_inputs([request])
    prompt_len = inputs["input_ids"].shape[1]
    extra = torch.tensor([list(answer)], dtype=inputs["input_ids"].dtype, device=hf.device)
    per_token = [key for key, value in inputs.items()
                 if key != "input_ids" and hasattr(value, "shape") and tuple(value.shape) == (1, prompt_len)]
    for key in per_token:  # attention mask 1, token types (e.g. mm_token_type_ids) 0: the answer is text
        fill = torch.ones_like if key == "attention_mask" else torch.zeros_like
        inputs[key] = torch.cat([inputs[key], fill(extra, dtype=inputs[key].dtype)], dim=1)
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
    with torch.inference_mode():
        logits = hf.model(**inputs).logits[0, prompt_len - 1: prompt_len - 1 + len(answer)].float()
    top = logits.topk(2, dim=-1).values
    return (top[:, 0] - top[:, 1]).tolist()


def compare(requests: Sequence[Request], hf: Any, vllm: Any, tolerance: float) -> dict[str, Any]:
    """Greedy ids of both backends per request, classified as equal / near-tie / disagreement."""
    hf_ids = [rows[0] for rows in hf.generate_ids(requests)]
    vllm_ids = [rows[0] for rows in vllm.generate_ids(requests)]
    details, counts = [], {"equal": 0, "near_ties": 0, "disagree": 0}
    for request, a, b in zip(requests, hf_ids, vllm_ids, strict=True):
        at = first_difference(a, b)
        if at is None:
            counts["equal"] += 1
            continue
        margin = top2_margins(hf, request, a)[at] if at < len(a) else float("inf")
        kind = "near_ties" if margin < tolerance else "disagree"
        counts[kind] += 1
        details.append({"index": request.index, "id": request.id, "position": at, "hf_top2_margin": margin,
                        "kind": kind, "transformers": a, "vllm": b})
    return {"records": len(requests), **counts, "tolerance": tolerance, "details": details}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.backend_agreement", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="MedVidBench JSON")
    p.add_argument("--data-root", help="folder the frame paths are relative to (default: the --data file's)")
    p.add_argument("--limit", type=int)
    p.add_argument("--video-spec")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="near-tie margin in nats")
    p.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE", help="for vllm.LLM")
    p.add_argument("--rc-cache", help="folder for region-caption frames with the box drawn (default: a temp folder)")
    p.add_argument("--out", help="write the report here (JSON)")
    args = p.parse_args(argv)
    spec = VideoSpec.load(args.video_spec) if args.video_spec else VideoSpec()
    try:
        records = read_records(args.data)
        checked = validate(records, os.fspath(args.data), args.limit)
        root = args.data_root or os.path.dirname(os.path.abspath(args.data))
        with tempfile.TemporaryDirectory() as tmp:
            builder = RequestBuilder(records, os.fspath(args.data), root, spec, args.rc_cache or tmp)
            requests = builder.build_all(checked)
            common = {"model": args.model, "spec": spec, "max_new_tokens": args.max_new_tokens}
            hf = load_backend("transformers", BackendConfig(**common))
            vllm = load_backend("vllm", BackendConfig(**common, engine_args=parse_engine_args(args.engine_arg)))
            report = compare(requests, hf, vllm, args.tolerance)
    except (RecordError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_json_atomic(args.out, report)
    print(f"{report['records']} records: greedy ids equal {report['equal']}, near-ties (top-2 margin < "
          f"{args.tolerance} nats) {report['near_ties']}, disagreements {report['disagree']}")
    return 1 if report["disagree"] else 0


if __name__ == "__main__":
    sys.exit(main())
