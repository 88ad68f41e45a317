#!/usr/bin/env bash
# tests/gpu/aot_check.sh GRAPHC WORKDIR - writes the seed MLP's library for
# the cpu target (mlpc) and the cuda target (mlpg), links both into
# tests/gpu/aot_compare.c and runs it (a GPU is needed for the run).
set -euo pipefail
graphc=$1
work=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
mkdir -p "$work"
"$graphc" compile "$root/examples/mlp.model" --input 1x32x32 --target cpu --emit lib -o "$work/mlpc"
"$graphc" compile "$root/examples/mlp.model" --input 1x32x32 --target cuda --emit lib -o "$work/mlpg"
cc -O2 -std=c11 -Wall -I"$work" -I"$cuda/include" "$root/tests/gpu/aot_compare.c" \
  -L"$work" -lmlpc -lmlpg -L"$cuda/lib64" -L"$cuda/lib64/stubs" -lcublasLt -lcuda -lm -lpthread \
  -o "$work/aot_compare"
cd "$work" && ./aot_compare "${3:-12}"
