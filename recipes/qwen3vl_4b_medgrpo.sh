#!/usr/bin/env bash
# MedGRPO for Qwen3-VL-4B: FSDP2 actor/ref, vLLM rollout (TP 1: 4B fits one GPU), 1+ nodes x 8 GPUs.
# Config: recipes/config/medgrpo_grpo.yaml with medgrpo_model=qwen3_vl (16-pixel patches).
#   MODEL_PATH=<SFT model, HF folder> bash recipes/qwen3vl_4b_medgrpo.sh [Hydra overrides]
# Needs $REWARD_STATS (recipes/calibrate_reward_stats.sh) and a judge ($JUDGE_*). DRY_RUN=1: check only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:?set MODEL_PATH to the SFT model in HF format, e.g. $OUTPUT_DIR/qwen3vl_4b_sft/global_step_N/huggingface}"
: "${EXPERIMENT:=qwen3vl_4b_medgrpo}"

medgrpo_run ppo medgrpo_grpo medgrpo_engine=fsdp medgrpo_model=qwen3_vl \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 "$@"
