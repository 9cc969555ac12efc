#!/usr/bin/env bash
# Every GPU measurement of cnnlab in one run, under 8 minutes on one GPU, written to one
# Markdown results file. Needs only this repository, python3 and pip (PyPI reachable):
#
#   0. environment: a venv (.venv-gpu, reused when present) with `pip install -e ".[test]"` and
#      `pip install airbench` (skipped with a note if the package cannot be installed);
#   1. the CUDA test (tests/data/test_augment.py: the same augmentation on GPU as on CPU);
#   2. CIFAR-10: cnnlab's cifar-fast recipe vs airbench94 on the same data, time to 94%
#      (benchmarks/gpu_bench.py cifar; CIFAR-10 is downloaded, or read from --data-dir);
#   3. the DDP tests over NCCL (tests/training/test_train_ddp_nccl.py);
#   4. ResNet-50 training throughput at 224, bf16 autocast, channels_last (gpu_bench.py resnet50).
#
# usage: benchmarks/gpu.sh [--dry-run] [--out FILE] [--data-dir DIR] [--python PY]
#   --dry-run   on a CPU: no venv, no installs; every step starts at toy size (pytest collects
#               the GPU tests, gpu_bench runs its CPU dry run) to show it would run on a GPU
#   --python    use this interpreter instead of creating the venv (its torch must see CUDA)
#   --out       results file (default benchmarks/gpu-results-<UTC time>.md)
# Exit status 0 when every step passed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
DRY=0
OUT=""
DATA="${CNNLAB_DATA:-}"
PY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --data-dir) DATA="$2"; shift ;;
    --python) PY="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
OUT=${OUT:-benchmarks/gpu-results-$STAMP.md}
LOG=$(mktemp -d "${TMPDIR:-/tmp}/cnnlab-gpu-sh.XXXXXX")
BODY="$LOG/body.md"
: >"$BODY"
FAILED=0

# step NAME TIMEOUT_S CMD...: run, time, and append its outcome and Markdown output to BODY
step() {
  local name=$1 limit=$2 rc t0
  shift 2
  t0=$SECONDS
  timeout "$limit" "$@" >"$LOG/out.txt" 2>"$LOG/err.txt"
  rc=$?
  # on the GPU a test step that passed nothing (all skipped: no GPU visible) has failed
  if [ $rc -eq 0 ] && [ $DRY -eq 0 ] && [ "${REQUIRE_PASS:-0}" = 1 ] &&
     ! grep -q ' passed' "$LOG/out.txt"; then
    rc=3
    echo "no test passed (all skipped?)" >>"$LOG/err.txt"
  fi
  {
    echo "## $name"
    echo
    local shown="\`$*\`"
    [ "$1" = bash ] && shown="(shell commands)"
    echo "$shown: $( [ $rc -eq 0 ] && echo ok || { [ $rc -eq 124 ] && echo "TIMED OUT after ${limit}s" || echo "FAILED (exit $rc)"; } ), $((SECONDS - t0)) s"
    echo
    grep -E '^(#|- )' "$LOG/out.txt"
    grep -E '(passed|failed|skipped|error|tests? collected|SKIPPED)' "$LOG/out.txt" | tail -n 4 | sed 's/^/    /'
    if [ $rc -ne 0 ]; then echo; echo '```'; tail -n 15 "$LOG/err.txt"; echo '```'; fi
    echo
  } >>"$BODY"
  [ $rc -eq 0 ] || FAILED=1
  echo "gpu.sh: $name: exit $rc ($((SECONDS - t0)) s)" >&2
  return $rc
}

# 0. the environment
if [ $DRY -eq 1 ]; then
  PY=${PY:-$(command -v python3)}
  export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  step "0. environment (dry run: venv and pip can start; nothing is installed)" 60 bash -c "
    '$PY' -m venv --help >/dev/null && echo '- venv: can start' &&
    echo \"- \$('$PY' -m pip --version)\" &&
    { '$PY' -c 'import airbench' 2>/dev/null && echo '- airbench: installed' ||
      echo '- airbench: not installed here (the GPU run installs it)'; }"
elif [ -n "$PY" ]; then
  export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  printf -- "- interpreter given: %s (no venv, nothing installed)\n\n" "$PY" >>"$BODY"
else
  VENV="${CNNLAB_GPU_VENV:-$ROOT/.venv-gpu}"
  PY="$VENV/bin/python"
  step "0. environment ($VENV: pip install -e .[test], airbench)" 200 bash -c "
    { [ -x '$PY' ] || python3 -m venv '$VENV'; } &&
    '$PY' -m pip install -q --upgrade pip &&
    '$PY' -m pip install -q -e '.[test]' &&
    { '$PY' -m pip install -q airbench && echo '- airbench installed' ||
      echo '- airbench could not be installed: step 2 runs cnnlab alone'; } &&
    '$PY' -c 'import torch; print(\"- torch\", torch.__version__, \"CUDA\", torch.version.cuda, \"GPUs:\", torch.cuda.device_count())'
  " || echo "gpu.sh: the environment could not be set up; the steps below will say why" >&2
fi

PYTEST=("$PY" -m pytest -q -rs -p no:randomly -p no:cacheprovider)
[ $DRY -eq 1 ] && PYTEST+=(--collect-only)
GPUFLAG=()
[ $DRY -eq 1 ] && GPUFLAG=(--dry-run)
DATAFLAG=()
[ -n "$DATA" ] && DATAFLAG=(--data-dir "$DATA")

REQUIRE_PASS=1 step "1. CUDA test" 45 "${PYTEST[@]}" tests/data/test_augment.py::test_same_augmentation_on_gpu_as_on_cpu
step "2. CIFAR-10: cnnlab cifar-fast vs airbench94, time to 94%" 150 \
  "$PY" benchmarks/gpu_bench.py cifar "${DATAFLAG[@]}" "${GPUFLAG[@]}"
REQUIRE_PASS=1 step "3. DDP over NCCL" 60 "${PYTEST[@]}" tests/training/test_train_ddp_nccl.py
step "4. ResNet-50 training throughput (224, bf16, channels_last)" 45 \
  "$PY" benchmarks/gpu_bench.py resnet50 "${GPUFLAG[@]}"

# the results file, written whole or not at all
GPU=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
{
  echo "# cnnlab GPU results, $STAMP$( [ $DRY -eq 1 ] && echo ' (DRY RUN on the CPU: no figure below is a GPU figure)')"
  echo
  echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(uname -n)"
  echo "- GPU: ${GPU:-none visible}; $("$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null)"
  echo "- total $SECONDS s; status: $( [ $FAILED -eq 0 ] && echo 'every step passed' || echo 'SOME STEPS FAILED')"
  echo
  cat "$BODY"
} >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "gpu.sh: wrote $OUT (${SECONDS} s)" >&2
rm -rf "$LOG"
exit $FAILED
