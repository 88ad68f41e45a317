#!/usr/bin/env bash
# bench/mlp_step.sh - the seed MLP's training step under every vector ISA
# this CPU executes (GRAPHC_CPU=avx512|avx2|generic), next to PyTorch in the
# same run on this machine: medians, the ratio to PyTorch, GFLOP/s and the
# fraction of the machine's measured FMA peak (bench/fma_peak.c).
#
#   bench/mlp_step.sh [BUILD_DIR] [BATCH] [STEPS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
batch=${2:-256}
steps=${3:-30}
py=/usr/bin/python3

echo "seed MLP training step, batch $batch, $(nproc) cores, medians of $steps steps"
peaks=$("$build/fma_peak")
echo "$peaks"
results=()
for isa in avx512 avx2 generic; do
  if g=$(GRAPHC_CPU=$isa "$build/step_bench" "$root/examples/mlp.model" --batch "$batch" \
           --steps "$steps" 2>&1); then
    echo "$isa: $g"
    results+=("$isa=$g")
  else
    echo "$isa: not run: $g"
  fi
done
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "PyTorch (Debian's python3-torch) is not installed: no comparison"
  exit 0
fi
# The machine may pin OpenBLAS to an older core type for safety; for a fair
# comparison PyTorch gets its own choice of kernels.
t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$root/bench/torch_step.py" "$batch" "$steps")
echo "$t"
best=$(echo "$t" | tail -n 1)
"$py" - "$best" "$peaks" "${results[@]}" <<'PY'
import json, sys
t = json.loads(sys.argv[1])
peaks = {p["isa"]: p["gflops"] for p in map(json.loads, sys.argv[2].splitlines())}
print(f"{'':8} {'ms/step':>9} {'GFLOP/s':>8} {'peak':>7} {'of peak':>8} {'vs PyTorch':>11}")
for r in sys.argv[3:]:
    isa, g = r.split("=", 1)
    g = json.loads(g)
    peak = peaks.get(isa, 0)
    frac = f"{100 * g['gflops'] / peak:6.1f}%" if peak else "      -"
    print(f"{isa:8} {g['step_ms_median']:9.2f} {g['gflops']:8.1f} {peak:7.1f} {frac:>8} "
          f"{t['step_ms_median'] / g['step_ms_median']:10.2f}x   (JIT compile {g['compile_ms']:.0f} ms)")
print(f"{'pytorch':8} {t['step_ms_median']:9.2f} {t['gflops']:8.1f}    ({t['threads']} threads, its best)")
PY
