#!/usr/bin/env bash
# tests/gpu/check.sh - every check that needs a GPU, as one command on a bare
# GPU machine (DESIGN.md decision 8): the CUDA toolkit, CMake, a C++ compiler
# and PyTorch are expected there; nothing else, no LLVM and no network.
#
#   scripts/gpu_deps.sh                     # here, once: .gpu-deps (headers,
#                                           # Lua, Fashion-MNIST, AOT archives)
#   bash tests/gpu/check.sh                 # there, from the repository root
#
# Stages, each with its own time limit inside one budget (GRAPHC_GPU_BUDGET,
# default 420 s, build included); a stage that would not fit in what is left
# is skipped and says so:
#   machine    CPU flags, GPU, driver, toolkit, compiler, PyTorch
#   build      CUDA-only (-DGRAPHC_CPU_BACKEND=OFF: no LLVM), graphc and its
#              tests, with CMAKE_PREFIX_PATH=.gpu-deps/usr
#   cuda tests graphc_tests '[cuda]': every op and its gradient, and whole
#              steps, against the double-precision interpreter at 1e-4
#   train      the seed MLP 2 epochs on the cuda target; its test accuracy
#              against the interpreter's figures (tests/gpu/reference.txt)
#   nccl       graphc train --distributed as one process: the gradient
#              allreduced by a one-rank NCCL communicator on the GPU, losses
#              against the fused step's (skipped where libnccl is missing)
#   eval       the trained weights on 2,000 test images, cuda against the
#              interpreter: every output at 1e-4, every class the same
#   aot        the cuda and cpu `--emit lib` archives (made here by
#              gpu_deps.sh) linked into tests/gpu/aot_compare.c, under SGD
#   bench      the seed MLP step, graphc against PyTorch on the same GPU
#   lenet      examples/lenet.model, one epoch on the GPU: accuracy, samples/s
#   sanitizer  compute-sanitizer memcheck and racecheck over a few steps of
#              the seed MLP and LeNet
#
# It always ends with a summary, also when stopped (trap), and leaves exactly
# two files in $OUT (or build-gpu/out): summary.txt and logs.tar.gz. Exit 0
# only when no stage failed.
#
# With GRAPHC_CUDA_DEVICE=emulate the same script runs on a machine without a
# GPU against the emulated device (runtime/cuda/Emulator.h): that is how CI
# runs it (scripts/test.sh), so that only the GPU itself is left for a GPU
# machine. Then training and LeNet use a subset (2,048 and 1,024 samples;
# the MLP against the interpreter on the same subset), and the stages that need the
# real device are skipped and say so: compute-sanitizer and the speed
# comparison. The ahead-of-time libraries come from GRAPHC_GPU_AOT, written
# by a graphc with LLVM (the cuda one with --arch host).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
t_start=$(date +%s)
budget=${GRAPHC_GPU_BUDGET:-420}
emulated=0
[ "${GRAPHC_CUDA_DEVICE:-}" = emulate ] && emulated=1
# The emulated device on a 2-core CI machine builds and runs far slower.
slow=1
[ "$emulated" = 1 ] && slow=4
deadline=$((t_start + budget))
out=${OUT:-$root/build-gpu/out}
build=${GRAPHC_GPU_BUILD:-$root/build-gpu}
deps=$root/.gpu-deps
work=$(mktemp -d "${TMPDIR:-/tmp}/graphc-gpu.XXXXXX")
logs=$work/logs
mkdir -p "$out" "$logs"
jobs=${JOBS:-$(nproc)}

declare -a rows=() # "stage|result|seconds|detail"
row() { rows+=("$1|$2|$3|$4"); }

finish() {
  local rc=$?
  trap - EXIT INT TERM
  {
    echo "==================== graphc GPU check: summary ===================="
    [ -s "$logs/machine.txt" ] && sed -n '1,6p' "$logs/machine.txt"
    echo
    printf '%-34s %-6s %6s  %s\n' stage result sec detail
    for r in "${rows[@]}"; do
      IFS='|' read -r s res sec det <<<"$r"
      printf '%-34s %-6s %6s  %s\n' "$s" "$res" "$sec" "$det"
    done
    if [ -s "$logs/bench.txt" ]; then
      echo
      echo "training steps, medians of the timed steps (same GPU, same run; seed MLP at batch 256):"
      cat "$logs/bench.txt"
    fi
    echo "total $(($(date +%s) - t_start)) s of a ${budget} s budget"
  } | { mkdir -p "$out" && tee "$out/summary.txt"; } # $out may lie in the removed build
  tar -czf "$out/logs.tar.gz" -C "$work" logs 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT
stage_pid=
trap '[ -n "$stage_pid" ] && kill -TERM "$stage_pid" 2>/dev/null
      row "stopped" FAIL $(($(date +%s) - t_start)) "by a signal"; exit 130' INT TERM

# stage NAME LIMIT MIN CMD...: runs CMD into $logs/NAME.log with a limit of
# LIMIT seconds or what is left of the budget (less a reserve for the
# summary), or skips it when under MIN seconds are left. Sets stage_rc
# (77: skipped) and stage_s.
stage() {
  local name=$1 limit=$2 min=$3
  shift 3
  local left=$((deadline - $(date +%s) - 10))
  ((limit > left)) && limit=$left
  stage_s=0
  if ((limit < min)); then
    stage_rc=77
    echo "--- $name: skipped, ${left}s of the budget left, needs ${min}s"
    return
  fi
  local t0=$(date +%s)
  echo "--- $name (limit ${limit}s)"
  # In the background and waited for: a signal then reaches the trap at
  # once (bash runs traps only between commands), which stops the stage.
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1 &
  stage_pid=$!
  wait "$stage_pid"
  stage_rc=$?
  stage_pid=
  stage_s=$(($(date +%s) - t0))
  if [ "$stage_rc" -ne 0 ]; then
    echo "    failed (exit $stage_rc$([ "$stage_rc" -eq 124 ] && echo ', timed out')); last lines:"
    tail -n 30 "$logs/$name.log" | sed 's/^/    | /'
  fi
}
skipped() { row "$1" SKIP 0 "not enough of the budget left"; }

# --- the machine ---------------------------------------------------------------------
# cuDNN is optional (never carried: too big): the convolutions run through it
# where this machine's toolkit has it, else as graphc's generated kernels.
if [ "$emulated" = 1 ]; then
  cudnn_line="emulated (GRAPHC_NO_CUDNN=1 tests the generated kernels)"
elif cudnn_so=$(ls /usr/local/cuda/lib64/libcudnn.so.9 /usr/lib/x86_64-linux-gnu/libcudnn.so.9 \
  2>/dev/null | head -n1) && [ -n "$cudnn_so" ]; then
  cudnn_line="$cudnn_so: convolutions through cuDNN"
else
  cudnn_line="no libcudnn.so.9: convolutions by graphc's generated kernels"
fi
{
  if [ "$emulated" = 1 ]; then
    echo "gpu: none: graphc's emulated device (GRAPHC_CUDA_DEVICE=emulate)"
  else
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n1)"
  fi
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "cuda: $( (nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version 2>/dev/null) | grep -o 'release [0-9.]*' | head -n1)"
  echo "cudnn: $cudnn_line"
  echo "compiler: $(c++ --version 2>/dev/null | head -n1); $(cmake --version 2>/dev/null | head -n1)"
  echo "torch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null)"
  echo "cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2- | tr ' ' '\n' | grep -E '^(avx|avx2|fma|avx512f|avx512bw|avx512vl|avx512_bf16|amx_tile)$' | tr '\n' ' ')"
  echo
  nvidia-smi 2>&1 | head -n 20
  echo
  grep -m1 '^flags' /proc/cpuinfo
} >"$logs/machine.txt" 2>&1
sed -n '1,6p' "$logs/machine.txt"
if [ "$emulated" = 0 ] && ! nvidia-smi >/dev/null 2>&1; then
  row "gpu" FAIL 0 "nvidia-smi sees no GPU"
fi

# --- build: CUDA-only, no LLVM ---------------------------------------------------------
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DGRAPHC_CPU_BACKEND=OFF -DCMAKE_DISABLE_FIND_PACKAGE_LLVM=ON)
[ -d "$deps/usr" ] && cmake_args+=(-DCMAKE_PREFIX_PATH="$deps/usr")
command -v ninja >/dev/null && cmake_args+=(-G Ninja)
[ -d /usr/local/cuda ] && cmake_args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
# GRAPHC_GPU_KEEP_BUILD=1 builds on what is there (a local rerun).
[ "${GRAPHC_GPU_KEEP_BUILD:-0}" = 1 ] || rm -rf "$build"
stage configure 60 10 cmake -S "$root" -B "$build" "${cmake_args[@]}"
if [ "$stage_rc" -ne 0 ]; then
  pk=$(grep -o 'Could NOT find [A-Za-z0-9_]*\|Could not find a package configuration file provided by "[^"]*"\|LUA51_[A-Z_]*-NOTFOUND' "$logs/configure.log" | sort -u | tr '\n' ' ')
  row "configure (CUDA-only)" FAIL "$stage_s" "${pk:-see configure.log}$([ -d "$deps/usr" ] || echo '; no .gpu-deps: run scripts/gpu_deps.sh where apt works and carry it')"
  exit 1
fi
if ! grep -q "building the cuda target" "$logs/configure.log" || grep -q "no cuBLASLt" "$logs/configure.log"; then
  row "configure (CUDA-only)" FAIL "$stage_s" "CMake found no CUDA toolkit with NVRTC and cuBLASLt"
  exit 1
fi
row "configure (CUDA-only)" PASS "$stage_s" ""
targets=(graphc graphc_tests)
if [ "$emulated" = 1 ]; then
  targets+=(graphc_cuda_emulated)
else
  targets+=(step_bench)
fi
stage build $((240 * slow)) 30 cmake --build "$build" -j"$jobs" --target "${targets[@]}"
if [ "$stage_rc" -eq 77 ]; then
  row "build (-j$jobs)" FAIL 0 "not enough of the budget left to build (GRAPHC_GPU_BUDGET=$budget)"
  exit 1
elif [ "$stage_rc" -ne 0 ]; then
  row "build (-j$jobs)" FAIL "$stage_s" "$(grep -m1 -E 'error|FAILED' "$logs/build.log" | cut -c1-100)"
  exit 1
fi
graphc=$build/graphc
if ldd "$graphc" | grep -qi llvm; then
  row "build (-j$jobs)" FAIL "$stage_s" "graphc links LLVM: GRAPHC_CPU_BACKEND=OFF must not"
  exit 1
fi
row "build (-j$jobs)" PASS "$stage_s" "graphc, graphc_tests (no LLVM)"
tests=$build/tests/graphc_tests

# --- [cuda] tests: against the interpreter ------------------------------------------------
stage cuda_tests $((150 * slow)) 20 "$tests" '[cuda]' --durations yes
detail=$(grep -E '^(All tests passed|test cases:)' "$logs/cuda_tests.log" | tail -n1)
if [ "$stage_rc" -eq 77 ]; then
  skipped "graphc_tests [cuda]"
elif [ "$stage_rc" -eq 0 ] && grep -q "skipped" "$logs/cuda_tests.log"; then
  row "graphc_tests [cuda]" FAIL "$stage_s" "GPU checks skipped: $(grep -m1 -A1 'no CUDA' "$logs/cuda_tests.log" | tr -s ' \n' ' ' | cut -c1-100)"
elif [ "$stage_rc" -eq 0 ]; then
  row "graphc_tests [cuda]" PASS "$stage_s" "$detail; $(grep -q 'this machine has no cuDNN' \
    "$logs/cuda_tests.log" && echo 'convolutions by generated kernels (no cuDNN)' ||
    echo 'convolutions by cuDNN')"
else
  row "graphc_tests [cuda]" FAIL "$stage_s" "${detail:-exit $stage_rc}"
fi

# --- two epochs of the seed MLP against the interpreter's figures -------------------------
if ls "$deps"/fashion-mnist/*-idx?-ubyte.gz >/dev/null 2>&1; then
  data=$deps/fashion-mnist
elif ls /usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz >/dev/null 2>&1; then
  data=/usr/share/datasets/fashion-mnist
else
  data=
fi
if [ -z "$data" ]; then
  row "train 2 epochs --target cuda" SKIP 0 "no Fashion-MNIST here (scripts/gpu_deps.sh carries it)"
elif [ "$emulated" = 1 ]; then
  # A subset, against the interpreter on the same subset.
  subset=(--epochs 1 --data "$data" --train-limit 2048 --test-limit 1000 --progress none)
  stage train_cuda 300 15 "$graphc" train examples/mlp.model --target cuda "${subset[@]}" \
    --metrics "$logs/metrics_cuda.jsonl" --save "$work/mlp_cuda.safetensors"
  cuda_rc=$stage_rc cuda_s=$stage_s
  stage train_interp 300 15 "$graphc" train examples/mlp.model --target interp "${subset[@]}" \
    --metrics "$logs/metrics_interp.jsonl"
  if [ "$stage_rc" -eq 77 ]; then
    skipped "train 2,048 samples --target cuda"
  elif [ "$cuda_rc" -ne 0 ] || [ "$stage_rc" -ne 0 ]; then
    row "train 2,048 samples --target cuda" FAIL "$cuda_s" "see train_cuda.log, train_interp.log"
  else
    verdict=$(python3 -c 'import json,sys
c=[json.loads(l) for l in open(sys.argv[1])][-1]["test_acc"]*100
i=[json.loads(l) for l in open(sys.argv[2])][-1]["test_acc"]*100
print("%s cuda %.2f%% vs interp %.2f%% on the same 2,048 samples (within 1 pt)" % ("PASS" if abs(c-i) <= 1 else "FAIL", c, i))' \
      "$logs/metrics_cuda.jsonl" "$logs/metrics_interp.jsonl" 2>&1)
    res=FAIL
    [[ $verdict == PASS* ]] && res=PASS
    row "train 2,048 samples --target cuda" "$res" "$cuda_s" "${verdict#* }"
  fi
else
  stage train_cuda 90 15 "$graphc" train examples/mlp.model --epochs 2 --target cuda \
    --data "$data" --progress none --metrics "$logs/metrics_cuda.jsonl" \
    --save "$work/mlp_cuda.safetensors"
  if [ "$stage_rc" -eq 77 ]; then
    skipped "train 2 epochs --target cuda"
  elif [ "$stage_rc" -eq 0 ] && [ -s "$logs/metrics_cuda.jsonl" ]; then
    verdict=$(python3 "$root/tests/gpu/accuracy.py" "$logs/metrics_cuda.jsonl" \
      "$root/tests/gpu/reference.txt" 2>&1)
    vrc=$?
    res=FAIL
    [ "$vrc" -eq 0 ] && [[ $verdict == PASS* ]] && res=PASS
    row "train 2 epochs --target cuda" "$res" "$stage_s" "${verdict#* }"
  else
    row "train 2 epochs --target cuda" FAIL "$stage_s" "$(tail -n1 "$logs/train_cuda.log" | cut -c1-100)"
  fi
fi

# --- one data-parallel process: the gradient allreduced by NCCL on the GPU ---------------
# graphc train --distributed without mpirun (or without MPI at all, as on a
# GPU machine) is one process: a one-rank NCCL communicator (ncclCommInitRank
# with nranks 1) allreduces each step's gradient on the step's stream, between
# the gradients and update programs. Every epoch's loss against the same run
# without --distributed (the fused step), at 1e-5 relative, on
# tests/models/dropout_sgd.model: SGD, whose step is proportional to the
# gradient (adagrad's hardly sees a gradient scaled by a wrong weight).
# Skipped, saying why, where graphc finds no libnccl.so.2.
nccl_args=(train "$root/tests/models/dropout_sgd.model" --target cuda --data synthetic
  --train-limit 512 --test-limit 100 --epochs 4 --batch 128 --progress none)
stage nccl_plain $((60 * slow)) 10 "$graphc" "${nccl_args[@]}" --metrics "$logs/nccl_plain.jsonl"
plain_rc=$stage_rc
stage nccl $((60 * slow)) 10 "$graphc" "${nccl_args[@]}" --distributed \
  --metrics "$logs/nccl_dist.jsonl"
nccl_path=$(grep -o 'gradient allreduced by [^;]*' "$logs/nccl.log" 2>/dev/null | head -n1)
if [ "$stage_rc" -eq 77 ] || [ "$plain_rc" -eq 77 ]; then
  skipped "nccl allreduce (1 process)"
elif [ "$stage_rc" -ne 0 ] || [ "$plain_rc" -ne 0 ]; then
  row "nccl allreduce (1 process)" FAIL "$stage_s" "see nccl.log, nccl_plain.log"
elif [[ $nccl_path != *"by NCCL"* ]]; then
  echo "nccl: skipped: ${nccl_path:-the run does not say how it allreduced}"
  row "nccl allreduce (1 process)" SKIP "$stage_s" "${nccl_path:-no allreduce path reported}"
else
  verdict=$(python3 -c 'import json,sys
a=[json.loads(l)["train_loss"] for l in open(sys.argv[1])]
b=[json.loads(l)["train_loss"] for l in open(sys.argv[2])]
worst=max(abs(x-y)/abs(y) for x,y in zip(a,b)) if a and len(a)==len(b) else float("inf")
print("%s %d epochs, losses within %.1g of the fused step (1e-5)" % ("PASS" if worst<=1e-5 else "FAIL", len(a), worst))' \
    "$logs/nccl_dist.jsonl" "$logs/nccl_plain.jsonl" 2>&1)
  res=FAIL
  [[ $verdict == PASS* ]] && res=PASS
  echo "nccl: ${nccl_path#gradient allreduced by }: ${verdict}"
  row "nccl allreduce (1 process)" "$res" "$stage_s" "${nccl_path#gradient allreduced by }: ${verdict#* }"
fi

# --- the trained weights evaluated on the GPU and in the interpreter -------------------------
# The same checkpoint and the first 2,000 test images: every output against
# the double-precision interpreter's, and the same class for every sample.
if [ -s "$work/mlp_cuda.safetensors" ]; then
  eval_args=(examples/mlp.model --weights "$work/mlp_cuda.safetensors" --data "$data"
    --test-limit 2000)
  stage eval_cuda 30 5 "$graphc" eval "${eval_args[@]}" --target cuda \
    --dump-outputs "$work/out_cuda.f32"
  cuda_eval_rc=$stage_rc
  stage eval_interp 90 20 "$graphc" eval "${eval_args[@]}" --target interp \
    --dump-outputs "$work/out_interp.f32"
  if [ "$stage_rc" -eq 77 ]; then
    skipped "eval cuda vs interp (2,000 images)"
  elif [ "$cuda_eval_rc" -ne 0 ] || [ "$stage_rc" -ne 0 ]; then
    row "eval cuda vs interp (2,000 images)" FAIL "$stage_s" "eval failed: see eval_cuda.log, eval_interp.log"
  else
    verdict=$(python3 "$root/tests/gpu/compare_outputs.py" "$work/out_cuda.f32" \
      "$work/out_interp.f32" 10 2>&1)
    res=FAIL
    [[ $verdict == PASS* ]] && res=PASS
    row "eval cuda vs interp (2,000 images)" "$res" "$stage_s" "${verdict#* }"
  fi
fi

# --- the ahead-of-time cuda library against the cpu one ------------------------------------
# Under emulation the archives come from GRAPHC_GPU_AOT (the cuda one written
# with --arch host: source, not PTX), and the emulated device stands in for
# libcuda and cuBLASLt in the program that links them.
aot=$deps/aot
aot_env=()
if [ "$emulated" = 1 ]; then
  aot=${GRAPHC_GPU_AOT:-$deps/aot-host}
  aot_env=(env GRAPHC_EMULATED_LIB="$build/libgraphc_cuda_emulated.a")
fi
if [ -f "$aot/mlpg.h" ] && [ -f "$aot/mlpc.h" ]; then
  stage aot_cuda $((60 * slow)) 15 "${aot_env[@]}" bash "$root/tests/gpu/aot_check.sh" --prebuilt "$aot" "$work/aot" 12
  if [ "$stage_rc" -eq 77 ]; then
    skipped "AOT cuda lib vs cpu lib (SGD)"
  else
    res=FAIL
    [ "$stage_rc" -eq 0 ] && res=PASS
    row "AOT cuda lib vs cpu lib (SGD)" "$res" "$stage_s" "$( (grep -m1 '^AOT_COMPARE' "$logs/aot_cuda.log" || tail -n1 "$logs/aot_cuda.log") | cut -d' ' -f2- | cut -c1-100)"
  fi
else
  row "AOT cuda lib vs cpu lib (SGD)" SKIP 0 "no archives in $aot (a graphc with LLVM writes them: tests/gpu/aot_check.sh GRAPHC DIR --write-only)"
fi

# --- compute-sanitizer: out-of-bounds accesses (memcheck) and shared-memory races
# (racecheck) in every kernel of a few steps of the seed MLP and LeNet --------------------
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ "$emulated" = 1 ]; then
  row "compute-sanitizer" SKIP 0 "needs a GPU"
elif [ -x "$sanitizer" ] && [ -n "$data" ]; then
  for tool in memcheck racecheck; do
    stage "sanitize_$tool" 90 30 bash -c '
      set -e
      for m in mlp lenet; do
        "$1" --tool "$2" --error-exitcode 9 --leak-check no "$3" train "examples/$m.model" \
          --epochs 1 --target cuda --data "$4" --train-limit 1024 --test-limit 256 --progress none
      done' _ "$sanitizer" "$tool" "$graphc" "$data"
    if [ "$stage_rc" -eq 77 ]; then
      skipped "compute-sanitizer $tool"
    elif [ "$stage_rc" -eq 0 ]; then
      row "compute-sanitizer $tool" PASS "$stage_s" "mlp and lenet, 4 steps each: $(grep -m1 -o '\(ERROR\|RACECHECK\) SUMMARY: .*' "$logs/sanitize_$tool.log")"
    else
      row "compute-sanitizer $tool" FAIL "$stage_s" "$( (grep -m1 -E 'Invalid|Race|ERROR SUMMARY|not supported' "$logs/sanitize_$tool.log" || tail -n1 "$logs/sanitize_$tool.log") | cut -c1-100)"
    fi
  done
fi

# --- step time: graphc against PyTorch on this GPU ----------------------------------------
: >"$logs/bench.txt"
if [ "$emulated" = 1 ]; then
  row "bench graphc step, PyTorch" SKIP 0 "speed is measured on a GPU"
else
  stage bench_graphc 60 20 "$tests" '[.cuda_bench]'
  if [ "$stage_rc" -eq 77 ]; then
    skipped "bench graphc step"
  elif [ "$stage_rc" -eq 0 ] && grep -q GRAPHC_GPU_BENCH "$logs/bench_graphc.log"; then
    grep GRAPHC_GPU_BENCH "$logs/bench_graphc.log" |
      sed -E 's/.*variant=([^ ]*) median_us=([^ ]*).*/  graphc cuda \1: \2 us/' >>"$logs/bench.txt"
    row "bench graphc step" PASS "$stage_s" ""
  else
    row "bench graphc step" FAIL "$stage_s" "see bench_graphc.log"
  fi
  stage bench_torch 120 30 python3 "$root/bench/gpu_step.py" --batch 256 --steps 200 --warmup 30
  if [ "$stage_rc" -eq 77 ]; then
    skipped "bench pytorch"
  else
    torch_ver=$(grep -m1 '^# torch' "$logs/bench_torch.log" | awk '{print $3}')
    grep TORCH_GPU_BENCH "$logs/bench_torch.log" | while read -r _ v rest; do
      echo "  pytorch ${torch_ver:-?} ${v#variant=}: $(sed -nE 's/.*median_us=([^ ]*).*/\1 us/p' <<<"$rest")$(grep -o 'FAIL.*' <<<"$rest")" >>"$logs/bench.txt"
    done
    res=FAIL
    [ "$stage_rc" -eq 0 ] && res=PASS
    row "bench pytorch (eager, compile)" "$res" "$stage_s" "torch ${torch_ver:-?}"
  fi
fi

# --- a convnet on the GPU: LeNet, one epoch (a record for issue 14's work) -----------------
if [ -n "$data" ]; then
  lenet_subset=()
  [ "$emulated" = 1 ] && lenet_subset=(--train-limit 1024 --test-limit 500)
  stage train_lenet $((60 * slow)) 20 "$graphc" train examples/lenet.model --epochs 1 --target cuda \
    --data "$data" --progress none --metrics "$logs/metrics_lenet.jsonl" "${lenet_subset[@]}"
  if [ "$stage_rc" -eq 77 ]; then
    skipped "lenet 1 epoch --target cuda"
  elif [ "$stage_rc" -eq 0 ] && [ -s "$logs/metrics_lenet.jsonl" ]; then
    # What ran the convolutions (cuDNN, how many fused by its graph API).
    convs=$(grep -o 'convolutions by .*' "$logs/train_lenet.log" | head -n1 | cut -c1-110)
    row "lenet 1 epoch --target cuda" PASS "$stage_s" "$(python3 -c 'import json,sys; m=[json.loads(l) for l in open(sys.argv[1])][-1]; print("test accuracy %.2f%%, %.0f samples/s" % (100*m["test_acc"], m["samples_per_s"]))' "$logs/metrics_lenet.jsonl")${convs:+; $convs}"
  else
    row "lenet 1 epoch --target cuda" FAIL "$stage_s" "$(tail -n1 "$logs/train_lenet.log" | cut -c1-100)"
  fi
fi

# --- convnets' steps next to PyTorch on this GPU (issue 14 point 3) --------------------
# LeNet at batch 256 and the CIFAR VGG with BatchNorm at batch 128: graphc's
# step (bench/step_bench.cpp, host batches) and PyTorch's, eager and under
# torch.compile (bench/torch_cnn_step.py ... cuda), with the step's GFLOP/s;
# and graphc's step again with GRAPHC_NO_CUDNN_FUSION=1, to show what
# cuDNN's graph API fusion of conv + bias (+ ReLU) gains where it fuses.
if [ "$emulated" = 0 ] && [ -x "$build/step_bench" ]; then
  stage bench_cnn 170 40 bash -c '
    for mb in examples/lenet.model:256 bench/vgg_cifar_bn.model:128; do
      m=${mb%%:*} b=${mb##*:}
      echo "GRAPHC_CNN $m $(timeout 60 "$1/step_bench" "$m" --batch "$b" --steps 20 --warmup 3)"
      echo "GRAPHC_CNN_UNFUSED $m $(GRAPHC_NO_CUDNN_FUSION=1 timeout 40 "$1/step_bench" "$m" \
        --batch "$b" --steps 20 --warmup 3)"
      timeout 75 python3 bench/torch_cnn_step.py "$m" "$b" 20 cuda | sed "s|^|TORCH_CNN $m |"
    done' _ "$build"
  if [ "$stage_rc" -eq 77 ]; then
    skipped "bench convnets (lenet, vgg-bn)"
  else
    python3 - "$logs/bench_cnn.log" >>"$logs/bench.txt" <<'PY' 2>&1
import json, sys
rows = {}
for line in open(sys.argv[1]):
    kind, _, rest = line.partition(" ")
    if kind not in ("GRAPHC_CNN", "GRAPHC_CNN_UNFUSED", "TORCH_CNN"):
        continue
    model, _, js = rest.partition(" ")
    try:
        r = json.loads(js)
    except ValueError:
        continue
    rows.setdefault(model, []).append((kind, r))
for model, rs in rows.items():
    flops = next((r["flops"] for k, r in rs if "flops" in r), None)
    out = []
    for k, r in rs:
        name = {"GRAPHC_CNN": "graphc", "GRAPHC_CNN_UNFUSED": "graphc unfused"}.get(
            k, "pytorch " + r.get("variant", "?"))
        if "step_ms_median" in r:
            ms = r["step_ms_median"]
            g = " (%.0f GFLOP/s)" % (flops / ms / 1e6) if flops else ""
            out.append("%s %.2f ms%s" % (name, ms, g))
        else:
            out.append("%s failed" % name)
    print("  %s, batch %s: %s" % (model.split("/")[-1], rs[0][1].get("batch", "?"), "; ".join(out)))
PY
    res=FAIL
    [ "$stage_rc" -eq 0 ] && grep -q '^GRAPHC_CNN .*step_ms_median' "$logs/bench_cnn.log" && res=PASS
    row "bench convnets (lenet, vgg-bn)" "$res" "$stage_s" "see the table below"
  fi
fi

# Exit status: 0 only when no row failed.
for r in "${rows[@]}"; do
  case $r in *"|FAIL|"*) exit 1 ;; esac
done
exit 0
