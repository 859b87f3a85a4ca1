"""The run plan of the RL dry run (recipes/run_plan.py): steps, judge calls and cost, checkpoint disk.

The data are written here with a known task mix (3200 train rows: 40% video summaries, one judge call
each; the rest CVS, none), and the model folder holds Qwen2.5-VL-7B's config.json (no weights), so
every figure can be worked out by hand.
"""

from __future__ import annotations

import json

import pytest

# Qwen2.5-VL-7B-Instruct's config.json (the fields the estimate reads)
QWEN25VL_7B = {"model_type": "qwen2_5_vl", "hidden_size": 3584, "num_hidden_layers": 28, "intermediate_size": 18944,
               "vocab_size": 152064, "num_attention_heads": 28, "num_key_value_heads": 4,
               "tie_word_embeddings": False, "torch_dtype": "bfloat16",
               "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                                 "patch_size": 14}}
SUMMARY = "The surgeon dissects the hepatocystic triangle, clips the cystic duct and artery, and removes the " \
          "gallbladder from the liver bed."


def _rows(n: int, vs_share: float) -> list[dict]:
    rows = []
    for i in range(n):
        vs = i < n * vs_share
        qa_type, task, source = ("video_summary_gpt", "VS", "AVOS") if vs else ("cvs_assessment", "CVS", "Cholec80-CVS")
        answer = SUMMARY if vs else "Two structures: 0, Cystic plate: 1, Hepatocystic triangle: 2"
        truth = json.dumps({"qa_type": qa_type, "data_source": source, "answer": answer, "fps": 1.0})
        rows.append({"data_source": source, "ability": task, "prompt": [{"role": "user", "content": "<video>\nQ"}],
                     "videos": [{"video": ["/f/0.jpg"], "fps": 1.0}],
                     "reward_model": {"style": "rule", "ground_truth": truth},
                     "extra_info": {"index": i, "id": f"v{i}", "qa_type": qa_type, "data_source": source,
                                    "task": task, "fps": 1.0, "split": "train"}})
    return rows


@pytest.fixture(scope="module")
def plan_inputs(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("run_plan")
    pq.write_table(pa.Table.from_pylist(_rows(3200, 0.4)), root / "rl_train.parquet")
    pq.write_table(pa.Table.from_pylist(_rows(500, 0.2)), root / "rl_val.parquet")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text(json.dumps(QWEN25VL_7B))
    return root


def _plan(root, *overrides):
    from omegaconf import OmegaConf

    from recipes import dry_run
    from recipes.run_plan import run_plan
    from reward_fns.config import MedGRPORewardConfig

    cfg = dry_run.compose("medgrpo_grpo", ["medgrpo.reward.normalization.stats_path=/nonexistent.json", *overrides],
                          values={"actor_rollout_ref.model.path": str(root / "model")})
    OmegaConf.resolve(cfg)
    settings = MedGRPORewardConfig.from_trainer_config(cfg)
    return run_plan(cfg, str(root / "rl_train.parquet"), str(root / "rl_val.parquet"), settings), settings


def test_run_plan_figures(plan_inputs):
    from reward_fns.judge.prompt import build_messages

    plan, _ = _plan(plan_inputs)
    # batch 32, rollout.n 4, one epoch, validation before training and every 50 steps, save every 100, keep 2
    assert plan.steps_per_epoch == 3200 // 32 == 100 and plan.total_steps == 100
    assert plan.judge.calls_per_task == {"VS": 1.0} and plan.judge.task_share["VS"] == pytest.approx(0.4)
    assert plan.judge_calls_per_step == pytest.approx(32 * 4 * 0.4)
    chars = sum(len(m["content"]) for m in build_messages(SUMMARY, SUMMARY, 2000))
    assert plan.judge.prompt_tokens == pytest.approx(chars / 4)
    usd_per_call = (round(chars / 4) * 2.0 + 128 * 8.0) / 1e6  # GPT-4.1 prices of medgrpo_judge/openai.yaml
    assert plan.judge.usd_per_call == pytest.approx(usd_per_call)
    assert plan.usd_per_step == pytest.approx(51.2 * usd_per_call)
    assert plan.validations == 1 + 100 // 50 and plan.judge_calls_per_validation == pytest.approx(500 * 0.2)
    assert plan.usd_per_run == pytest.approx(100 * 51.2 * usd_per_call + 3 * 100 * usd_per_call)
    assert plan.usd_per_epoch == pytest.approx(100 * 51.2 * usd_per_call + 2 * 100 * usd_per_call)  # 2 runs in it
    # Qwen2.5-VL-7B: about 8.3B parameters x 12 bytes (fp32 weights + Adam) = about 100 GB per checkpoint
    assert plan.params == pytest.approx(8.29e9, rel=0.01) and plan.params_how == "estimated from config.json"
    assert plan.ckpt_bytes == plan.params * 12 and plan.ckpt_bytes == pytest.approx(99.5e9, rel=0.01)
    assert plan.checkpoints == 1 and plan.kept == 2 and plan.disk_bytes == plan.ckpt_bytes
    text = "\n".join(plan.lines())
    assert "run plan (estimates): 3200 train prompts / batch 32 = 100 steps per epoch" in text
    assert "judge 51 calls per step" in text and "checkpoint 99 GB (8.25B params" in text


def test_run_plan_disk_without_keep_limit_and_with_large_data(plan_inputs):
    plan, _ = _plan(plan_inputs, "trainer.max_actor_ckpt_to_keep=null", "trainer.total_training_steps=1000",
                    "data.train_batch_size=16")
    assert plan.steps_per_epoch == 200 and plan.total_steps == 1000
    assert plan.checkpoints == 10 and plan.kept is None and plan.disk_bytes == 10 * plan.ckpt_bytes  # ~1 TB
    assert "no keep limit" in "\n".join(plan.lines())


def test_run_plan_without_judge(plan_inputs):
    plan, _ = _plan(plan_inputs, "medgrpo.reward.judge.enabled=false")
    assert plan.judge is None and plan.usd_per_step == 0 and plan.judge_calls_per_step == 0
    assert "no judge calls" in "\n".join(plan.lines())


def test_params_from_safetensors(tmp_path):
    from recipes.run_plan import model_params

    (tmp_path / "config.json").write_text(json.dumps({**QWEN25VL_7B, "torch_dtype": "bfloat16"}))
    (tmp_path / "model-00001-of-00001.safetensors").write_bytes(b"\0" * 2000)
    assert model_params(tmp_path) == (1000, "safetensors (bfloat16)")
