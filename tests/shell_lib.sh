# tests/shell_lib.sh - what the shell tests of bad input share: a tiny
# model and byte-level helpers that build damaged files (idx, gzip,
# safetensors). Source it.

# tiny_model: a model file whose checkpoint is 1.weight (10, 784) and 1.bias (10).
tiny_model() {
  cat <<'MODEL'
require 'nn'
model = nn.Sequential()
model:add(nn.View(28*28))
model:add(nn.Linear(28*28, 10))
model:add(nn.LogSoftMax())
criterion = nn.ClassNLLCriterion()
optimizer = optim.adagrad
config = {learningRate = 0.01}
MODEL
}

# be32 N: N as 4 big-endian bytes.
be32() { printf "$(printf '\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"; }
# le64 N: N as 8 little-endian bytes (-1: 2^64-1).
le64() {
  local i s=""
  for i in 0 1 2 3 4 5 6 7; do s+=$(printf '\\x%02x' $(($1 >> (8 * i) & 255))); done
  printf "$s"
}
# flip FILE OFFSET: flips the lowest bit of the byte at OFFSET (negative: from the end).
flip() {
  local size off byte
  size=$(stat -c %s "$1")
  off=$(($2 < 0 ? size + $2 : $2))
  byte=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((byte ^ 1)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
# poke FILE OFFSET BYTES: writes BYTES (printf escapes) over the file at OFFSET.
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
