#!/usr/bin/env bash
# bench/lenet_train.sh - `graphc train examples/lenet.model` end to end on
# Fashion-MNIST next to the same recipe in PyTorch (bench/torch_train.py
# --model lenet), in the same run: test accuracy and training time per epoch,
# and the median epoch time's ratio. Both use every core of the machine.
#
#   bench/lenet_train.sh [BUILD_DIR] [EPOCHS] [TARGET]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
epochs=${2:-5}
target=${3:-cpu}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "LeNet (examples/lenet.model) on Fashion-MNIST, batch 256, $epochs epochs, $(nproc) cores"
"$build/graphc" train "$root/examples/lenet.model" --epochs "$epochs" --target "$target" \
  --metrics "$tmp/graphc.jsonl" >"$tmp/graphc.log" 2>&1 ||
  { cat "$tmp/graphc.log"; exit 1; }
"$py" "$root/bench/torch_train.py" --model lenet "$epochs" >"$tmp/torch.log"
"$py" - "$tmp/graphc.jsonl" "$tmp/torch.log" <<'PY'
import json, re, statistics, sys
g = [json.loads(l) for l in open(sys.argv[1])]
t = [re.search(r"test accuracy ([0-9.]+)%, ([0-9.]+) s", l).groups()
     for l in open(sys.argv[2]) if l.startswith("epoch")]
print(f"{'epoch':>5}  {'graphc test %':>13}  {'graphc s':>8}  {'PyTorch test %':>14}  {'PyTorch s':>9}")
for i, (ge, te) in enumerate(zip(g, t), 1):
    print(f"{i:>5}  {100 * ge['test_acc']:>13.2f}  {ge['epoch_s']:>8.1f}  {float(te[0]):>14.2f}  "
          f"{float(te[1]):>9.1f}")
gm = statistics.median(e["epoch_s"] for e in g)
tm = statistics.median(float(e[1]) for e in t)
print(f"median epoch: graphc {gm:.1f} s, PyTorch {tm:.1f} s: graphc's speed-up {tm / gm:.2f}x")
PY
