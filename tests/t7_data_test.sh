#!/usr/bin/env bash
# tests/t7_data_test.sh GRAPHC SOURCE_DIR - Torch7 data files (.t7), as the
# seed tutorial's mnist.t7 has them. tests/t7_data.py writes one image set
# twice, as idx files and as train_32x32.t7 / test_32x32.t7 (binary
# ByteTensor, ascii FloatTensor with transposed strides, labels from 1);
# training on either must print the same losses and accuracies, bit for
# bit, since the samples, labels and order are the same. `graphc eval` with
# only --test-data reproduces the trained model's accuracy. Bad files are
# refused with a message naming the file and what is wrong.
set -euo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 "$src/tests/t7_data.py" "$work"
export GRAPHC_CACHE_DIR="$work/cache"

# The numbers of each epoch line: loss and accuracies, without timings.
numbers() { sed -E 's/,"(samples_per_s|epoch_s)":[^,}]*//g' "$1"; }

train=("$graphc" train "$src/examples/mlp.model" --batch 64 --progress none --seed 3)
"${train[@]}" --epochs 2 --data idx --metrics idx.jsonl > idx.txt
"${train[@]}" --epochs 2 --data t7/train_32x32.t7 --metrics t7.jsonl --save t7.safetensors > t7.txt
grep -q "t7/train_32x32.t7: 600 training and 200 test images of 28x28, 10 classes" t7.txt ||
  { echo "FAIL: the data line"; cat t7.txt; exit 1; }
if ! diff <(numbers idx.jsonl) <(numbers t7.jsonl); then
  echo "FAIL: training on the .t7 files differs from training on the same idx files"; exit 1
fi
echo "ok: 2 epochs on train_32x32.t7 equal 2 epochs on the same idx files"

# The test set named explicitly, and eval on the test set alone.
"${train[@]}" --epochs 1 --data t7/train_32x32.t7 --test-data t7/test_32x32.t7 --metrics named.jsonl > /dev/null
diff <(numbers named.jsonl) <(numbers t7.jsonl | head -n 1) ||
  { echo "FAIL: --test-data differs from the test set found beside"; exit 1; }
"$graphc" eval "$src/examples/mlp.model" --test-data t7/test_32x32.t7 --weights t7.safetensors > eval.txt
want=$(tail -n 1 t7.jsonl | sed -E 's/.*"test_acc":([0-9.]+).*/\1/' | awk '{printf "%.2f", 100 * $1}')
got=$(sed -nE 's/.*global correct: ([0-9.]+)%.*/\1/p' eval.txt | awk '{printf "%.2f", $1}')
[ "$want" = "$got" ] || { echo "FAIL: eval --test-data gives $got%, training said $want%"; exit 1; }
echo "ok: eval --test-data alone reproduces the test accuracy ($got%)"

# --mean M --std S feeds (x - M) / S on the raw scale: the inputs eval
# dumps are exactly that, worked out here from the idx copy of the test
# images (28x28, padded by 2 with 0-valued pixels to the model's 32x32).
"$graphc" eval "$src/examples/mlp.model" --test-data t7/test_32x32.t7 --weights t7.safetensors \
  --mean 100 --std 50 --dump-inputs inputs.f32 > /dev/null
python3 - <<'PY'
import struct
raw = open("idx/t10k-images-idx3-ubyte", "rb").read()
n, rows, cols = struct.unpack(">III", raw[4:16])
pixels = raw[16:]
got = open("inputs.f32", "rb").read()
assert len(got) == n * 32 * 32 * 4, (len(got), n)
worst = 0.0
for i in range(n):
    for r in range(32):
        for c in range(32):
            inside = 2 <= r < 30 and 2 <= c < 30
            p = pixels[i * 784 + (r - 2) * 28 + (c - 2)] if inside else 0
            want = (p - 100) / 50
            v = struct.unpack_from("<f", got, 4 * ((i * 32 + r) * 32 + c))[0]
            worst = max(worst, abs(v - want))
assert worst < 1e-6, worst
print("ok: --mean 100 --std 50 feeds (x - 100) / 50, largest error %.2g" % worst)
PY
"${train[@]}" --epochs 1 --data t7/train_32x32.t7 --mean 100 --std 50 --save ms.safetensors \
  --metrics ms.jsonl > /dev/null
"$graphc" eval "$src/examples/mlp.model" --test-data t7/test_32x32.t7 --weights ms.safetensors > ms.txt
grep -q "normalised: (x - 100) / 50" ms.txt || { echo "FAIL: eval lost --mean/--std"; cat ms.txt; exit 1; }
echo "ok: a checkpoint trained with --mean/--std is evaluated with them"

# Refused, each with the file and the reason.
expect_error() { # pattern, args...
  local pattern=$1; shift
  if "$graphc" "$@" > out.txt 2> err.txt; then echo "FAIL: accepted: $*"; exit 1; fi
  grep -q -- "$pattern" err.txt || { echo "FAIL: $* said:"; cat err.txt; exit 1; }
  echo "ok: refused ($(head -c 120 err.txt))"
}
mkdir alone && cp t7/train_32x32.t7 alone/train_32x32.t7
expect_error "no test set beside it" train "$src/examples/mlp.model" --data alone/train_32x32.t7
expect_error "label 0 of image 1 is not a class number" train "$src/examples/mlp.model" \
  --data bad/label0.t7 --test-data t7/test_32x32.t7
expect_error "graphc reads raw pixels" eval "$src/examples/mlp.model" --weights t7.safetensors \
  --test-data bad/normalised.t7
expect_error "graphc reads grey images" eval "$src/examples/mlp.model" --weights t7.safetensors \
  --test-data bad/colour.t7
expect_error "not a Torch7 data set" eval "$src/examples/mlp.model" --weights t7.safetensors \
  --test-data bad/notable.t7
expect_error "graphc train needs a training set" train "$src/examples/mlp.model" \
  --test-data t7/test_32x32.t7
expect_error "must be a positive number" train "$src/examples/mlp.model" --data idx --mean 1 --std 0
expect_error "requires --std" train "$src/examples/mlp.model" --data idx --mean 1
expect_error "excludes" train "$src/examples/mlp.model" --data idx --mean 1 --std 2 --normalize
echo "1 passed, 0 failed"
