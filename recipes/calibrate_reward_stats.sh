#!/usr/bin/env bash
# Logistic-normalization stats for MedGRPO: sample answers of the SFT model on the RL train split,
# score them with the training reward (raw), write p25/p50/p75 per (data_source, task) to $REWARD_STATS.
#   MODEL_PATH=<SFT model, HF folder> bash recipes/calibrate_reward_stats.sh [Hydra overrides of medgrpo_grpo]
# 1. Compose and check medgrpo_grpo as the RL launcher does (normalization off: its stats are the
#    output) and write its medgrpo.reward block to $CALIB_DIR/reward.yaml (same judge, cache, tasks).
# 2. $ROLLOUTS ({"index": extra_info.index, "response": str} per line): `python -m evaluation.infer
#    --backend vllm`, sampling like the RL rollout (CALIB_N answers per prompt, temperature 1.0,
#    512 new tokens; resumes an interrupted run); skipped when the caller sets $ROLLOUTS to an existing file.
# 3. python -m reward_fns.calibrate -> $REWARD_STATS and a PNG of the distributions beside it.
# Env (also recipes/common.sh): CALIB_DIR, ROLLOUTS, CALIB_N (4), INFER_ARGS (extra infer flags).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:?set MODEL_PATH to the SFT model in HF format}"
: "${EXPERIMENT:=calibrate_reward_stats}"
CALIB_DIR="$(_medgrpo_abs "${CALIB_DIR:-$OUTPUT_DIR/reward_calibration}")"
ROLLOUTS_GIVEN="${ROLLOUTS:+1}"  # rollouts made elsewhere: use them as they are
ROLLOUTS="$(_medgrpo_abs "${ROLLOUTS:-$CALIB_DIR/rollouts.jsonl}")"
CALIB_N="${CALIB_N:-4}"
read -r -a extra <<< "${INFER_ARGS:-}"

medgrpo_args ppo medgrpo_grpo medgrpo.reward.normalization.enabled=false "$@"
infer=("$PYTHON" -m evaluation.infer --backend vllm --model "$MODEL_PATH" --data "$DATA_DIR/rl_train.parquet"
       --out "$ROLLOUTS" --n "$CALIB_N" --temperature 1.0 --max-new-tokens 512 "${extra[@]}")
calib=("$PYTHON" -m reward_fns.calibrate --data "$DATA_DIR/rl_train.parquet" --rollouts "$ROLLOUTS"
       --out "$REWARD_STATS" --plot "${REWARD_STATS%.json}.png" --config "$CALIB_DIR/reward.yaml")

case "$DRY_RUN" in
  1|true|yes|print)
    [[ "$DRY_RUN" == print ]] || "$PYTHON" -m recipes.dry_run --kind ppo "${MEDGRPO_ARGS[@]}"
    if [[ -n "$ROLLOUTS_GIVEN" && -s "$ROLLOUTS" ]]; then echo "# rollouts given: $ROLLOUTS (step 2 skipped)"
    else printf '%q ' "${infer[@]}"; echo; fi
    printf '%q ' "${calib[@]}"; echo
    exit 0 ;;
  0|false|no) ;;
  *) echo "error: DRY_RUN must be 0, 1 or print (got '$DRY_RUN')" >&2; exit 2 ;;
esac

mkdir -p "$CALIB_DIR"
"$PYTHON" -m recipes.dry_run --kind ppo --quiet --emit-reward-config "$CALIB_DIR/reward.yaml" "${MEDGRPO_ARGS[@]}"
# resumable: a finished rollout file costs nothing, an interrupted one is completed
[[ -n "$ROLLOUTS_GIVEN" && -s "$ROLLOUTS" ]] || "${infer[@]}"
"${calib[@]}"
