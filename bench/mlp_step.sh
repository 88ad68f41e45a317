#!/usr/bin/env bash
# bench/mlp_step.sh - the seed MLP's training step under every vector ISA
# this CPU executes (GRAPHC_CPU=avx512|avx2|generic), each next to PyTorch
# on the same ISA in the same run: medians, the ratio to PyTorch, GFLOP/s and
# the fraction of the machine's measured peak for that ISA (bench/fma_peak.c).
#
# PyTorch's matrix products run in OpenBLAS, whose kernels are chosen per
# row with OPENBLAS_CORETYPE: SkylakeX for avx512, Haswell (Zen on AMD) for
# avx2, Prescott (SSE3) for generic. The machine may pin OpenBLAS to an older
# core type for safety, and on a CPU model it does not know it falls back to
# Prescott whatever the CPU has, so the choice is made here, not left to it.
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
torch=1
"$py" -c 'import torch' 2>/dev/null || {
  torch=0
  echo "PyTorch (Debian's python3-torch) is not installed: no comparison"
}
amd=$(grep -q AuthenticAMD /proc/cpuinfo && echo 1 || echo 0)
rows=()
for isa in avx512 avx2 generic; do
  # Like PyTorch (bench/torch_step.py), at 1 thread and at every core, each
  # side's best counted: on a shared machine where another job holds a core,
  # a 2-thread step waits for its slower half, for either system.
  g=
  for threads in 1 $(nproc); do
    if ! r=$(GRAPHC_CPU=$isa "$build/step_bench" "$root/examples/mlp.model" --batch "$batch" \
               --steps "$steps" --threads "$threads" 2>&1); then
      echo "$isa: not run: $r"
      continue 2
    fi
    echo "graphc $isa: $r"
    g=$("$py" -c 'import json, sys
a, b = (json.loads(s) for s in sys.argv[1:])
print(json.dumps(a if not b or a["step_ms_median"] <= b["step_ms_median"] else b))' "$r" "${g:-$r}")
  done
  t='{}'
  if ((torch)); then
    case $isa in
      avx512) core=SkylakeX ;;
      avx2) core=$( ((amd)) && echo Zen || echo Haswell) ;;
      *) core=Prescott ;;
    esac
    t=$(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=$core "$py" "$root/bench/torch_step.py" \
          "$batch" "$steps" | tail -n 1)
    echo "pytorch $isa (OpenBLAS $core): $t"
  fi
  rows+=("$isa|$g|$t")
done
"$py" - "$peaks" "${rows[@]}" <<'PY'
import json, sys
peaks = {p["isa"]: p["gflops"] for p in map(json.loads, sys.argv[1].splitlines())}
print(f"{'':8} {'graphc ms':>10} {'':>4} {'GFLOP/s':>7} {'of peak':>8} {'PyTorch ms':>11} {'':>4} {'GFLOP/s':>7} "
      f"{'graphc speed-up':>16}")
for r in sys.argv[2:]:
    isa, g, t = r.split("|")
    g, t = json.loads(g), json.loads(t)
    peak = peaks.get(isa, 0)
    frac = f"{100 * g['gflops'] / peak:7.1f}%" if peak else "       -"
    line = f"{isa:8} {g['step_ms_median']:10.2f} {g['threads']:3d}t {g['gflops']:7.1f} {frac}"
    if t:
        line += (f" {t['step_ms_median']:11.2f} {t['threads']:3d}t {t['gflops']:7.1f} "
                 f"{t['step_ms_median'] / g['step_ms_median']:15.2f}x")
    print(line + f"   (peak {peak:.0f} GFLOP/s; JIT compile {g['compile_ms']:.0f} ms)")
PY
