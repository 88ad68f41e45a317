#!/usr/bin/env bash
# tests/embed_test.sh GRAPHC SOURCE_DIR TARGET - builds examples/embed's C and
# C++ programs against the library `graphc compile --emit lib` writes.
# TARGET cpu: with nothing else than libc, libm and pthreads, each runs for
# 100 steps and must print its loss falling and exit 0. TARGET cuda: both
# are built against `--target cuda --emit lib` (the CUDA driver and cuBLASLt
# added) and run: on a GPU they must train too; without one they must say so
# in one line and exit 1. Exits 77 (a skip) where graphc has no cuda target.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
target=$3
stub=$(dirname "$graphc")/cuda_stub
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/examples/embed" "$work/embed"
cp "$src/examples/mlp.model" "$work/mlp.model"

only_system_libs() { # PROGRAM EXTRA_ALLOWED_PATTERN
  local extra
  extra=$(ldd "$1" | grep -vE 'linux-vdso|ld-linux|lib(c|m|pthread|dl|rt|gcc_s)\.so' |
    grep -vE "${2:-^$}" || true)
  if [ -n "$extra" ]; then
    echo "FAIL: $1 depends on more than it may:"; echo "$extra"; exit 1
  fi
}

if [ "$target" = cpu ]; then
  echo "== C program (make)"
  make -s -C "$work/embed/c" GRAPHC="$graphc" >/dev/null
  only_system_libs "$work/embed/c/train"
  (cd "$work/embed/c" && ./train 100)

  echo "== C++ program (cmake)"
  cmake -S "$work/embed/cpp" -B "$work/embed/cpp/build" -DGRAPHC="$graphc" >/dev/null
  cmake --build "$work/embed/cpp/build" >/dev/null
  only_system_libs "$work/embed/cpp/build/train" 'libstdc\+\+'
  "$work/embed/cpp/build/train" 100
  echo "1 passed, 0 failed"
  exit 0
fi

probe=$("$graphc" compile "$work/mlp.model" --input 1x32x32 --target cuda --emit lib \
  -o "$work/probe/mlp" 2>&1) || {
  if grep -q 'built without' <<<"$probe"; then
    echo "skipped: this graphc has no cuda library output ($probe)"
    exit 77
  fi
  echo "FAIL: --target cuda --emit lib: $probe"; exit 1
}

# Runs a program linked against the cuda library: it trains on a GPU, or
# reports in one line that there is none (with the toolkit's stub standing in
# for libcuda.so.1 when the machine has no driver at all).
run_cuda() {
  local out rc=0
  local libs
  libs=$(ldd "$1") # not piped into grep -q: under pipefail its early exit can fail ldd
  if grep -q 'libcuda.so.1 => not found' <<<"$libs"; then
    out=$(LD_LIBRARY_PATH="$stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$1" 100 2>&1) || rc=$?
  else
    out=$("$1" 100 2>&1) || rc=$?
  fi
  echo "$out"
  if grep -qE 'no CUDA (driver|device)' <<<"$out"; then
    [ "$rc" = 1 ] || { echo "FAIL: exit $rc, not 1, without a GPU"; exit 1; }
    [ "$(wc -l <<<"$out")" = 1 ] || { echo "FAIL: more than one line without a GPU"; exit 1; }
    echo "(no GPU here: built, linked and refused cleanly)"
  else
    [ "$rc" = 0 ] || { echo "FAIL: exit $rc on the GPU"; exit 1; }
  fi
}

echo "== C program, cuda target (make TARGET=cuda)"
# cuDNN (and the C++ library it needs) where the toolkit has it: optional.
make -s -C "$work/embed/c" GRAPHC="$graphc" TARGET=cuda >/dev/null
only_system_libs "$work/embed/c/train" 'libcuda\.so|libcublasLt\.so|libcudnn\.so|libstdc\+\+'
(cd "$work/embed/c" && run_cuda ./train)

echo "== C++ program, cuda target (cmake -DGRAPHC_TARGET=cuda)"
cmake -S "$work/embed/cpp" -B "$work/embed/cpp/build-cuda" -DGRAPHC="$graphc" \
  -DGRAPHC_TARGET=cuda >/dev/null
cmake --build "$work/embed/cpp/build-cuda" >/dev/null
only_system_libs "$work/embed/cpp/build-cuda/train" 'libstdc\+\+|libcuda\.so|libcublasLt\.so'
run_cuda "$work/embed/cpp/build-cuda/train"
echo "1 passed, 0 failed"
