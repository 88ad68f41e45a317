#!/usr/bin/env bash
# tests/train_cli_test.sh GRAPHC SOURCE_DIR DATA - `graphc train` end to end on
# the CPU target. DATA synthetic: the seed MLP learns the synthetic set (test
# accuracy >= 95% in three epochs), writes a checkpoint and metrics that
# `graphc eval` reproduces. DATA fashion-mnist: one epoch of Fashion-MNIST
# reaches >= 75% test accuracy; exits 77 (a skip) where Debian's
# dataset-fashion-mnist is not installed.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
data=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

accuracy() { # the last epoch's test accuracy from --metrics, in percent
  tail -n 1 "$1" | sed -E 's/.*"test_acc":([0-9.]+).*/\1/' | awk '{printf "%.2f", 100 * $1}'
}
check() { # name value minimum
  if awk -v v="$2" -v m="$3" 'BEGIN { exit !(v >= m) }'; then
    echo "ok: $1 test accuracy $2% >= $3%"
  else
    echo "FAIL: $1 test accuracy $2% < $3%"; exit 1
  fi
}

if [ "$data" = synthetic ]; then
  "$graphc" train "$src/examples/mlp.model" --data synthetic --epochs 3 --progress lines \
    --save synth.safetensors --metrics synth.jsonl
  check synthetic "$(accuracy synth.jsonl)" 95
  "$graphc" eval "$src/examples/mlp.model" --data synthetic --weights synth.safetensors > eval.txt
  grep -q "global correct" eval.txt
  # The script's own command line after `--` (torch.CmdLine in cmdline.lua):
  # -model linear is one nn.Linear(784, 10), 7850 parameters.
  "$graphc" train "$src/tests/torch7/cmdline.lua" --data synthetic --epochs 1 --progress none \
    -- -model linear -learningRate 0.01 > cmdline.txt
  grep -q "7850 parameters" cmdline.txt || { echo "FAIL: -- -model linear"; cat cmdline.txt; exit 1; }
  # A script without criterion and optimizer takes them from the flags, and
  # trains exactly as the seed MLP that declares the same ones.
  grep -v -E "^(criterion|optimizer|config) =" "$src/examples/mlp.model" > bare.model
  "$graphc" train bare.model --data synthetic --epochs 1 --progress none --metrics bare.jsonl \
    --criterion ClassNLLCriterion --optim adagrad --lr 0.001 > bare.txt
  GRAPHC_PROFILE=1 "$graphc" train "$src/examples/mlp.model" --data synthetic --epochs 1 \
    --progress none --metrics seed.jsonl > /dev/null 2> profile.txt
  # GRAPHC_PROFILE times each GEMM call site and, apart, its packing: more
  # than nothing and less than the whole ("... 2.8 ms/call 25 calls of which
  # packing 1.1 ms first call 17.2 ms"); every row gives its first call apart
  # from the average, the update's range too.
  awk '$1 == "gemm" { n++; if (!($11 == "of" && $14 > 0 && $14 < $7 && $16 == "first" && $18 > 0)) bad = 1 }
       $1 == "range" { r++; if (!($8 == "first" && $10 > 0)) bad = 1 }
       END { exit bad || n < 5 || r < 1 }' profile.txt ||
    { echo "FAIL: GRAPHC_PROFILE's GEMM rows"; cat profile.txt; exit 1; }
  strip() { sed -E 's/,"(samples_per_s|epoch_s)":[^,}]*//g' "$1"; }
  diff <(strip bare.jsonl) <(strip seed.jsonl) || { echo "FAIL: --criterion/--optim/--lr"; exit 1; }
  grep -q "optim.adagrad {learningRate = 0.001" bare.txt || { cat bare.txt; exit 1; }
  "$graphc" train "$src/examples/mlp.model" --data synthetic --epochs 1 --progress none \
    --optim sgd --lr 0.01 --optim-config momentum=0.9,nesterov=1,dampening=0 > sgd.txt
  grep -q "optim.sgd {learningRate = 0.01, learningRateDecay = 0, weightDecay = 0, momentum = 0.9, dampening = 0, nesterov = true}" sgd.txt ||
    { echo "FAIL: --optim sgd"; cat sgd.txt; exit 1; }
  if "$graphc" inspect x.t7 -- -model linear 2> inspect.txt; then echo "FAIL: inspect took --"; exit 1; fi
  grep -q "runs no model script" inspect.txt || { cat inspect.txt; exit 1; }
  # The cuda target (the emulated device where there is no GPU): LeNet's
  # convolutions fused with their bias and ReLU by cuDNN's graph API; when
  # the fused plans fail to run, training goes on unfused and says so.
  # (grep -c reads the whole help, see tests/distributed_cli_test.sh.)
  if "$graphc" train --help | grep -c "cuda (an NVIDIA GPU" > /dev/null; then
    nvidia-smi -L > /dev/null 2>&1 || export GRAPHC_CUDA_DEVICE=emulate
    lenet=("$src/examples/lenet.model" --data synthetic --target cuda --epochs 1 --batch 16
      --train-limit 48 --test-limit 16 --progress none)
    "$graphc" train "${lenet[@]}" > fused.txt
    if [ "${GRAPHC_CUDA_DEVICE:-}" = emulate ]; then
      grep -q "convolutions by cuDNN (emulated), 2 of 2 forward ones fused" fused.txt ||
        { echo "FAIL: LeNet's convolutions not fused"; cat fused.txt; exit 1; }
      ! grep -q "target changed" fused.txt || { echo "FAIL: the target changed"; exit 1; }
      GRAPHC_EMULATE_FUSION_FAILS=1 "$graphc" train "${lenet[@]}" > failing.txt
      grep -q "the target changed while training: .*0 of 2 forward ones fused .*a fused plan failed to run" \
        failing.txt || { echo "FAIL: no word of the failed plans"; cat failing.txt; exit 1; }
    fi
  fi
elif [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  "$graphc" train "$src/examples/mlp.model" --epochs 1 --progress lines --metrics fashion.jsonl
  check fashion-mnist "$(accuracy fashion.jsonl)" 75
else
  echo "skipped: Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed"
  exit 77
fi
echo "1 passed, 0 failed"
