#!/usr/bin/env bash
# bench/mlp_step.sh - the seed MLP's training step, graphc next to PyTorch,
# in one run on this machine: medians, their ratio, GFLOP/s, JIT compile time.
#
#   bench/mlp_step.sh [BUILD_DIR] [BATCH] [STEPS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
batch=${2:-256}
steps=${3:-30}
py=/usr/bin/python3

echo "seed MLP training step, batch $batch, $(nproc) cores, medians of $steps steps"
g=$("$build/step_bench" "$root/examples/mlp.model" --batch "$batch" --steps "$steps")
echo "$g"
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "PyTorch (Debian's python3-torch) is not installed: no comparison"
  exit 0
fi
# The machine may pin OpenBLAS to an older core type for safety; for a fair
# comparison PyTorch gets its own choice of kernels.
t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$root/bench/torch_step.py" "$batch" "$steps")
echo "$t"
best=$(echo "$t" | tail -n 1)
"$py" - "$g" "$best" <<'PY'
import json, sys
g, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"graphc  {g['step_ms_median']:8.2f} ms  {g['gflops']:6.1f} GFLOP/s  (JIT compile {g['compile_ms']:.0f} ms)")
print(f"pytorch {t['step_ms_median']:8.2f} ms  {t['gflops']:6.1f} GFLOP/s  ({t['threads']} threads, its best)")
print(f"speed-up over PyTorch: {t['step_ms_median'] / g['step_ms_median']:.2f}x")
PY
