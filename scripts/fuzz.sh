#!/usr/bin/env bash
# scripts/fuzz.sh TARGET SECONDS [RUNS] - fuzzes one reader with libFuzzer.
#   TARGET: model | ir | dataset | checkpoint | t7 (fuzz/TARGET_fuzz.cpp)
# Installs clang-19 and its runtime (libFuzzer, sanitizers) when missing,
# configures a clang build in build-fuzz/ (GRAPHC_FUZZ=ON), builds that one
# target and runs it for SECONDS (or RUNS executions, whichever ends first)
# over the corpus fuzz/corpus/TARGET, seeded from the examples when empty.
# fuzz/corpus/TARGET holds the saved seeds; new inputs that add coverage go
# to build-fuzz/corpus/TARGET. A crash is saved under fuzz/crashes/TARGET/
# and the script exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [RUNS]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [RUNS]}
runs=${3:--1}
case $target in model | ir | dataset | checkpoint | t7) ;; *)
  echo "fuzz: unknown target '$target' (model, ir, dataset, checkpoint, t7)" >&2
  exit 2
  ;;
esac

install_missing fuzz clang-19 libclang-rt-19-dev

build=$root/build-fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DGRAPHC_FUZZ=ON -DGRAPHC_TESTS=OFF >/dev/null
fi
nice -n 10 cmake --build "$build" --target "fuzz_$target" -j"$(nproc)"

corpus=$root/fuzz/corpus/$target
crashes=$root/fuzz/crashes/$target
mkdir -p "$corpus" "$crashes"
# The model target's seeds are also the Torch7 test scripts themselves.
seeds=("$corpus")
[ "$target" = model ] && seeds+=("$root/tests/torch7")
dict=()
[ -f "$root/fuzz/$target.dict" ] && dict=("-dict=$root/fuzz/$target.dict")
# The saved seeds (fuzz/corpus/TARGET) stay small and are only read; what
# libFuzzer finds grows in build-fuzz/corpus/TARGET, kept between runs.
work=$build/corpus/$target
mkdir -p "$work"
set +e
nice -n 10 "$build/fuzz_$target" "$work" "${seeds[@]}" "${dict[@]}" \
  -max_total_time="$seconds" -runs="$runs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$crashes/" -print_final_stats=1
status=$?
set -e
echo "fuzz: $target working corpus: $(ls "$work" | wc -l) files in $work"
if [ $status -ne 0 ]; then
  echo "fuzz: $target found a failure; saved in $crashes/" >&2
fi
exit $status
