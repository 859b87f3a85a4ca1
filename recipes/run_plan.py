"""The run plan the RL dry run prints: steps, judge calls and cost, checkpoint disk. All estimates.

- steps per epoch = train rows // data.train_batch_size (verl drops the last partial batch); total =
  trainer.total_training_steps, else steps per epoch x trainer.total_epochs;
- judge calls per step = train_batch_size x rollout.n x (judge calls per sample), the latter the mean
  over the data's task mix of the unique caption pairs a reference-quality answer makes (one for
  VS/RC, one per event for DVC), measured on a seeded sample of rows per (data_source, task); an
  upper bound (no cache hits);
- USD per call from the configured prices (`judge.prompt_price_per_mtok` / `completion_...`): the
  judge prompt built as the judge builds it, about CHARS_PER_TOKEN characters per token, plus
  `judge.max_tokens` completion tokens (an upper bound);
- validation: val rows x val_kwargs.n judge-weighted the same way, `val_before_train` + one run per
  `test_freq` steps; USD per epoch = an epoch's steps + the validation runs inside it, per run = all;
- checkpoint = parameters x 12 bytes (fp32 weights + Adam's two moments; + 2 with `hf_model`);
  parameters from the model folder's safetensors (bytes / dtype size) or estimated from config.json;
  disk at the keep limit = checkpoint x min(checkpoints written, max_actor_ckpt_to_keep).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipes.check_report import select

CHARS_PER_TOKEN = 4
BYTES_PER_PARAM = 12  # fp32 weights (4) + Adam m and v (8)
HF_BYTES_PER_PARAM = 2  # a bf16 HF copy when save_contents has hf_model
PER_PAIR = 16  # rows per (data_source, task) measured for the judge load
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class JudgeLoad:
    """Judge calls per answer of each judged task, the data's task shares, tokens per call (estimates)."""

    calls_per_task: dict[str, float]
    task_share: dict[str, float]
    prompt_tokens: float
    completion_tokens: int
    usd_per_call: float

    @property
    def calls_per_sample(self) -> float:
        """Judge calls per answer over the data's task mix."""
        return sum(self.task_share.get(task, 0.0) * calls for task, calls in self.calls_per_task.items())


def judge_load(parquet: str, settings: Any, per_pair: int = PER_PAIR) -> JudgeLoad:
    """Measure the judge load of `parquet` under `settings` (a MedGRPORewardConfig with the judge on)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from recipes.pair_sample import read_pairs, sample_rows
    from reward_fns.judge.prompt import build_messages
    from reward_fns.reference import Reference
    from reward_fns.registry import caption_task_names, get_task

    pairs, index = read_pairs(parquet)
    judged = {t for t in caption_task_names() if settings.tasks.get(t)}
    share = Counter(task for _, task in pairs)
    rows = [r for r in sample_rows(pairs, index, 0, per_pair=per_pair) if pairs[r][1] in judged]
    table = ds.dataset(parquet, format="parquet").take(pa.array(rows, pa.int64()), columns=["reward_model"])
    calls: dict[str, list[int]] = {}
    chars: list[int] = []
    judge = settings.judge
    for row, value in zip(rows, table.column("reward_model").to_pylist(), strict=True):
        ref = Reference.from_json(value["ground_truth"])
        task = get_task(pairs[row][1])
        unique = {(p.reference, p.prediction) for p in task.caption_pairs(task.parse(ref.answer), ref)}
        calls.setdefault(task.name, []).append(len(unique))
        for reference, prediction in unique:
            messages = build_messages(reference, prediction, judge.max_prediction_chars)
            chars.append(sum(len(m["content"]) for m in messages))
    prompt = sum(chars) / len(chars) / CHARS_PER_TOKEN if chars else 0.0
    return JudgeLoad({t: sum(v) / len(v) for t, v in calls.items()}, {t: k / len(pairs) for t, k in share.items()},
                     prompt, judge.max_tokens, judge.prices.cost(round(prompt), judge.max_tokens))


def estimate_params(config: dict[str, Any]) -> int | None:
    """Parameters of a (Qwen-VL style) HF config: decoder + embeddings + vision tower (approximate)."""
    text = {**config, **(config.get("text_config") or {})}
    h, layers, inter, vocab = (text.get(k) for k in ("hidden_size", "num_hidden_layers", "intermediate_size",
                                                      "vocab_size"))
    if not all(isinstance(v, int) and v > 0 for v in (h, layers, inter, vocab)):
        return None
    heads = text.get("num_attention_heads") or 1
    kv = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or h // heads
    attention = 2 * h * heads * head_dim + 2 * h * kv * head_dim  # q, o, k, v
    total = layers * (attention + 3 * h * inter) + vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    vision = config.get("vision_config") or {}
    vh, depth = vision.get("hidden_size") or vision.get("embed_dim"), vision.get("depth")
    if isinstance(vh, int) and isinstance(depth, int):
        total += depth * (4 * vh * vh + 3 * vh * (vision.get("intermediate_size") or 4 * vh))
    return total


def model_params(path: Any) -> tuple[int | None, str]:
    """(parameters, how they were found) of a local HF model folder."""
    folder = Path(str(path)) if path else None
    if folder is None or not (folder / "config.json").is_file():
        return None, "model folder not readable"
    config = json.loads((folder / "config.json").read_text())
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    dtype = str(config.get("torch_dtype") or config.get("dtype") or (config.get("text_config") or {}).get("dtype"))
    if size and dtype in DTYPE_BYTES:
        return size // DTYPE_BYTES[dtype], f"safetensors ({dtype})"
    params = estimate_params(config)
    return params, "estimated from config.json"


@dataclass(frozen=True)
class RunPlan:
    train_rows: int
    batch: int
    n: int
    steps_per_epoch: int
    total_steps: int
    judge: JudgeLoad | None
    val_rows: int
    val_n: int
    val_calls_per_sample: float
    validations: int
    test_freq: int
    params: int | None
    params_how: str
    ckpt_bytes: int | None
    checkpoints: int
    kept: int | None

    @property
    def judge_calls_per_step(self) -> float:
        return self.batch * self.n * self.judge.calls_per_sample if self.judge else 0.0

    @property
    def usd_per_step(self) -> float:
        return self.judge_calls_per_step * self.judge.usd_per_call if self.judge else 0.0

    @property
    def judge_calls_per_validation(self) -> float:
        return self.val_rows * self.val_n * self.val_calls_per_sample

    @property
    def usd_per_validation(self) -> float:
        return self.judge_calls_per_validation * self.judge.usd_per_call if self.judge else 0.0

    @property
    def usd_per_epoch(self) -> float:
        """One epoch's steps and the validation runs that fall in it (every test_freq steps)."""
        runs = self.steps_per_epoch // self.test_freq if self.test_freq > 0 and self.validations else 0
        return self.steps_per_epoch * self.usd_per_step + runs * self.usd_per_validation

    @property
    def usd_per_run(self) -> float:
        return self.total_steps * self.usd_per_step + self.validations * self.usd_per_validation

    @property
    def disk_bytes(self) -> int | None:
        if self.ckpt_bytes is None:
            return None
        return self.ckpt_bytes * (self.checkpoints if self.kept is None else min(self.kept, self.checkpoints))

    def lines(self) -> list[str]:
        out = [f"run plan (estimates): {self.train_rows} train prompts / batch {self.batch} = {self.steps_per_epoch} "
               f"steps per epoch, {self.total_steps} steps in all, {self.batch * self.n} answers per step"]
        if self.judge:
            out.append(f"run plan (estimates): judge {self.judge_calls_per_step:.0f} calls per step "
                       f"(~{self.judge.prompt_tokens:.0f} prompt + <= {self.judge.completion_tokens} completion tokens "
                       f"each, no cache hits) = ${self.usd_per_step:.2f} per step; {self.validations} validation "
                       f"run(s) of {self.val_rows} prompts, {self.judge_calls_per_validation:.0f} calls each; "
                       f"${self.usd_per_epoch:,.0f} per epoch, ${self.usd_per_run:,.0f} for the run")
        else:
            out.append("run plan (estimates): no judge calls (judge off or no caption task rewarded)")
        if self.ckpt_bytes is None:
            out.append(f"run plan (estimates): checkpoint size unknown ({self.params_how}); {self.checkpoints} "
                       f"checkpoint(s), keep limit {self.kept}")
        else:
            keep = "no keep limit (trainer.max_actor_ckpt_to_keep)" if self.kept is None else f"keep {self.kept}"
            out.append(f"run plan (estimates): checkpoint {self.ckpt_bytes / 1e9:.0f} GB ({self.params / 1e9:.2f}B "
                       f"params, {self.params_how}) x {self.checkpoints} saved, {keep}: "
                       f"{self.disk_bytes / 1e9:,.0f} GB of disk")
        return out


def _rows(path: str | None) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows if path else 0


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def run_plan(cfg: Any, train: str, val: str | None, settings: Any) -> RunPlan:
    """The plan of a composed GRPO config over its train (and val) parquet and reward settings."""
    from reward_fns.judge.health import judge_used

    batch, n = _int(select(cfg, "data.train_batch_size"), 1), _int(select(cfg, "actor_rollout_ref.rollout.n"), 1)
    rows = _rows(train)
    per_epoch = rows // batch if batch > 0 else 0
    total = _int(select(cfg, "trainer.total_training_steps"), per_epoch * _int(select(cfg, "trainer.total_epochs"), 1))
    load = judge_load(train, settings) if settings is not None and judge_used(settings) else None
    val_load = judge_load(val, settings).calls_per_sample if load and val else 0.0
    test_freq = _int(select(cfg, "trainer.test_freq"))
    validations = int(bool(select(cfg, "trainer.val_before_train"))) + (total // test_freq if test_freq > 0 else 0)
    params, how = model_params(select(cfg, "actor_rollout_ref.model.path"))
    contents = select(cfg, "actor_rollout_ref.actor.checkpoint.save_contents") or []
    per_param = BYTES_PER_PARAM + (HF_BYTES_PER_PARAM if "hf_model" in contents else 0)
    save_freq = _int(select(cfg, "trainer.save_freq"))
    keep = select(cfg, "trainer.max_actor_ckpt_to_keep")
    return RunPlan(rows, batch, n, per_epoch, total, load, _rows(val) if val else 0,
                   _int(select(cfg, "actor_rollout_ref.rollout.val_kwargs.n"), 1), val_load,
                   validations if val else 0, test_freq, params, how, params * per_param if params else None,
                   total // save_freq if save_freq > 0 else 0, keep if isinstance(keep, int) else None)
