#!/usr/bin/env python3
"""bench/torch_train.py - the seed recipe in PyTorch, for comparison with
`graphc train examples/mlp.model`: Fashion-MNIST from Debian's package, raw
0..255 pixels padded to 32x32, batch 256 (the short last batch trained),
the seed MLP, ClassNLL, Adagrad lr 1e-3. Prints test accuracy per epoch.

  bench/torch_train.py [EPOCHS] [SEED] [DATA_DIR]
"""
import gzip
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


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    root = sys.argv[3] if len(sys.argv) > 3 else DATA
    torch.manual_seed(seed)
    xtr, ytr = load("train", root)
    xte, yte = load("t10k", root)
    model = seed_mlp()
    crit = torch.nn.NLLLoss()
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
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
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch}: train loss {total / len(xtr):.4f}, train accuracy "
              f"{100 * correct / len(xtr):.2f}%, test accuracy {100 * acc:.2f}%, {secs:.2f} s")


if __name__ == "__main__":
    main()
