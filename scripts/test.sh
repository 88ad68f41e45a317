#!/usr/bin/env bash
# scripts/test.sh - builds and runs the whole test suite twice: first every
# test under AddressSanitizer and UndefinedBehaviorSanitizer at a reduced size
# (GRAPHC_TEST_REDUCED=1: fewer random cases, steps, batches and training
# samples; every test runs), then every test of the Release build at full
# size, then the GPU check on the emulated device (its CUDA-only build, no
# LLVM). Ends with the count of skipped tests by reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
rc=0

# Line tables only (-g1): the sanitizers' reports keep file:line, and the
# build is much cheaper than with full debug information on 2 cores.
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DGRAPHC_SANITIZE=ON >/dev/null
cmake --build "$root/build-asan" -j"$jobs"
# The cuda target's NVRTC and ptxas checks run once, in the GPU check below.
once_in_gpu_check='every CUDA kernel of the example models compiles|the cuda library.s tables describe'
(cd "$root/build-asan" &&
  GRAPHC_TEST_REDUCED=1 ctest --output-on-failure -j"$jobs" -E "$once_in_gpu_check" \
    --output-junit junit.xml) || rc=$?

cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$jobs"
(cd "$root/build" &&
  ctest --output-on-failure -j"$jobs" -E "$once_in_gpu_check" --output-junit junit.xml) || rc=$?

# The GPU check (tests/gpu/check.sh) end to end on the emulated CUDA device
# (runtime/cuda/Emulator.h): its CUDA-only build (LLVM hidden from CMake and
# checked absent from the binary), every [cuda] test case with the real
# generated kernels run on the host, against the interpreter, and a short
# training run, and the cuda `--emit lib` archive against the cpu one. On a
# GPU machine the same script runs on the GPU.
# The `--emit lib` archives it links come from the Release build (LLVM).
rm -rf "$root/build-cuda-aot"
GRAPHC_AOT_ARCH=host bash "$root/tests/gpu/aot_check.sh" "$root/build/graphc" \
  "$root/build-cuda-aot" --write-only >/dev/null || rc=1
GRAPHC_CUDA_DEVICE=emulate GRAPHC_GPU_BUILD="$root/build-cuda" GRAPHC_GPU_BUDGET=2400 \
  GRAPHC_GPU_AOT="$root/build-cuda-aot" OUT="$root/build-cuda/out" \
  bash "$root/tests/gpu/check.sh" || rc=1

python3 "$root/scripts/skipped_tests.py" "$root/build-asan/junit.xml" "$root/build/junit.xml"
exit "$rc"
