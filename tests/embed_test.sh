#!/usr/bin/env bash
# tests/embed_test.sh GRAPHC SOURCE_DIR - builds examples/embed's C and C++
# programs against the library `graphc compile --emit lib` writes, with
# nothing else than libc, libm and pthreads, and runs each for 100 steps:
# each must print its loss falling and exit 0.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/examples/embed" "$work/embed"
cp "$src/examples/mlp.model" "$work/mlp.model"

echo "== C program (make)"
make -s -C "$work/embed/c" GRAPHC="$graphc" >/dev/null
# The program links the archive and nothing of graphc or LLVM.
if ldd "$work/embed/c/train" | grep -qiE 'llvm|graphc|stdc\+\+'; then
  echo "FAIL: the C program depends on more than libc, libm and pthreads:"; ldd "$work/embed/c/train"; exit 1
fi
(cd "$work/embed/c" && ./train 100)

echo "== C++ program (cmake)"
cmake -S "$work/embed/cpp" -B "$work/embed/cpp/build" -DGRAPHC="$graphc" >/dev/null
cmake --build "$work/embed/cpp/build" >/dev/null
"$work/embed/cpp/build/train" 100
echo "1 passed, 0 failed"
