#!/usr/bin/env bash
# tests/gpu/aot_check.sh GRAPHC WORKDIR [STEPS]
# tests/gpu/aot_check.sh --prebuilt DIR WORKDIR [STEPS]
#
# The seed MLP trained with plain SGD (its update is linear in the gradient,
# so parameters compare at 1e-4 where Adagrad's sign step on near-zero
# gradients would not) as two `--emit lib` libraries: the cpu target's
# (mlpc) and the cuda target's (mlpg). Both are linked into
# tests/gpu/aot_compare.c and compared step by step (a GPU is needed to run).
# With --prebuilt the archives and headers come from DIR (scripts/gpu_deps.sh
# writes them with `aot_check.sh GRAPHC DIR --write-only` on a machine with
# LLVM), for a GPU machine whose graphc is built without the CPU backend.
# With GRAPHC_EMULATED_LIB=BUILD/libgraphc_cuda_emulated.a the cuda library
# runs on the emulated device instead (runtime/cuda/Emulator.h), in CI; its
# archive is then written with GRAPHC_AOT_ARCH=host (CUDA C source, no PTX).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
if [ "$1" = --prebuilt ]; then
  prebuilt=$2
  work=$3
  steps=${4:-12}
  mkdir -p "$work"
  cp "$prebuilt"/mlpc.h "$prebuilt"/libmlpc.a "$prebuilt"/mlpg.h "$prebuilt"/libmlpg.a "$work/"
else
  graphc=$1
  work=$2
  steps=${3:-12}
  mkdir -p "$work"
  sed -e 's/optim[.]adagrad/optim.sgd/' -e 's/learningRate = 0.001/learningRate = 0.00001/' \
    "$root/examples/mlp.model" >"$work/mlp_sgd.model"
  grep -q 'optim.sgd' "$work/mlp_sgd.model"
  "$graphc" compile "$work/mlp_sgd.model" --input 1x32x32 --target cpu --emit lib -o "$work/mlpc"
  "$graphc" compile "$work/mlp_sgd.model" --input 1x32x32 --target cuda --emit lib \
    --arch "${GRAPHC_AOT_ARCH:-sm_90}" -o "$work/mlpg"
  rm -f "$work"/mlpc.safetensors "$work"/mlpg.safetensors
  [ "${3:-}" = --write-only ] && exit 0
fi
if [ -n "${GRAPHC_EMULATED_LIB:-}" ]; then
  # The emulated device stands in for libcuda and cuBLASLt: its table is the
  # archive's grt_cuda_linked (tests/cuda_emulated_linked.cpp), linked first.
  c++ -O2 -x c -std=c11 -Wall -I"$work" -I"$root/runtime/rt" -I"$cuda/include" "$root/tests/gpu/aot_compare.c" -x none \
    -Wl,-u,grt_cuda_linked "$GRAPHC_EMULATED_LIB" -L"$work" -lmlpc -lmlpg -lfmt -ldl -lm \
    -lpthread -o "$work/aot_compare"
else
  # cuDNN where this toolkit has it (the archive references it weakly).
  cudnn=()
  [ -e "$cuda/lib64/libcudnn.so" ] && cudnn=(-Wl,--no-as-needed -lcudnn -Wl,--as-needed)
  cc -O2 -std=c11 -Wall -I"$work" -I"$root/runtime/rt" -I"$cuda/include" "$root/tests/gpu/aot_compare.c" \
    -L"$work" -lmlpc -lmlpg -L"$cuda/lib64" -L"$cuda/lib64/stubs" "${cudnn[@]}" -lcublasLt -lcuda \
    -lm -lpthread -o "$work/aot_compare"
  echo "aot_check: linked $([ ${#cudnn[@]} -gt 0 ] && echo "with cuDNN" || echo "without cuDNN")"
fi
cd "$work" && ./aot_compare "$steps"
