#!/usr/bin/env python3
"""bench/torch_train.py - graphc's example recipes in PyTorch, for comparison
with `graphc train examples/mlp.model` (the default, `--model mlp`) and
`graphc train examples/lenet.model` (`--model lenet`): Fashion-MNIST from
Debian's package, raw 0..255 pixels padded to 32x32, batch 256 (the short
last batch trained), ClassNLL on LogSoftMax; the seed MLP with Adagrad lr
1e-3, or LeNet with Torch7's optim.sgd {learningRate = 0.01, momentum = 0.9}
(Torch7's dampening defaults to the momentum). PyTorch's default
initialisation draws from the same ranges as Torch7's reset(). Prints test
accuracy and the epoch's training time per epoch (LeNet on all cores).

  bench/torch_train.py [--model mlp|lenet] [EPOCHS] [SEED] [DATA_DIR]
"""
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


def load(kind, root=DATA):
    """Images as float32 [n, 1, 32, 32] (raw 0..255, padded) and int64 labels."""
    x = idx(f"{root}/{kind}-images-idx3-ubyte.gz").astype(np.float32)
    y = idx(f"{root}/{kind}-labels-idx1-ubyte.gz").astype(np.int64)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    return torch.from_numpy(x).reshape(-1, 1, 32, 32), torch.from_numpy(y)


def seed_mlp():
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(1024, 1000), torch.nn.ReLU(),
        torch.nn.Linear(1000, 1000), torch.nn.ReLU(),
        torch.nn.Linear(1000, 10), torch.nn.LogSoftmax(dim=1))


def lenet():
    """examples/lenet.model."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(16, 32, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(), torch.nn.Dropout(0.5),
        torch.nn.Linear(32 * 5 * 5, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10), torch.nn.LogSoftmax(dim=1))


def main():
    args = sys.argv[1:]
    name = "mlp"
    if args[:1] == ["--model"]:
        name, args = args[1], args[2:]
    epochs = int(args[0]) if len(args) > 0 else 5
    seed = int(args[1]) if len(args) > 1 else 1
    root = args[2] if len(args) > 2 else DATA
    torch.manual_seed(seed)
    xtr, ytr = load("train", root)
    xte, yte = load("t10k", root)
    crit = torch.nn.NLLLoss()
    if name == "lenet":
        torch.set_num_threads(os.cpu_count())
        model = lenet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, dampening=0.9)
    else:
        model = seed_mlp()
        opt = torch.optim.Adagrad(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(xtr))
        total, correct = 0.0, 0
        for i in range(0, len(xtr), 256):
            idxs = order[i:i + 256]
            opt.zero_grad()
            out = model(xtr[idxs])
            loss = crit(out, ytr[idxs])
            loss.backward()
            opt.step()
            total += loss.item() * len(idxs)
            correct += (out.argmax(1) == ytr[idxs]).sum().item()
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch}: train loss {total / len(xtr):.4f}, train accuracy "
              f"{100 * correct / len(xtr):.2f}%, test accuracy {100 * acc:.2f}%, {secs:.2f} s")


if __name__ == "__main__":
    main()
