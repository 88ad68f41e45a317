#!/usr/bin/env bash
# tests/train_resume_test.sh GRAPHC - `graphc train --resume` end to end with
# Dropout and a stateful optimizer: for sgd with momentum (a velocity buffer),
# adam (two moment buffers and the step counter t), rmsprop (its mean square,
# started at initialMean), adadelta (two buffers) and nag (a velocity read
# before the step, for the look-ahead point), 2 epochs give the
# same checkpoint, byte for byte, as 1 epoch, then --resume and 1 more.
# The first run's --seed is not the default and the resumed run gives none:
# it must take the checkpoint's seed (the shuffle and the Dropout masks).
# On the synthetic set, limited, to stay quick.
set -euo pipefail
graphc=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

write_model() { # optimizer config
  cat > "$1.model" <<LUA
require 'nn'
model = nn.Sequential()
model:add(nn.View(28*28))
model:add(nn.Linear(28*28, 32)):add(nn.ReLU())
model:add(nn.Dropout(0.5))
model:add(nn.Linear(32, 10))
model:add(nn.LogSoftMax())
require 'optim'
criterion = nn.ClassNLLCriterion()
optimizer = optim.$1
config = $2
LUA
}
write_model sgd "{learningRate = 1e-3, momentum = 0.9, learningRateDecay = 1e-3}"
write_model adam "{learningRate = 1e-3}"
write_model rmsprop "{learningRate = 1e-3, initialMean = 0.1, weightDecay = 1e-4}"
write_model adadelta "{rho = 0.95, weightDecay = 1e-4}"
write_model nag "{learningRate = 1e-3, learningRateDecay = 1e-3, weightDecay = 1e-4}"

limit=(--data synthetic --train-limit 500 --test-limit 50 --batch 64 --progress none)
for opt in sgd adam rmsprop adadelta nag; do
  # Fresh files per optimizer: a new run refuses to replace a checkpoint
  # that is further along.
  rm -f straight.safetensors resumed.safetensors first.safetensors
  "$graphc" train $opt.model "${limit[@]}" --seed 7 --epochs 2 --save straight.safetensors \
    > /dev/null
  "$graphc" train $opt.model "${limit[@]}" --seed 7 --epochs 1 --save resumed.safetensors \
    > /dev/null
  cp resumed.safetensors first.safetensors
  out=$("$graphc" train $opt.model "${limit[@]}" --epochs 2 --resume resumed.safetensors \
    --save resumed.safetensors)
  grep -q "resuming from resumed.safetensors after epoch 1 (step 8)" <<<"$out" ||
    fail "$opt: the resumed run does not say it continues after epoch 1, step 8: $out"
  cmp -s first.safetensors straight.safetensors &&
    fail "$opt: the second epoch changed nothing"
  cmp straight.safetensors resumed.safetensors ||
    fail "$opt: 1 epoch + --resume + 1 epoch differs from 2 epochs"
  echo "ok: $opt: 1 epoch + --resume + 1 epoch equals 2 epochs, byte for byte"
done
echo "1 passed, 0 failed"
