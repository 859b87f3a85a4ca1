"""Weight sync into a running vLLM-CPU engine, as verl's rollout does it (run by tests/test_vllm_cpu.py).

    python -m tests.vllm_reload_check MODEL_DIR OUT.json

In one process (vLLM in-process): an engine built without evaluation/backends/vllm_fixes.py
(install_cpu_weights) must fail to load new weights (vLLM-CPU emptied its linear weights; if this ever
passes, the fix may be unnecessary); then, with the fix installed, a fresh engine must give the
transformers model's greedy ids before and after both receive the same perturbed weights (vLLM's
`load_weights` + `process_weights_after_loading`, the two calls verl's weight sync makes), and the ids
must change with the weights.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from typing import Any

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
PROMPT = "the surgeon grasper knife 0.0-12.0 seconds: Respect for tissue"
NEW_TOKENS = 16


def perturbed_weights(model: Any) -> list[tuple[str, Any]]:
    import torch

    generator = torch.Generator().manual_seed(1)
    return [(name, tensor + 0.5 * torch.randn(tensor.shape, generator=generator))
            for name, tensor in model.state_dict().items() if tensor.is_floating_point()]


def sync_weights(llm: Any, weights: list[tuple[str, Any]]) -> None:
    def load(worker: Any) -> None:
        from vllm.model_executor.model_loader.utils import process_weights_after_loading

        runner = worker.model_runner
        runner.model.load_weights(weights)
        process_weights_after_loading(runner.model, runner.vllm_config.model_config, runner.device)

    llm.collective_rpc(load)


def main(model_dir: str, out: str) -> int:
    import torch
    import vllm
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    def engine() -> Any:
        return vllm.LLM(model=model_dir, enforce_eager=True, dtype="float32", max_model_len=512, seed=0,
                        enable_chunked_prefill=False)

    ids = AutoTokenizer.from_pretrained(model_dir)(PROMPT)["input_ids"]
    hf = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    weights = perturbed_weights(hf)

    def greedy_vllm(llm: Any) -> list[int]:
        params = vllm.SamplingParams(temperature=0, max_tokens=NEW_TOKENS, ignore_eos=True)
        return list(llm.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)[0].outputs[0].token_ids)

    def greedy_hf() -> list[int]:
        with torch.inference_mode():
            out_ids = hf.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                  do_sample=False)
        return out_ids[0, len(ids):].tolist()

    report: dict[str, Any] = {}
    plain = engine()
    try:
        sync_weights(plain, weights)
        report["without_plugin"] = "loaded"
    except Exception as exc:  # vLLM raises its own assertion/RuntimeError types here
        report["without_plugin"] = f"failed: {str(exc).splitlines()[0][:200]}"
    del plain
    gc.collect()

    from evaluation.backends import vllm_fixes

    report["plugin_installed"] = vllm_fixes.install_cpu_weights()
    llm = engine()
    report["before"] = {"vllm": greedy_vllm(llm), "hf": greedy_hf()}
    sync_weights(llm, weights)
    hf.load_state_dict(dict(weights), strict=False)
    report["after"] = {"vllm": greedy_vllm(llm), "hf": greedy_hf()}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
