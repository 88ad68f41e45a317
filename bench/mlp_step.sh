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
# PyTorch's own elementwise kernels (ReLU, LogSoftMax, Adagrad) are held to
# the same ISA with ATEN_CPU_CAPABILITY (avx512, avx2, default).
#
# The machine is shared and noisy, so the whole comparison is made ROUNDS
# times, graphc and PyTorch interleaved, and the table gives the median over
# the rounds of each side's step time and of the per-round speed-up, with the
# speed-up's range.
#
#   bench/mlp_step.sh [BUILD_DIR] [BATCH] [STEPS] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
batch=${2:-256}
steps=${3:-30}
rounds=${4:-3}
py=/usr/bin/python3

echo "seed MLP training step, batch $batch, $(nproc) cores, medians of $steps steps, $rounds rounds"
peaks=$("$build/fma_peak")
echo "$peaks"
torch=1
"$py" -c 'import torch' 2>/dev/null || {
  torch=0
  echo "PyTorch (Debian's python3-torch) is not installed: no comparison"
}
amd=$(grep -q AuthenticAMD /proc/cpuinfo && echo 1 || echo 0)
rows=()
for ((round = 1; round <= rounds; ++round)); do
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
      echo "round $round graphc $isa: $r"
      g=$("$py" -c 'import json, sys
a, b = (json.loads(s) for s in sys.argv[1:])
print(json.dumps(a if not b or a["step_ms_median"] <= b["step_ms_median"] else b))' "$r" "${g:-$r}")
    done
    t='{}'
    if ((torch)); then
      case $isa in
        avx512) core=SkylakeX aten=avx512 ;;
        avx2) core=$( ((amd)) && echo Zen || echo Haswell) aten=avx2 ;;
        *) core=Prescott aten=default ;;
      esac
      t=$(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=$core ATEN_CPU_CAPABILITY=$aten \
            "$py" "$root/bench/torch_step.py" "$batch" "$steps" | tail -n 1)
      echo "round $round pytorch $isa (OpenBLAS $core, ATen $aten): $t"
    fi
    rows+=("$isa|$g|$t")
  done
done
"$py" - "$peaks" "${rows[@]}" <<'PY'
import json, statistics, sys
peaks = {p["isa"]: p["gflops"] for p in map(json.loads, sys.argv[1].splitlines())}
runs = {}
for r in sys.argv[2:]:
    isa, g, t = r.split("|")
    runs.setdefault(isa, []).append((json.loads(g), json.loads(t)))
med = statistics.median
print(f"{'':8} {'graphc ms':>10} {'GFLOP/s':>8} {'of peak':>8} {'PyTorch ms':>11} {'GFLOP/s':>8} "
      f"{'graphc speed-up (range)':>24}")
for isa, rs in runs.items():
    g_ms = med(g["step_ms_median"] for g, _ in rs)
    gflops = 2.6e9 * int(rs[0][0]["batch"]) / 256 / (g_ms * 1e6)
    peak = peaks.get(isa, 0)
    frac = f"{100 * gflops / peak:7.1f}%" if peak else "       -"
    line = f"{isa:8} {g_ms:10.2f} {gflops:8.1f} {frac}"
    if all(t for _, t in rs):
        t_ms = med(t["step_ms_median"] for _, t in rs)
        ratios = [t["step_ms_median"] / g["step_ms_median"] for g, t in rs]
        line += (f" {t_ms:11.2f} {2.6e9 * int(rs[0][0]['batch']) / 256 / (t_ms * 1e6):8.1f} "
                 f"{med(ratios):10.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    print(line + f"   (peak {peak:.0f} GFLOP/s; threads graphc "
          f"{'/'.join(str(g['threads']) for g, _ in rs)}"
          + (f", PyTorch {'/'.join(str(t['threads']) for _, t in rs)}" if all(t for _, t in rs) else "")
          + ")")
PY
