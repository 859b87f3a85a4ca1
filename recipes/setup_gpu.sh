#!/usr/bin/env bash
# The GPU training environment, separate from the CPU test venv (.venv): `bash run.sh setup-gpu [--megatron]`.
# Order matters (docs/recipes.md, GPU set-up):
#   1. torch/torchvision/torchaudio as verl 0.9.1's extras pin them  (requirements-gpu-torch.txt)
#   2. flash-attn, compiled against that torch: --no-build-isolation  (needs nvcc / the CUDA toolkit)
#   3. verl[vllm,fsdp] and the project's packages                    (requirements-gpu.txt)
#   4. --megatron: the Megatron engine's packages                    (requirements-gpu-megatron.txt)
# Env: MEDGRPO_GPU_VENV (default .venv-gpu), BASE_PYTHON (default python3.11, else python3),
#      FLASH_ATTN_CUDA_ARCHS (default 90: H100/H200; 80 for A100, "80;90" for both; flash-attn's own
#      default compiles 80;90;100;120, hours), NVTE_CUDA_ARCHS (same for Transformer Engine, --megatron),
#      MAX_JOBS (parallel compile jobs; default: the cores, at most one per 8 GB of memory).
# torch 2.11.0 from PyPI is a CUDA 13.0 build: the nodes need an NVIDIA driver >= 580 (warned below).
# Reruns skip the steps whose requirement files did not change. Log: $MEDGRPO_GPU_VENV/install.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${MEDGRPO_GPU_VENV:-.venv-gpu}"
megatron=0
for arg in "$@"; do
  case "$arg" in
    --megatron) megatron=1 ;;
    *) echo "usage: bash run.sh setup-gpu [--megatron]" >&2; exit 2 ;;
  esac
done
if [[ "$(realpath -m "$VENV")" == "$(realpath -m .venv)" ]]; then
  echo "[setup-gpu] error: MEDGRPO_GPU_VENV must not be the CPU test venv (.venv)" >&2; exit 2
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  base="${BASE_PYTHON:-$(command -v python3.11 || command -v python3)}"
  echo "[setup-gpu] creating $VENV with $base"
  "$base" -m venv "$VENV"
fi
PY="$VENV/bin/python"
LOG="$VENV/install.log"
FLASH_ATTN="$(grep -E '^flash-attn==' requirements-gpu.txt)"
MIN_DRIVER=580  # torch 2.11.0's CUDA 13.0
if command -v nvidia-smi >/dev/null 2>&1; then
  driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)"
  if [[ "$driver" =~ ^([0-9]+)\. ]] && (( BASH_REMATCH[1] < MIN_DRIVER )); then
    echo "[setup-gpu] warning: NVIDIA driver $driver < $MIN_DRIVER: torch 2.11.0 (CUDA 13.0) will see no GPU here" \
         "(docs/recipes.md, GPU set-up)" >&2
  fi
fi
export FLASH_ATTN_CUDA_ARCHS="${FLASH_ATTN_CUDA_ARCHS:-90}" NVTE_CUDA_ARCHS="${NVTE_CUDA_ARCHS:-90}"
if [[ -z "${MAX_JOBS:-}" ]]; then
  mem_gb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo 2>/dev/null || echo 8388608) / 1048576 ))
  MAX_JOBS=$(( mem_gb / 8 < $(nproc) ? mem_gb / 8 : $(nproc) ))
  (( MAX_JOBS >= 1 )) || MAX_JOBS=1
fi
export MAX_JOBS

# step NAME STAMP_INPUTS -- COMMAND...: run COMMAND unless the stamp of STAMP_INPUTS is unchanged.
step() {
  local name="$1" inputs="$2"; shift 3
  local stamp="$VENV/.medgrpo-$name.sha256" want
  want="$(cat $inputs | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then echo "[setup-gpu] $name: up to date"; return; fi
  echo "[setup-gpu] $name: $*"
  if ! "$@" >> "$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    echo "[setup-gpu] $name failed; full log in $LOG (docs/recipes.md, GPU set-up)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
}

step pip requirements-gpu-torch.txt -- "$PY" -m pip install --upgrade pip setuptools wheel packaging ninja psutil
step torch requirements-gpu-torch.txt -- "$PY" -m pip install -r requirements-gpu-torch.txt
echo "[setup-gpu] compiling for CUDA arch $FLASH_ATTN_CUDA_ARCHS with MAX_JOBS=$MAX_JOBS (estimate, not measured" \
     "here: minutes to tens of minutes for one arch on a many-core node, hours for all four with few jobs)"
step flash-attn "requirements-gpu-torch.txt requirements-gpu.txt" -- \
  "$PY" -m pip install --no-build-isolation "$FLASH_ATTN"
step requirements "requirements-gpu-torch.txt requirements-gpu.txt" -- "$PY" -m pip install -r requirements-gpu.txt
if (( megatron )); then  # Transformer Engine's PyTorch extension compiles against the installed torch
  export NVTE_FRAMEWORK=pytorch
  step megatron "requirements-gpu.txt requirements-gpu-megatron.txt" -- \
    "$PY" -m pip install --no-build-isolation -r requirements-gpu-megatron.txt
fi
"$PY" -c "from recipes.preflight import interpreter_summary; print('[setup-gpu] ready:', interpreter_summary())"
echo "[setup-gpu] use it: source $VENV/bin/activate (the launchers then pick it up), or PYTHON=$PY bash recipes/..."
