#!/usr/bin/env bash
# Logistic-normalization stats for MedGRPO: sample answers of the SFT model on a seeded sample of the RL
# train split, score them with the training reward (raw), write p25/p50/p75 per (data_source, task) to
# $REWARD_STATS.
#   MODEL_PATH=<SFT model, HF folder> bash recipes/calibrate_reward_stats.sh [Hydra overrides of medgrpo_grpo]
# 1. Compose and check medgrpo_grpo as the RL launcher does (normalization off: its stats are the
#    output; medgrpo_model from the model's config.json unless an override names one) and write its
#    medgrpo.reward block and medgrpo.video to $CALIB_DIR/reward.yaml and video_spec.yaml (same judge,
#    cache, tasks, VideoSpec: the patch size of the model's family).
# 2. `python -m recipes.calibration prepare`: CALIB_PER_PAIR prompts of every (data_source, task) of
#    rl_train.parquet (seeded by CALIB_SEED) and the vLLM plan of the node, printed as
#    `tensor_parallel_size=T replicas=R`: T divides the model's attention, KV and vision heads, R = GPUs / T
#    (GPUS_PER_NODE, when the caller sets it, overrides the GPUs torch sees; CALIB_TP forces T).
# 3. Rollouts ({"index": extra_info.index, "response": str} per line): R `python -m evaluation.infer
#    --backend vllm` processes, one per replica on its own T GPUs (CUDA_VISIBLE_DEVICES), sampling like
#    the RL rollout (CALIB_N answers per prompt, temperature 1.0, 512 new tokens; each resumes an
#    interrupted run); skipped when the caller sets $ROLLOUTS to an existing file.
# 4. python -m reward_fns.calibrate -> $REWARD_STATS and a PNG of the distributions beside it.
# Env (also recipes/common.sh): CALIB_DIR, ROLLOUTS, CALIB_N (4), CALIB_PER_PAIR (64; 0: every prompt),
#   CALIB_SEED (0), CALIB_TP, INFER_ARGS (extra evaluation.infer flags, passed last: e.g. --backend transformers).
# DRY_RUN=1: step 1 and the plan of step 2 (nothing sampled), then the commands; print: the commands only.
# Changing CALIB_PER_PAIR, CALIB_SEED or the plan changes the prompt files: delete $CALIB_DIR/rollouts* then.
set -euo pipefail
GPUS_GIVEN="${GPUS_PER_NODE:-}"  # the caller's node size (common.sh defaults GPUS_PER_NODE to 8)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${MODEL_PATH:?set MODEL_PATH to the SFT model in HF format}"
: "${EXPERIMENT:=calibrate_reward_stats}"
CALIB_DIR="$(_medgrpo_abs "${CALIB_DIR:-$OUTPUT_DIR/reward_calibration}")"
ROLLOUTS_GIVEN="${ROLLOUTS:+1}"  # rollouts made elsewhere: use them as they are
ROLLOUTS="$(_medgrpo_abs "${ROLLOUTS:-$CALIB_DIR/rollouts.jsonl}")"
CALIB_N="${CALIB_N:-4}"
CALIB_PER_PAIR="${CALIB_PER_PAIR:-64}"
CALIB_SEED="${CALIB_SEED:-0}"
MEDGRPO_NO_VAL=1  # calibration does not validate: no validation sample (common.sh)
read -r -a extra <<< "${INFER_ARGS:-}"

family=""
if [[ "$DRY_RUN" != print && " $* " != *" medgrpo_model="* ]]; then
  family="$("$PYTHON" -m recipes.calibration family --model "$MODEL_PATH")"
fi
medgrpo_args ppo medgrpo_grpo medgrpo.reward.normalization.enabled=false ${family:+"medgrpo_model=$family"} "$@"
check=("$PYTHON" -m recipes.dry_run --kind ppo --emit-reward-config "$CALIB_DIR/reward.yaml"
       --emit-video-spec "$CALIB_DIR/video_spec.yaml" "${MEDGRPO_ARGS[@]}")
prepare=("$PYTHON" -m recipes.calibration prepare --model "$MODEL_PATH" --data "$RL_DATA_DIR/rl_train.parquet"
         --out-dir "$CALIB_DIR" --per-pair "$CALIB_PER_PAIR" --seed "$CALIB_SEED" --n "$CALIB_N"
         --reward-config "$CALIB_DIR/reward.yaml"
         ${GPUS_GIVEN:+--gpus "$GPUS_GIVEN"} ${CALIB_TP:+--tensor-parallel-size "$CALIB_TP"})
# infer_cmd PROMPTS OUT: the rollout command of one replica, in INFER
infer_cmd() {
  INFER=("$PYTHON" -m evaluation.infer --backend vllm --model "$MODEL_PATH" --data "$1" --out "$2" --n "$CALIB_N"
         --temperature 1.0 --max-new-tokens 512 --video-spec "$CALIB_DIR/video_spec.yaml" "${extra[@]}")
}
# shard_out I R: the rollout file of replica I of R
shard_out() { if (( $2 == 1 )); then printf '%s' "$ROLLOUTS"; else printf '%s' "${ROLLOUTS%.jsonl}.r$1.jsonl"; fi; }
calib_cmd() {  # calib_cmd DATA ROLLOUT_FILES...: the stats command, in CALIB
  local data="$1"; shift
  CALIB=("$PYTHON" -m reward_fns.calibrate --data "$data" --rollouts "$@" --out "$REWARD_STATS"
         --plot "${REWARD_STATS%.json}.png" --config "$CALIB_DIR/reward.yaml")
}
given() { [[ -n "$ROLLOUTS_GIVEN" && -s "$ROLLOUTS" ]]; }

case "$DRY_RUN" in
  1|true|yes|print)
    plan=()
    if [[ "$DRY_RUN" != print ]]; then
      mkdir -p "$CALIB_DIR"
      "${check[@]}"
      if ! given; then planned="$("${prepare[@]}" --dry-run)"; mapfile -t plan <<< "$planned"; fi
    fi
    if given; then
      echo "# rollouts given: $ROLLOUTS (steps 2-3 skipped)"
      calib_cmd "$RL_DATA_DIR/rl_train.parquet" "$ROLLOUTS"
    else
      [[ -n "${plan[0]:-}" ]] && echo "${plan[0]}"  # tensor_parallel_size=T replicas=R
      prompts=("${plan[@]:1}")
      (( ${#prompts[@]} )) || prompts=("$CALIB_DIR/prompts.parquet")
      printf '%q ' "${prepare[@]}"; echo
      outs=()
      for i in "${!prompts[@]}"; do
        outs+=("$(shard_out "$i" "${#prompts[@]}")")
        infer_cmd "${prompts[$i]}" "${outs[-1]}"
        (( ${#prompts[@]} == 1 )) || printf 'CUDA_VISIBLE_DEVICES=<replica %s> ' "$i"
        printf '%q ' "${INFER[@]}"; echo
      done
      calib_cmd "$CALIB_DIR/prompts.parquet" "${outs[@]}"
    fi
    printf '%q ' "${CALIB[@]}"; echo
    exit 0 ;;
  0|false|no) ;;
  *) echo "error: DRY_RUN must be 0, 1 or print (got '$DRY_RUN')" >&2; exit 2 ;;
esac

mkdir -p "$CALIB_DIR"
"${check[@]}" --quiet
if given; then
  calib_cmd "$RL_DATA_DIR/rl_train.parquet" "$ROLLOUTS"
  "${CALIB[@]}"
  exit 0
fi
planned="$("${prepare[@]}")"
mapfile -t plan <<< "$planned"
tp="${plan[0]#tensor_parallel_size=}"; tp="${tp%% *}"
prompts=("${plan[@]:1}")
replicas=${#prompts[@]}
echo "[calibrate] vLLM plan: ${plan[0]}" >&2
outs=()
if (( replicas == 1 )); then
  outs=("$ROLLOUTS")
  infer_cmd "${prompts[0]}" "$ROLLOUTS"
  "${INFER[@]}"  # resumable: a finished rollout file costs nothing, an interrupted one is completed
else
  IFS=, read -r -a devices <<< "${CUDA_VISIBLE_DEVICES:-}"
  (( ${#devices[@]} )) || mapfile -t devices < <(seq 0 $(( tp * replicas - 1 )))
  pids=()
  for (( i = 0; i < replicas; i++ )); do
    slice="$(IFS=,; printf '%s' "${devices[*]:i*tp:tp}")"
    outs+=("$(shard_out "$i" "$replicas")")
    infer_cmd "${prompts[$i]}" "${outs[-1]}"
    echo "[calibrate] replica $i on GPU(s) $slice: log $CALIB_DIR/infer.r$i.log" >&2
    CUDA_VISIBLE_DEVICES="$slice" "${INFER[@]}" > "$CALIB_DIR/infer.r$i.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      failed=1
      tail -n 20 "$CALIB_DIR/infer.r$i.log" >&2
      echo "[calibrate] replica $i failed; log: $CALIB_DIR/infer.r$i.log" >&2
    fi
  done
  (( failed == 0 )) || exit 1
fi
calib_cmd "$CALIB_DIR/prompts.parquet" "${outs[@]}"
"${CALIB[@]}"
