#!/usr/bin/env bash
# MedGRPO (GRPO + normalized MedGRPO rewards) for Qwen2.5-VL-7B: FSDP2 actor/ref, vLLM rollout
# (TP 2), 1+ nodes x 8 GPUs. Config: recipes/config/medgrpo_grpo.yaml.
#   MODEL_PATH=<SFT model, HF folder> bash recipes/qwen25vl_7b_medgrpo.sh [Hydra overrides]
# Needs $REWARD_STATS (recipes/calibrate_reward_stats.sh) and a judge ($JUDGE_*). DRY_RUN=1: check only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:?set MODEL_PATH to the SFT model in HF format, e.g. $OUTPUT_DIR/qwen25vl_7b_sft/global_step_N/huggingface}"
: "${EXPERIMENT:=qwen25vl_7b_medgrpo}"

medgrpo_run ppo medgrpo_grpo medgrpo_engine=fsdp medgrpo_model=qwen2_5_vl "$@"
