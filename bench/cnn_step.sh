#!/usr/bin/env bash
# bench/cnn_step.sh - convolutional nets' training step, graphc next to
# PyTorch (bench/torch_cnn_step.py: the same net, batch, recipe and threads)
# in the same run: medians, the speed-up over PyTorch, GFLOP/s and the
# fraction of the machine's measured FMA peak for the ISA (bench/fma_peak.c).
#
# The models (MODEL[:BATCH], default: examples/lenet.model at batch 256 and
# bench/vgg_cifar_bn.model at batch 128, the CIFAR VGG of issue 14;
# bench/vgg_cifar.model is the same net without its BatchNorm).
# FLOPs count 2 per multiply-add of every convolution and matrix product:
# forward, weight gradient, and input gradient for all but the first layer.
#
# PyTorch's convolutions run in oneDNN, held to the ISA with
# ONEDNN_MAX_CPU_ISA; its matrix products in OpenBLAS (OPENBLAS_CORETYPE)
# and its own kernels with ATEN_CPU_CAPABILITY, as in bench/mlp_step.sh.
# Each side runs at 1 thread and at every core and its best counts; the
# whole comparison is made ROUNDS times, interleaved, and medians are shown.
#
#   bench/cnn_step.sh [--build DIR] [--steps N] [--rounds N] [--isa LIST] [MODEL[:BATCH] ...]
#   (--isa: a comma-separated list of avx512, avx2, generic; default the best this CPU runs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
steps=10
rounds=3
isas=
models=()
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --isa) isas=${2//,/ }; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) models+=("$1"); shift ;;
  esac
done
((${#models[@]})) || models=("$root/examples/lenet.model:256" "$root/bench/vgg_cifar_bn.model:128")
py=/usr/bin/python3
peaks=$("$build/fma_peak")
if [[ -z $isas ]]; then
  isas=$("$py" -c 'import json, sys
print(next(json.loads(l)["isa"] for l in sys.stdin if l.strip()))' <<<"$peaks")
fi
echo "CNN training steps, $(nproc) cores, ISA $isas, medians of $steps steps, $rounds rounds"
echo "$peaks"
torch=1
"$py" -c 'import torch' 2>/dev/null || {
  torch=0
  echo "PyTorch (Debian's python3-torch) is not installed: no comparison, no FLOP count"
}
amd=$(grep -q AuthenticAMD /proc/cpuinfo && echo 1 || echo 0)
rows=()
for ((round = 1; round <= rounds; ++round)); do
  for spec in "${models[@]}"; do
    model=${spec%%:*}
    batch=256
    [[ $spec == *:* ]] && batch=${spec##*:}
    name=$(basename "$model" .model)
    for isa in $isas; do
      g=
      for threads in 1 $(nproc); do
        if ! r=$(GRAPHC_CPU=$isa "$build/step_bench" "$model" --batch "$batch" --steps "$steps" \
                   --warmup 3 --threads "$threads" 2>&1); then
          echo "$name $isa: not run: $r"
          continue 2
        fi
        echo "round $round graphc $name $isa: $r"
        g=$("$py" -c 'import json, sys
a, b = (json.loads(s) for s in sys.argv[1:])
print(json.dumps(a if a["step_ms_median"] <= b["step_ms_median"] else b))' "$r" "${g:-$r}")
      done
      t='{}'
      if ((torch)); then
        case $isa in
          avx512) core=SkylakeX aten=avx512 dnn=AVX512_CORE ;;
          avx2) core=$( ((amd)) && echo Zen || echo Haswell) aten=avx2 dnn=AVX2 ;;
          *) core=Prescott aten=default dnn=SSE41 ;;
        esac
        t=$(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=$core ATEN_CPU_CAPABILITY=$aten \
              ONEDNN_MAX_CPU_ISA=$dnn "$py" "$root/bench/torch_cnn_step.py" "$model" "$batch" \
              "$steps" | tail -n 1)
        echo "round $round pytorch $name $isa (oneDNN $dnn, OpenBLAS $core, ATen $aten): $t"
      fi
      rows+=("$name|$isa|$g|$t")
    done
  done
done
"$py" - "$peaks" "${rows[@]}" <<'PY'
import json, statistics, sys
peaks = {p["isa"]: p["gflops"] for p in map(json.loads, sys.argv[1].splitlines())}
runs = {}
for r in sys.argv[2:]:
    name, isa, g, t = r.split("|")
    runs.setdefault((name, isa), []).append((json.loads(g), json.loads(t)))
med = statistics.median
print(f"{'model':12} {'isa':7} {'batch':>5} {'graphc ms':>10} {'GFLOP/s':>8} {'of peak':>8} "
      f"{'PyTorch ms':>11} {'GFLOP/s':>8} {'of peak':>8} {'graphc speed-up (range)':>24}")
for (name, isa), rs in runs.items():
    g_ms = med(g["step_ms_median"] for g, _ in rs)
    flops = next((t["flops"] for _, t in rs if t), 0)
    peak = peaks.get(isa, 0)
    def rate(ms):
        if not flops:
            return f"{'-':>8} {'-':>8}"
        gf = flops / (ms * 1e6)
        return f"{gf:8.1f} " + (f"{100 * gf / peak:7.1f}%" if peak else f"{'-':>8}")
    line = f"{name:12} {isa:7} {rs[0][0]['batch']:>5} {g_ms:10.2f} {rate(g_ms)}"
    if all(t for _, t in rs):
        t_ms = med(t["step_ms_median"] for _, t in rs)
        ratios = [t["step_ms_median"] / g["step_ms_median"] for g, t in rs]
        line += (f" {t_ms:11.2f} {rate(t_ms)} {med(ratios):10.2f}x "
                 f"({min(ratios):.2f}-{max(ratios):.2f})")
    print(line + f"   (peak {peak:.0f} GFLOP/s; threads graphc "
          f"{'/'.join(str(g['threads']) for g, _ in rs)}"
          + (f", PyTorch {'/'.join(str(t['threads']) for _, t in rs)}" if all(t for _, t in rs)
             else "") + ")")
PY
