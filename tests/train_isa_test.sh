#!/usr/bin/env bash
# tests/train_isa_test.sh GRAPHC SOURCE_DIR ISA - the seed recipe under one
# vector ISA (GRAPHC_CPU=ISA: avx512, avx2 or generic), on Fashion-MNIST:
#  - one epoch reaches >= 78.5% test accuracy;
#  - two `graphc eval` runs of the same weights print the same thing (one
#    compiled anew, one from the compile cache);
#  - 2 epochs give the same checkpoint, bit for bit, as 1 epoch, then
#    --resume and 1 more (on the first 6000 samples, to stay quick).
# Exits 77 (a skip) where this CPU cannot execute the ISA or the data set
# (Debian's dataset-fashion-mnist) is not installed.
# At a reduced size (GRAPHC_TEST_REDUCED=1: scripts/test.sh's run under the
# sanitizers) the first epoch is on the first 20000 training samples and 2000
# test samples, and must reach 74% (seed 1 gives 78.15% there); the full-size
# run of the Release build keeps the 78.5% gate on the whole set.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
export GRAPHC_CPU=$3
model=$src/examples/mlp.model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "skipped: Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed"
  exit 77
fi
first=() gate=78.5
if [ "${GRAPHC_TEST_REDUCED:-0}" != 0 ]; then
  first=(--train-limit 20000 --test-limit 2000) gate=74
fi
if ! "$graphc" train "$model" "${first[@]}" --epochs 1 --seed 1 --progress lines \
    --save e1.safetensors --metrics e1.jsonl > train.txt 2> err.txt; then
  cat train.txt err.txt
  if grep -q "this CPU cannot execute" err.txt; then
    echo "skipped: this CPU cannot execute $GRAPHC_CPU code"
    exit 77
  fi
  exit 1
fi
cat train.txt
grep -q "target cpu ($GRAPHC_CPU)" train.txt || { echo "FAIL: train does not say it runs $GRAPHC_CPU"; exit 1; }
acc=$(tail -n 1 e1.jsonl | sed -E 's/.*"test_acc":([0-9.]+).*/\1/' | awk '{printf "%.2f", 100 * $1}')
if awk -v v="$acc" -v g="$gate" 'BEGIN { exit !(v >= g) }'; then
  echo "ok: $GRAPHC_CPU: one epoch${first:+ (reduced: ${first[*]})}, test accuracy $acc% >= $gate%"
else
  echo "FAIL: $GRAPHC_CPU: one epoch${first:+ (reduced: ${first[*]})}, test accuracy $acc% < $gate%"
  exit 1
fi

# The second run's code comes from the compile cache; only the model line,
# which says so, may differ.
"$graphc" eval "$model" --weights e1.safetensors --no-cache | grep -v '^model ' > eval1.txt
"$graphc" eval "$model" --weights e1.safetensors | grep -v '^model ' > eval2.txt
if ! cmp -s eval1.txt eval2.txt; then
  echo "FAIL: $GRAPHC_CPU: two evaluations of the same weights differ"; diff eval1.txt eval2.txt; exit 1
fi
echo "ok: $GRAPHC_CPU: two evaluations print the same: $(grep -m1 'global correct' eval1.txt)"

limit=(--train-limit 6000 --test-limit 1000 --progress none --seed 3)
"$graphc" train "$model" "${limit[@]}" --epochs 2 --save straight.safetensors > /dev/null
"$graphc" train "$model" "${limit[@]}" --epochs 1 --save resumed.safetensors > /dev/null
"$graphc" train "$model" "${limit[@]}" --epochs 2 --resume resumed.safetensors \
  --save resumed.safetensors > /dev/null
if ! cmp -s straight.safetensors resumed.safetensors; then
  echo "FAIL: $GRAPHC_CPU: 1 epoch + --resume + 1 epoch differs from 2 epochs"; exit 1
fi
echo "ok: $GRAPHC_CPU: 1 epoch + --resume + 1 epoch equals 2 epochs, bit for bit"
echo "1 passed, 0 failed"
