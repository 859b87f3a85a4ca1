# Shared by the recipes/*.sh launchers (sourced, not run): environment defaults, the multi-node
# rule and the launch itself, its dry run or its printout. Every variable can be set by the caller:
#
#   MODEL_PATH      model to train: SFT an instruct model (folder or hub id), RL the SFT model (HF folder)
#   DATA_DIR        output of `python -m data_preprocess.medvidbench` (rl_*.parquet, sft_*.parquet, manifest.json)
#   RL_DATA_DIR     the RL launchers' data (default $DATA_DIR): the Standard split (`--split standard`;
#                   medgrpo.data_split says which split the dry run expects)
#   VAL_PROMPTS     RL validation: a seeded sample of this many rl_val prompts shared by every
#                   (data_source, task), written to $OUTPUT_DIR/$EXPERIMENT/val_sample/ before each
#                   launch (default 512; 0: the whole rl_val file); VAL_SEED (default 0)
#   OUTPUT_DIR      checkpoints, logs, judge cache, reward stats; a run writes to $OUTPUT_DIR/$EXPERIMENT
#   NNODES, GPUS_PER_NODE   cluster shape (NNODES > 1 joins the Ray cluster at $RAY_ADDRESS)
#   PROJECT, EXPERIMENT     tracking names (EXPERIMENT defaults to the launcher's name)
#   REWARD_STATS    logistic-normalization stats (written by recipes/calibrate_reward_stats.sh)
#   JUDGE_BASE_URL  OpenAI-compatible judge endpoint; JUDGE_MODEL: judge model name; JUDGE_API_KEY_ENV:
#                   NAME of the variable holding its key (unset: the defaults of reward_fns/medgrpo_reward.yaml,
#                   api.openai.com, gpt-4.1 and OPENAI_API_KEY)
#   JUDGE_CACHE     SQLite judge cache shared by runs
#   DRY_RUN         1: compose + validate the full config, print it, launch nothing (CPU only);
#                   print: print the launch command(s) only
#   PREFLIGHT       1 (default): before a real launch (before Ray starts), run the dry-run checks and
#                   the launch checks of this interpreter (CUDA torch, GPUs, vLLM, flash-attn); 0: skip
#   MEDGRPO_ENGINE  cpu: the CPU training mode (tests, laptops; recipes/ext, docs/training.md): GRPO gets
#                   `medgrpo_engine=cpu` (that override alone also selects it), SFT `+medgrpo_sft_engine=cpu`
#                   and the gloo entry point recipes.ext.sft_cpu; verl loads the plug-ins (VERL_PLATFORM=cpu)
#   VERL_USE_EXTERNAL_MODULES  modules verl imports in every process: the caller's list, extended with
#                   the ones the configs list for the Ray runtime_env (CPU mode: the plug-ins of
#                   config/medgrpo_engine/cpu.yaml, first; GRPO: config/medgrpo_grpo.yaml's vLLM fixes and
#                   medgrpo_sync trainer, last); GRPO passes the list on to the Ray runtime_env
#   PYTHON          interpreter; default: the activated environment ($VIRTUAL_ENV, then $CONDA_PREFIX),
#                   else the repo's .venv (the CPU test environment), else python3. Printed on every run.

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$RECIPES_DIR")"

_medgrpo_abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }

DATA_DIR="$(_medgrpo_abs "${DATA_DIR:-$REPO_ROOT/data/medvidbench}")"
RL_DATA_DIR="$(_medgrpo_abs "${RL_DATA_DIR:-$DATA_DIR}")"
VAL_PROMPTS="${VAL_PROMPTS:-512}"
VAL_SEED="${VAL_SEED:-0}"
OUTPUT_DIR="$(_medgrpo_abs "${OUTPUT_DIR:-$REPO_ROOT/outputs}")"
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
PROJECT="${PROJECT:-medgrpo}"
REWARD_STATS="$(_medgrpo_abs "${REWARD_STATS:-$OUTPUT_DIR/reward_stats.json}")"
JUDGE_CACHE="$(_medgrpo_abs "${JUDGE_CACHE:-$OUTPUT_DIR/judge_cache.sqlite}")"
DRY_RUN="${DRY_RUN:-0}"
PREFLIGHT="${PREFLIGHT:-1}"
# The interpreter: PYTHON, else an activated environment, else the repo's CPU .venv, else python3.
if [[ -n "${PYTHON:-}" ]]; then PYTHON_FROM=PYTHON
elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then PYTHON="$VIRTUAL_ENV/bin/python"; PYTHON_FROM=VIRTUAL_ENV
elif [[ -n "${CONDA_PREFIX:-}" && -x "$CONDA_PREFIX/bin/python" ]]; then PYTHON="$CONDA_PREFIX/bin/python"; PYTHON_FROM=CONDA_PREFIX
elif [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; PYTHON_FROM="the repo's .venv (CPU)"
else PYTHON=python3; PYTHON_FROM=PATH
fi
echo "[medgrpo] python: $PYTHON (from $PYTHON_FROM; choose with PYTHON=...)" >&2
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# A Hydra override value, single-quoted (so paths and URLs with ':', '=', ',' or spaces stay strings).
hq() { local v="${1//\'/\\\'}"; printf "'%s'" "$v"; }

# medgrpo_args KIND CONFIG [OVERRIDES...]: fills MEDGRPO_ARGS with the verl CLI arguments (KIND: ppo | sft).
medgrpo_args() {
  local kind="$1" config="$2"; shift 2
  : "${MODEL_PATH:?set MODEL_PATH (see recipes/README.md)}"
  : "${EXPERIMENT:?set EXPERIMENT}"
  [[ "$NNODES" =~ ^[1-9][0-9]*$ && "$GPUS_PER_NODE" =~ ^[1-9][0-9]*$ ]] \
    || { echo "error: NNODES ($NNODES) and GPUS_PER_NODE ($GPUS_PER_NODE) must be positive integers" >&2; exit 2; }
  [[ "$VAL_PROMPTS" =~ ^[0-9]+$ && "$VAL_SEED" =~ ^[0-9]+$ ]] \
    || { echo "error: VAL_PROMPTS ($VAL_PROMPTS) and VAL_SEED ($VAL_SEED) must be integers >= 0" >&2; exit 2; }
  local model="$MODEL_PATH"
  [[ -e "$model" ]] && model="$(_medgrpo_abs "$model")"
  MEDGRPO_ARGS=(--config-path "$RECIPES_DIR/config" --config-name "$config"
    "trainer.project_name=$(hq "$PROJECT")" "trainer.experiment_name=$(hq "$EXPERIMENT")"
    "trainer.nnodes=$NNODES" "trainer.n_gpus_per_node=$GPUS_PER_NODE"
    "trainer.default_local_dir=$(hq "$OUTPUT_DIR/$EXPERIMENT")")
  if [[ "$kind" == ppo ]]; then
    # Ray workers get the repo on PYTHONPATH in front of the cluster's own: Ray expands $PYTHONPATH
    # on each node when it starts a worker (an unset one leaves a harmless literal entry).
    local val="$RL_DATA_DIR/rl_val.parquet" key var
    if [[ "${MEDGRPO_NO_VAL:-}" == 1 ]]; then  # calibration never validates: the train file stands in
      val="$RL_DATA_DIR/rl_train.parquet"; VAL_PROMPTS=0
    fi
    MEDGRPO_VAL_SAMPLE=()  # the validation sample, written by medgrpo_run before the dry run / launch
    if (( VAL_PROMPTS > 0 )); then
      local sample="$OUTPUT_DIR/$EXPERIMENT/val_sample/rl_val.n$VAL_PROMPTS.seed$VAL_SEED.parquet"
      MEDGRPO_VAL_SAMPLE=("$PYTHON" -m recipes.pair_sample --data "$val" --out "$sample" --total "$VAL_PROMPTS"
                          --seed "$VAL_SEED" --quiet)
      val="$sample"
    fi
    MEDGRPO_ARGS+=("actor_rollout_ref.model.path=$(hq "$model")"
      "data.train_files=$(hq "$RL_DATA_DIR/rl_train.parquet")" "data.val_files=$(hq "$val")"
      "medgrpo.reward.normalization.stats_path=$(hq "$REWARD_STATS")"
      "medgrpo.reward.judge.cache_path=$(hq "$JUDGE_CACHE")"
      "actor_rollout_ref.rollout.agent.agent_loop_config_path=$(hq "$RECIPES_DIR/config/agent_loops.yaml")"
      "++ray_kwargs.ray_init.runtime_env.env_vars.PYTHONPATH=$(hq "$REPO_ROOT:\$PYTHONPATH")")
    for key in base_url model api_key_env; do  # JUDGE_BASE_URL, JUDGE_MODEL, JUDGE_API_KEY_ENV, where set
      var="JUDGE_${key^^}"
      if [[ -n "${!var:-}" ]]; then MEDGRPO_ARGS+=("medgrpo.reward.judge.$key=$(hq "${!var}")"); fi
    done
  else
    MEDGRPO_ARGS+=("model.path=$(hq "$model")"
      "data.train_files=$(hq "$DATA_DIR/sft_train.parquet")" "data.val_files=$(hq "$DATA_DIR/sft_val.parquet")")
  fi
  MEDGRPO_ARGS+=("$@")
}

# Multi-node runs join an existing Ray cluster; this script never starts Ray on any node.
medgrpo_require_ray() {
  if (( NNODES > 1 )) && [[ -z "${RAY_ADDRESS:-}" ]]; then
    echo "error: NNODES=$NNODES needs a running Ray cluster: run 'ray start --head' on this node and" \
         "'ray start --address=<head>:6379' on the others, then export RAY_ADDRESS=<head>:6379" \
         "(recipes/README.md, Multi-node)" >&2
    exit 2
  fi
}

# medgrpo_config_modules FILE: the comma list a recipe config gives its Ray runtime_env as
# VERL_USE_EXTERNAL_MODULES, the one place the recipes/ext modules verl imports are written.
medgrpo_config_modules() { sed -n 's/^ *VERL_USE_EXTERNAL_MODULES: *//p' "$RECIPES_DIR/config/$1"; }

# medgrpo_add_modules first|last MODULE...: puts recipes/ext modules into VERL_USE_EXTERNAL_MODULES, which
# verl/__init__.py imports in order in every process; the caller's other entries are kept, none twice.
# Platform plug-ins go first: importing verl's trainer (recipes.ext.trainer, last) looks the platform up.
medgrpo_add_modules() {
  local where="$1" module; shift
  local -a current=() kept=()
  IFS=, read -ra current <<< "${VERL_USE_EXTERNAL_MODULES:-}"
  for module in "${current[@]}"; do
    [[ -n "$module" && " $* " != *" $module "* ]] && kept+=("$module")
  done
  if [[ "$where" == first ]]; then kept=("$@" "${kept[@]}"); else kept+=("$@"); fi
  VERL_USE_EXTERNAL_MODULES="$(IFS=,; printf '%s' "${kept[*]}")"
  export VERL_USE_EXTERNAL_MODULES
}

# medgrpo_run KIND CONFIG [OVERRIDES...]: dry run, printout or launch of verl.
medgrpo_run() {
  local kind="$1"
  medgrpo_args "$@"
  local -a cmd
  if [[ "$kind" == ppo ]]; then
    cmd=("$PYTHON" -m verl.trainer.main_ppo)
  elif (( NNODES > 1 )); then
    cmd=("$PYTHON" -m verl.trainer.sft_trainer_ray)
  else
    cmd=("$PYTHON" -m torch.distributed.run --standalone --nnodes=1 --nproc_per_node="$GPUS_PER_NODE"
         -m verl.trainer.sft_trainer)
  fi
  local arg
  for arg in "$@"; do [[ "$arg" == medgrpo_engine=cpu ]] && MEDGRPO_ENGINE=cpu; done
  local -a grpo_modules=() cpu_modules=()
  IFS=, read -ra grpo_modules <<< "$(medgrpo_config_modules medgrpo_grpo.yaml)"
  if [[ "${MEDGRPO_ENGINE:-}" == cpu ]]; then  # the CPU training mode: verl plug-ins of recipes/ext
    export VERL_PLATFORM=cpu
    IFS=, read -ra cpu_modules <<< "$(medgrpo_config_modules medgrpo_engine/cpu.yaml)"
    # cpu.yaml lists the plug-ins, then medgrpo_grpo.yaml's modules (which go last, below)
    medgrpo_add_modules first "${cpu_modules[@]:0:${#cpu_modules[@]}-${#grpo_modules[@]}}"
    if [[ "$kind" == ppo ]]; then MEDGRPO_ARGS+=(medgrpo_engine=cpu)
    else MEDGRPO_ARGS+=(+medgrpo_sft_engine=cpu); [[ "${cmd[*]}" == *sft_trainer_ray* ]] || cmd[-1]=recipes.ext.sft_cpu
    fi
  fi
  if [[ "$kind" == ppo ]]; then  # the medgrpo_sync trainer (trainer.v1.trainer_mode), looked up in verl's Ray TaskRunner
    medgrpo_add_modules last "${grpo_modules[@]}"
    MEDGRPO_ARGS+=("++ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES=$(hq "$VERL_USE_EXTERNAL_MODULES")")
  fi
  cmd+=("${MEDGRPO_ARGS[@]}" "hydra.run.dir=$(hq "$OUTPUT_DIR/$EXPERIMENT/hydra")")
  case "$DRY_RUN" in
    1|true|yes|print) ;;
    0|false|no) medgrpo_require_ray ;;
    *) echo "error: DRY_RUN must be 0, 1 or print (got '$DRY_RUN')" >&2; exit 2 ;;
  esac
  if [[ "$kind" == ppo && ${#MEDGRPO_VAL_SAMPLE[@]} -gt 0 ]]; then  # the validation sample verl will read
    if [[ "$DRY_RUN" == print ]]; then printf '%q ' "${MEDGRPO_VAL_SAMPLE[@]}"; printf '\n'
    else "${MEDGRPO_VAL_SAMPLE[@]}"; fi
  fi
  case "$DRY_RUN" in
    1|true|yes) "$PYTHON" -m recipes.dry_run --kind "$kind" "${MEDGRPO_ARGS[@]}"; return ;;
    print) printf '%q ' "${cmd[@]}"; printf '\n'; return ;;
  esac
  if [[ "$PREFLIGHT" == 1 ]]; then  # fails before verl (and Ray) start
    "$PYTHON" -m recipes.dry_run --kind "$kind" --quiet --launch "${MEDGRPO_ARGS[@]}"
  fi
  mkdir -p "$OUTPUT_DIR/$EXPERIMENT"
  "${cmd[@]}"
}
