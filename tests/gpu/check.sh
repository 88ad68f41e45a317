#!/usr/bin/env bash
# tests/gpu/check.sh - the checks that need a GPU, in one run on the
# accelerator machine (DESIGN.md decision 8): build graphc there, run the
# [cuda] tests (every op, whole steps against the CPU backend, determinism),
# train the seed MLP 2 epochs on the cuda and cpu targets and compare test
# accuracy, and time the seed MLP's step against PyTorch (eager and
# torch.compile reduce-overhead) on the same GPU; and link the cuda target's
# ahead-of-time library beside the cpu one and compare their steps
# (tests/gpu/aot_check.sh). Ends with a summary table,
# also when a stage fails (that row says FAIL). Installs nothing.
#
#   bash tests/gpu/check.sh            # from the repository root, < 5 minutes on an H100
#
# Environment: GRAPHC_PREBUILT=DIR uses DIR/graphc and DIR/tests/graphc_tests
# instead of building (DIR/lib, if there, goes on LD_LIBRARY_PATH); JOBS
# (default 16); OUT, when set, receives the logs.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
jobs=${JOBS:-16}
build=${GRAPHC_PREBUILT:-$root/build-gpu}
logs=${OUT:-$build/gpu-logs}
mkdir -p "$logs"
script_start=$(date +%s)

declare -a rows=()  # "stage|result|seconds|detail"
row() { rows+=("$1|$2|$3|$4"); }

summary() {
  echo
  echo "==================== graphc GPU check: summary ===================="
  printf '%-34s %-6s %7s  %s\n' stage result seconds detail
  for r in "${rows[@]}"; do
    IFS='|' read -r s res sec det <<<"$r"
    printf '%-34s %-6s %7s  %s\n' "$s" "$res" "$sec" "$det"
  done
  if [ -s "$logs/bench.txt" ]; then
    echo
    echo "seed MLP training step, batch 256, median of 200 after warm-up (same GPU, same run):"
    printf '  %-40s %12s\n' system "median us"
    while read -r sys us; do printf '  %-40s %12s\n' "$sys" "$us"; done <"$logs/bench.txt"
  fi
  echo "total $(($(date +%s) - script_start)) s; logs in $logs"
}
trap summary EXIT

# Runs a stage with a time limit; its output goes to $logs/NAME.log (and the
# last lines to the terminal on failure). Sets stage_rc and stage_s.
stage() {
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  echo "--- $name (limit ${limit}s)"
  set +e
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  stage_rc=$?
  set -e
  stage_s=$(($(date +%s) - t0))
  if [ "$stage_rc" -ne 0 ]; then
    echo "    failed (exit $stage_rc$([ "$stage_rc" -eq 124 ] && echo ', timed out')); last lines:"
    tail -n 25 "$logs/$name.log" | sed 's/^/    | /'
  fi
}

# --- 0. the machine ------------------------------------------------------------
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n1 || true)
echo "GPU: ${gpu:-none seen by nvidia-smi}"
if [ -z "$gpu" ]; then
  row "gpu" FAIL 0 "nvidia-smi sees no GPU"
fi

# --- 1. build --------------------------------------------------------------------
if [ -n "${GRAPHC_PREBUILT:-}" ]; then
  [ -d "$build/lib" ] && export LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if [ -x "$build/graphc" ] && [ -x "$build/tests/graphc_tests" ]; then
    row "build" SKIP 0 "prebuilt binaries from $build"
  else
    row "build" FAIL 0 "GRAPHC_PREBUILT=$build lacks graphc or tests/graphc_tests"
    exit 1
  fi
else
  missing=()
  command -v cmake >/dev/null || missing+=("cmake")
  command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++20 compiler (g++ or clang++)")
  [ -f /usr/lib/llvm-19/lib/cmake/llvm/LLVMConfig.cmake ] || missing+=("LLVM 19 (Debian/Ubuntu: llvm-19-dev)")
  have_cmake_pkg() { # a CMake package config file anywhere usual
    find /usr/lib /usr/lib64 /usr/share /usr/local/lib /usr/local/share /opt -maxdepth 5 \
      -iname "$1" 2>/dev/null | grep -q .
  }
  have_cmake_pkg 'fmt-config.cmake' || missing+=("fmt (libfmt-dev)")
  have_cmake_pkg 'CLI11Config.cmake' || have_cmake_pkg 'CLI11-config.cmake' || missing+=("CLI11 (libcli11-dev)")
  have_cmake_pkg 'Catch2Config.cmake' || missing+=("Catch2 v2 (catch2)")
  have_cmake_pkg 'nlohmann_jsonConfig.cmake' || missing+=("nlohmann_json (nlohmann-json3-dev)")
  [ -f /usr/include/zlib.h ] || missing+=("zlib (zlib1g-dev)")
  [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null || missing+=("the CUDA toolkit (nvcc, NVRTC, cuBLASLt)")
  if ((${#missing[@]})); then
    echo "cannot build graphc here: missing ${missing[*]}"
    echo "(this machine has no network: build elsewhere and set GRAPHC_PREBUILT, or add them to the image)"
    row "build" FAIL 0 "missing: $(IFS=,; echo "${missing[*]}")"
    exit 1
  fi
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  stage configure 120 cmake -S "$root" -B "$build" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release
  if [ "$stage_rc" -ne 0 ]; then
    pk=$(grep -o 'provided by "[^"]*"\|Could NOT find [A-Za-z0-9_]*' "$logs/configure.log" | sort -u | tr '\n' ' ' || true)
    row "configure" FAIL "$stage_s" "cmake failed ${pk:+($pk)}"
    exit 1
  fi
  if ! grep -q "building the cuda target" "$logs/configure.log"; then
    row "configure" FAIL "$stage_s" "CMake found no CUDA toolkit with NVRTC"
    exit 1
  fi
  if grep -q "no cuBLASLt" "$logs/configure.log"; then
    row "configure" FAIL "$stage_s" "the CUDA toolkit here has no cuBLASLt"
    exit 1
  fi
  row "configure" PASS "$stage_s" ""
  stage build 300 cmake --build "$build" -j"$jobs"
  if [ "$stage_rc" -ne 0 ]; then
    row "build (Release, -j$jobs)" FAIL "$stage_s" "see $logs/build.log"
    exit 1
  fi
  row "build (Release, -j$jobs)" PASS "$stage_s" ""
fi
graphc=$build/graphc
tests=$build/tests/graphc_tests

# --- 2. the [cuda] tests ----------------------------------------------------------------
stage cuda_tests 240 "$tests" '[cuda]'
detail=$(grep -E '^(All tests passed|test cases:)' "$logs/cuda_tests.log" | tail -n1 || true)
if [ "$stage_rc" -eq 0 ] && grep -q "skipped" "$logs/cuda_tests.log"; then
  row "graphc_tests [cuda]" FAIL "$stage_s" "GPU checks skipped: $(grep -m1 -A1 'skipped' "$logs/cuda_tests.log" | tr -s ' \n' ' ' | cut -c1-120)"
elif [ "$stage_rc" -eq 0 ]; then
  row "graphc_tests [cuda]" PASS "$stage_s" "$detail"
else
  row "graphc_tests [cuda]" FAIL "$stage_s" "${detail:-exit $stage_rc}"
fi

# --- 3. two epochs on each target ---------------------------------------------------
data=/usr/share/datasets/fashion-mnist
if ls "$data"/*-idx?-ubyte.gz >/dev/null 2>&1; then
  data_flag=()
  data_name="Fashion-MNIST"
else
  echo "note: $data is absent on this machine: training on --data synthetic instead"
  data_flag=(--data synthetic)
  data_name="synthetic (no Fashion-MNIST here)"
fi
declare -A acc=()
for target in cuda cpu; do
  rm -f "$logs/metrics_$target.jsonl"
  stage "train_$target" 150 "$graphc" train examples/mlp.model --epochs 2 --target "$target" \
    ${data_flag[@]+"${data_flag[@]}"} --progress none --metrics "$logs/metrics_$target.jsonl"
  if [ "$stage_rc" -eq 0 ] && [ -s "$logs/metrics_$target.jsonl" ]; then
    acc[$target]=$(python3 -c 'import json,sys; print("%.2f" % (100 * [json.loads(l) for l in open(sys.argv[1])][-1]["test_acc"]))' "$logs/metrics_$target.jsonl")
    row "train 2 epochs --target $target" PASS "$stage_s" "test accuracy ${acc[$target]}% on $data_name"
  else
    row "train 2 epochs --target $target" FAIL "$stage_s" "$(tail -n1 "$logs/train_$target.log" | cut -c1-100)"
  fi
done
if [ -n "${acc[cuda]:-}" ] && [ -n "${acc[cpu]:-}" ]; then
  if python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) <= 0.5 else 1)' "${acc[cuda]}" "${acc[cpu]}"; then
    row "accuracy cuda vs cpu (<= 0.5 pt)" PASS 0 "cuda ${acc[cuda]}% vs cpu ${acc[cpu]}%"
  else
    row "accuracy cuda vs cpu (<= 0.5 pt)" FAIL 0 "cuda ${acc[cuda]}% vs cpu ${acc[cpu]}%"
  fi
else
  row "accuracy cuda vs cpu (<= 0.5 pt)" FAIL 0 "a training run failed"
fi

# --- 3b. the ahead-of-time library of the cuda target ----------------------------------
stage aot_cuda 120 bash "$root/tests/gpu/aot_check.sh" "$graphc" "$logs/aot" 12
if [ "$stage_rc" -eq 0 ]; then
  row "AOT cuda lib vs AOT cpu lib" PASS "$stage_s" "$(grep -m1 '^AOT_COMPARE' "$logs/aot_cuda.log" | cut -d' ' -f3-)"
else
  row "AOT cuda lib vs AOT cpu lib" FAIL "$stage_s" "$( (grep -m1 '^AOT_COMPARE' "$logs/aot_cuda.log" || tail -n1 "$logs/aot_cuda.log") | cut -c1-100)"
fi

# --- 4. step time: graphc vs PyTorch on this GPU ------------------------------------------
: >"$logs/bench.txt"
stage bench_graphc 120 "$tests" '[.cuda_bench]'
if [ "$stage_rc" -eq 0 ] && grep -q GRAPHC_GPU_BENCH "$logs/bench_graphc.log"; then
  grep GRAPHC_GPU_BENCH "$logs/bench_graphc.log" |
    sed -E 's/.*variant=([^ ]*) median_us=([^ ]*).*/graphc cuda \1 \2/' |
    awk '{print $1"_"$2"_"$3, $4}' >>"$logs/bench.txt"
  row "bench graphc step" PASS "$stage_s" ""
else
  echo "graphc_cuda FAIL" >>"$logs/bench.txt"
  row "bench graphc step" FAIL "$stage_s" "see $logs/bench_graphc.log"
fi
stage bench_torch 200 python3 "$root/bench/gpu_step.py" --batch 256 --steps 200 --warmup 30
torch_ver=$(grep -m1 '^# torch' "$logs/bench_torch.log" | awk '{print $3}' || true)
if grep -q TORCH_GPU_BENCH "$logs/bench_torch.log"; then
  grep TORCH_GPU_BENCH "$logs/bench_torch.log" | while read -r _ v rest; do
    name="pytorch_${torch_ver:-?}_${v#variant=}"
    us=$(sed -nE 's/.*median_us=([^ ]*).*/\1/p' <<<"$rest")
    echo "$name ${us:-FAIL}" >>"$logs/bench.txt"
  done
fi
if [ "$stage_rc" -eq 0 ]; then
  row "bench pytorch (eager, compile)" PASS "$stage_s" "torch ${torch_ver:-?}"
else
  row "bench pytorch (eager, compile)" FAIL "$stage_s" "see $logs/bench_torch.log"
fi

# Exit status: 0 only when every row passed (or was skipped).
for r in "${rows[@]}"; do
  case $r in *"|FAIL|"*) exit 1 ;; esac
done
exit 0
