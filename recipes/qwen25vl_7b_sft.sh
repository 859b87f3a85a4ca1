#!/usr/bin/env bash
# SFT of Qwen2.5-VL-7B-Instruct on MedVidBench (FSDP2; 1 node: torchrun, NNODES > 1: Ray), the
# model MedGRPO starts from. Config: recipes/config/medgrpo_sft.yaml.
#   bash recipes/qwen25vl_7b_sft.sh [Hydra overrides]        DRY_RUN=1: check the config only
# Env: see recipes/common.sh (DATA_DIR, OUTPUT_DIR, NNODES, GPUS_PER_NODE, ...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:=Qwen/Qwen2.5-VL-7B-Instruct}"
: "${EXPERIMENT:=qwen25vl_7b_sft}"

medgrpo_run sft medgrpo_sft medgrpo_model=qwen2_5_vl "$@"
