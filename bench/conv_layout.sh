#!/usr/bin/env bash
# bench/conv_layout.sh - NCHW against NCHW16c for the CIFAR VGG's
# convolutions (issue 14: the layout that is fastest inside a kernel group).
#
# graphc's forward convolutions (NCHW, the implicit GEMM on its packed
# micro-kernel, times from GRAPHC_PROFILE of one VGG-BN step at 1 thread),
# next to bench/conv_layout.c's direct convolution over NCHW16c at the same
# shapes and thread count, with and without the reorders a kernel group
# keeping the model's NCHW would pay at its edges. Medians; AVX-512 only
# (NCHW16c is that ISA's blocking).
#
#   bench/conv_layout.sh [--build DIR] [--batch N] [--reps N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
batch=128
reps=5
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "conv_layout.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if ! grep -qw avx512f /proc/cpuinfo; then
  echo "conv_layout.sh: this CPU has no AVX-512, which the NCHW16c convolution is written for"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O3 -mavx512f -std=c11 -o "$tmp/conv_layout" "$root/bench/conv_layout.c" -lm
prof=$(GRAPHC_CPU=avx512 GRAPHC_PROFILE=1 "$build/step_bench" "$root/bench/vgg_cifar_bn.model" \
         --batch "$batch" --steps "$reps" --threads 1 2>&1)
printf '%-18s %12s %12s %12s %12s %10s\n' "layer (batch $batch)" "graphc NCHW" "NCHW16c conv" \
  "+ reorders" "GFLOP/s" "NCHW16c/graphc"
for layer in "64 32 64" "64 16 128" "128 16 128" "128 8 256" "256 8 256"; do
  read -r c hw o <<<"$layer"
  g=$(awk -v m="$o" -v n=$((batch * hw * hw)) -v k=$((c * 9)) \
        '$1 == "gemm" && $2 == m && $4 == n && $6 == k { print $7; exit }' <<<"$prof")
  r=$("$tmp/conv_layout" "$batch" "$c" "$hw" "$o" "$reps")
  python3 - "$c" "$hw" "$o" "${g:-nan}" "$r" <<'PY'
import json, sys
c, hw, o, g, r = sys.argv[1:]
r = json.loads(r)
g = float(g)
print(f"{c}->{o} @{hw}x{hw}".ljust(18), f"{g:10.1f} ms", f"{r['conv_ms']:10.1f} ms",
      f"{r['total_ms']:10.1f} ms", f"{r['conv_gflops']:12.1f}", f"{r['total_ms'] / g:13.2f}x")
PY
done
