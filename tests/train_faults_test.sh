#!/usr/bin/env bash
# tests/train_faults_test.sh GRAPHC SOURCE_DIR - `graphc train`, `eval` and
# `compile` against careless use and faults (issue 12): each case either works as
# documented or fails with exit code 1 and one clear error that names the
# file or step, never a crash, and nothing worth keeping is overwritten.
# A tiny model on a few hundred synthetic samples keeps each run short.
set -uo pipefail
graphc=$(realpath "$1")
src=$(realpath "$2")
. "$src/tests/shell_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; }

# fails NAME EXPECTED COMMAND...: exit code 1, EXPECTED on stderr, no internal error.
fails() {
  local name=$1 want=$2
  shift 2
  "$@" > out.txt 2> err.txt
  local rc=$?
  if [ "$rc" -ne 1 ]; then
    fail "$name: exit code $rc, expected 1"
  elif ! grep -qF -- "$want" err.txt; then
    fail "$name: stderr does not say: $want"
  elif grep -q "internal error" err.txt; then
    fail "$name: an internal error"
  else
    ok "$name: $(grep -F -m1 -- "$want" err.txt | cut -c 1-200)"
    return 0
  fi
  sed 's/^/    /' out.txt err.txt | tail -n 20
  return 1
}
# succeeds NAME COMMAND...: exit code 0.
succeeds() {
  local name=$1
  shift
  "$@" > out.txt 2> err.txt
  local rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "$name"
    return 0
  fi
  fail "$name: exit code $rc"
  sed 's/^/    /' out.txt err.txt | tail -n 20
  return 1
}
# same NAME A B: the two files are identical.
same() { if cmp -s "$2" "$3"; then ok "$1"; else fail "$1: $2 and $3 differ"; fi; }
differ() { if cmp -s "$2" "$3"; then fail "$1: $2 and $3 are the same"; else ok "$1"; fi; }

tiny_model > tiny.model
small=(--data synthetic --train-limit 300 --test-limit 100 --progress none)
train() { "$graphc" train tiny.model "${small[@]}" "$@"; }

# --- a checkpoint further along is not overwritten without --resume or --force
succeeds "2 epochs saved" train --epochs 2 --save two.st
cp two.st two.kept
fails "a fresh run refuses to overwrite a checkpoint at step 4" \
  "two.st: error: --save: this file holds a checkpoint at step 4, further along than this run" \
  train --epochs 1 --save two.st
same "the refused run left the checkpoint as it was" two.st two.kept
succeeds "--resume continues the same file" train --epochs 3 --resume two.st --save two.st
differ "the resumed run saved its third epoch" two.st two.kept
succeeds "1 epoch saved" train --epochs 1 --save one.st
cp two.st three.kept
fails "a run resumed from step 2 refuses to overwrite a checkpoint at step 6" \
  "starts at step 2 (from --resume one.st)" train --epochs 2 --resume one.st --save two.st
same "the refused resumed run left the checkpoint as it was" two.st three.kept
succeeds "--force overwrites it" train --epochs 1 --save two.st --force
differ "the forced run saved its own epoch" two.st three.kept
echo "not a checkpoint" > notes.st
succeeds "a file that is no checkpoint is replaced as before" train --epochs 1 --save notes.st
# The whole help first: `grep -q` would stop reading at the match, and the
# next write of a long help would end graphc with SIGPIPE (pipefail).
train_help=$("$graphc" train --help)
grep -q -- "--force" <<<"$train_help" && ok "--help lists --force" || fail "--help lacks --force"

# --- gzip data files are checked against their trailer (CRC-32 and length)
# idx DIR N: an MNIST-format directory of N training and N test images of
# random 28x28 pixels, all labels 0, gzipped.
idx() {
  mkdir -p "$1"
  local n=$2 split
  for split in train t10k; do
    { be32 2051; be32 "$n"; be32 28; be32 28; head -c $((n * 784)) /dev/urandom; } |
      gzip -n > "$1/$split-images-idx3-ubyte.gz"
    { be32 2049; be32 "$n"; head -c "$n" /dev/zero; } | gzip -n > "$1/$split-labels-idx1-ubyte.gz"
  done
}
gztrain() { "$graphc" train tiny.model --epochs 1 --progress none --data "$@"; }
idx good 200
succeeds "well-formed gzip idx files train" gztrain good
cp -r good notrail && head -c -8 good/train-images-idx3-ubyte.gz > notrail/train-images-idx3-ubyte.gz
fails "a gzip file without its 8-byte trailer" \
  "notrail/train-images-idx3-ubyte.gz: error: truncated: the file ends after" gztrain notrail
cp -r good crc && flip crc/train-images-idx3-ubyte.gz -7
fails "a flipped bit in the CRC-32" \
  "crc/train-images-idx3-ubyte.gz: error: corrupt: the CRC-32 in the gzip trailer does not match" \
  gztrain crc
cp -r good isize && flip isize/t10k-labels-idx1-ubyte.gz -4
fails "a flipped bit in the length" \
  "isize/t10k-labels-idx1-ubyte.gz: error: corrupt: the length in the gzip trailer (ISIZE)" \
  gztrain isize
cp -r good data && flip data/train-images-idx3-ubyte.gz 5000
fails "a flipped bit in the compressed pixels" "data/train-images-idx3-ubyte.gz: error: corrupt" \
  gztrain data
cp -r good tail && echo garbage >> tail/t10k-images-idx3-ubyte.gz
fails "bytes after the gzip data" \
  "tail/t10k-images-idx3-ubyte.gz: error: corrupt: bytes after the end of the gzip data" \
  gztrain tail

# --- NaN or infinite weights in a checkpoint: an error, or a warning when allowed
# nan FILE: the checkpoint's first data value (1.weight[0,0]) becomes NaN.
nan() {
  local header
  header=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  printf '\x00\x00\xc0\x7f' | dd of="$1" bs=1 seek=$((8 + header)) conv=notrunc status=none
}
cp one.st nan.st && nan nan.st
evaluate() { "$graphc" eval tiny.model --data synthetic --test-limit 100 --weights "$@"; }
fails "eval of a checkpoint holding NaN" \
  "nan.st: error: tensor '1.weight' holds 1 non-finite value (the first, NaN, at [0,0])" \
  evaluate nan.st
fails "train --resume from a checkpoint holding NaN" "nan.st: error: tensor '1.weight' holds" \
  train --epochs 3 --resume nan.st
if succeeds "eval --allow-nonfinite loads it" evaluate nan.st --allow-nonfinite; then
  grep -qF "nan.st: warning: tensor '1.weight' holds 1 non-finite value" err.txt &&
    ok "... with a warning naming the tensor" || fail "no warning naming the tensor"
  # NaN in 1.weight[0,0] meets pixel 0 in every sample: every output is NaN.
  grep -qF "no prediction (NaN outputs, counted as wrong): 100 of 100" out.txt &&
    grep -qF "test accuracy: 0.00% (0 of 100)" out.txt &&
    ok "... and NaN outputs count as wrong, not as class 0" ||
    fail "NaN outputs are not reported as wrong: $(grep -F 'test accuracy' out.txt)"
fi

# --- a loss that overflows stops training at once; the last checkpoint stays
sed 's/optim.adagrad/optim.sgd/; s/learningRate = 0.01/learningRate = 1e30/' tiny.model > wild.model
wild() { "$graphc" train wild.model "${small[@]}" "$@"; }
succeeds "one epoch at a learning rate of 1e30 stays finite" wild --epochs 1 --save wild1.st
fails "the loss overflows in epoch 2: the step is named" \
  "error: step 3 (epoch 2, batch 1): the loss is " \
  wild --epochs 3 --save wild.st
# The outputs (log-probabilities) stay finite and their batch mean does not:
# the first non-finite value is the loss, made by the LogSoftMax + ClassNLL
# group, which the replay of the epoch finds.
grep -qF "the model's outputs were finite for all 256 samples, so the loss itself overflowed; the first non-finite value came from kernel group @k1 logsoftmax_nll \"LogSoftMax + ClassNLL forward: row max, log-sum-exp, gather, mean\" (forward: log_softmax, nll_loss): %" err.txt &&
  ok "... and the kernel group that made the first non-finite value" ||
  fail "the kernel group is not named: $(cat err.txt)"
grep -q "^epoch 2/3" out.txt && fail "an epoch report after the divergence" ||
  ok "no epoch report after the divergence"
same "the checkpoint keeps epoch 1, the last good one" wild.st wild1.st

# --- memory: estimated before anything is allocated, refused above the limit
cat > huge.model <<'MODEL'
require 'nn'
model = nn.Sequential()
model:add(nn.View(1024))
model:add(nn.Linear(1024, 100000000))
model:add(nn.LogSoftMax())
criterion = nn.ClassNLLCriterion()
optimizer = optim.adagrad
MODEL
need="error: the model needs about"
fails "compile of 400 GB of weights" "$need" "$graphc" compile huge.model --input 1x32x32 -o huge
fails "train of 400 GB of weights" "$need" "$graphc" train huge.model --data synthetic \
  --input 1x32x32
fails "eval of 400 GB of weights" "$need" "$graphc" eval huge.model --data synthetic \
  --input 1x32x32 --weights one.st
fails "--max-memory below the estimate" \
  "more than --max-memory 100.0 KiB. Use a smaller model or batch" train --epochs 1 --max-memory 100K
succeeds "--max-memory above the estimate" train --epochs 1 --max-memory 1.5GiB
fails "--max-memory 8X" "--max-memory: expected a size like 8G, 512M or 1.5GiB, got '8X'" \
  train --epochs 1 --max-memory 8X
if "$graphc" compile tiny.model --stats -o lib/tiny > stats.txt 2>&1 &&
  grep -q "^memory 152.7 KiB: parameters 30.7 KiB, optimizer state 30.7 KiB (1 slot), training step's intermediates at batch 256" stats.txt; then
  ok "compile --stats prints the memory estimate"
else
  fail "compile --stats: no memory estimate"; cat stats.txt
fi
# An address-space limit (ulimit -v) is a limit too: the seed MLP's arenas at
# a batch of 2^20 need about 20 GB. (Sanitizers reserve terabytes: skipped.)
(ulimit -v 8000000 && "$graphc" compile "$src/examples/mlp.model" --max-batch 1048576 -o big/mlp \
  > out.txt 2> err.txt; echo $? > rc.txt)
if grep -q Sanitizer err.txt; then
  echo "skipped: ulimit -v under a sanitizer"
elif [ "$(cat rc.txt)" = 1 ] && grep -q "left under the address-space limit (ulimit -v)" err.txt; then
  ok "ulimit -v 8000000, --max-batch 1048576: $(cut -c 1-150 err.txt)..."
else
  fail "ulimit -v 8000000, --max-batch 1048576: exit code $(cat rc.txt)"; cat err.txt
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
