#!/usr/bin/env bash
# SFT of Qwen3-VL-4B-Instruct on MedVidBench (FSDP2; 1 node: torchrun, NNODES > 1: Ray).
# Config: recipes/config/medgrpo_sft.yaml with medgrpo_model=qwen3_vl (16-pixel patches).
#   bash recipes/qwen3vl_4b_sft.sh [Hydra overrides]         DRY_RUN=1: check the config only
# Env: see recipes/common.sh (DATA_DIR, OUTPUT_DIR, NNODES, GPUS_PER_NODE, ...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:=Qwen/Qwen3-VL-4B-Instruct}"
: "${EXPERIMENT:=qwen3vl_4b_sft}"

medgrpo_run sft medgrpo_sft medgrpo_model=qwen3_vl "$@"
