#!/usr/bin/env bash
# MedGRPO for Qwen2.5-VL-7B on Megatron-Core (TP 2, mbridge: HF weights in, HF weights in every
# checkpoint), vLLM rollout, 1+ nodes x 8 GPUs. Config: medgrpo_grpo.yaml + medgrpo_engine/megatron.yaml.
#   MODEL_PATH=<SFT model, HF folder> bash recipes/qwen25vl_7b_medgrpo_megatron.sh [Hydra overrides]
# Needs $REWARD_STATS and a judge ($JUDGE_*), as the FSDP recipe. DRY_RUN=1: check only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:?set MODEL_PATH to the SFT model in HF format, e.g. $OUTPUT_DIR/qwen25vl_7b_sft/global_step_N/huggingface}"
: "${EXPERIMENT:=qwen25vl_7b_medgrpo_megatron}"

medgrpo_run ppo medgrpo_grpo medgrpo_engine=megatron medgrpo_model=qwen2_5_vl "$@"
