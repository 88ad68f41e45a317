#!/usr/bin/env bash
# scripts/test.sh - builds and runs the whole test suite twice: first every
# test under AddressSanitizer and UndefinedBehaviorSanitizer at a reduced size
# (GRAPHC_TEST_REDUCED=1: fewer random cases, steps, batches and training
# samples; every test runs), then every test of the Release build at full
# size, then the CUDA-only configuration (no LLVM) of the GPU check. Ends with
# the count of skipped tests by reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
rc=0

cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRAPHC_SANITIZE=ON >/dev/null
cmake --build "$root/build-asan" -j"$jobs"
(cd "$root/build-asan" &&
  GRAPHC_TEST_REDUCED=1 ctest --output-on-failure -j"$jobs" --output-junit junit.xml) || rc=$?

cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$jobs"
(cd "$root/build" && ctest --output-on-failure -j"$jobs" --output-junit junit.xml) || rc=$?

# The CUDA-only configuration that tests/gpu/check.sh builds on GPU machines:
# LLVM hidden from CMake, and checked absent from the binary; the cuda
# target's tests (code generation, NVRTC and ptxas here; a GPU runs the rest,
# against the interpreter). Exit 4 is graphc_tests' "some cases skipped".
cmake -S "$root" -B "$root/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGRAPHC_CPU_BACKEND=OFF -DCMAKE_DISABLE_FIND_PACKAGE_LLVM=ON >/dev/null
cmake --build "$root/build-cuda" -j"$jobs" --target graphc graphc_tests
if ldd "$root/build-cuda/graphc" | grep -qi llvm; then
  echo "build-cuda/graphc links LLVM: GRAPHC_CPU_BACKEND=OFF must not" >&2
  rc=1
fi
cuda_rc=0
"$root/build-cuda/tests/graphc_tests" '[cuda]' >"$root/build-cuda/cuda_tests.log" 2>&1 || cuda_rc=$?
if [ "$cuda_rc" -ne 0 ] && [ "$cuda_rc" -ne 4 ]; then
  tail -n 60 "$root/build-cuda/cuda_tests.log"
  rc=1
fi
echo "CUDA-only build (no LLVM): graphc_tests [cuda] exit $cuda_rc ($(grep -E '^(All tests passed|test cases:)' "$root/build-cuda/cuda_tests.log" | tail -n1))"

python3 "$root/scripts/skipped_tests.py" "$root/build-asan/junit.xml" "$root/build/junit.xml"
exit "$rc"
