#!/usr/bin/env python3
"""bench/same_start.py - the seed MLP trained by graphc and by PyTorch from
the same starting point: graphc's initial weights for a seed (written by
`graphc compile --emit lib --seed S`) and graphc's shuffled order of every
epoch (the generator of runtime/Trainer.cpp's epochOrder, reproduced here),
on Fashion-MNIST with the seed recipe (raw 0..255 pixels padded to 32x32,
batch 256 with the short last batch, ClassNLL, Adagrad lr 1e-3). Prints the
test accuracy of both after every epoch, side by side: where a seed ends
low, the question is whether graphc computes it or the start decides it.

  bench/same_start.py [--seed S] [--epochs E] [--graphc build/graphc] [--cpu avx2,avx512]

Needs Debian's python3-torch and dataset-fashion-mnist; run it with
/usr/bin/python3 where another python3 comes first on PATH.
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile

import numpy as np
import torch

from torch_train import load, seed_mlp

M64 = (1 << 64) - 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class MT19937_64:
    """std::mt19937_64, bit for bit."""

    def __init__(self, seed):
        self.mt = [seed & M64]
        for i in range(1, 312):
            p = self.mt[-1]
            self.mt.append((6364136223846793005 * (p ^ (p >> 62)) + i) & M64)
        self.i = 312

    def __call__(self):
        if self.i >= 312:
            mt = self.mt
            for i in range(312):
                x = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
                mt[i] = mt[(i + 156) % 312] ^ (x >> 1) ^ (0xB5026F5AA96619E9 if x & 1 else 0)
            self.i = 0
        x = self.mt[self.i]
        self.i += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        return (x ^ (x >> 43)) & M64


def epoch_order(n, seed, epoch):
    """runtime/Trainer.cpp's epochOrder: Fisher-Yates with unbiased draws."""
    rng = MT19937_64(mix64((mix64(seed ^ 0x7261696E6572) + epoch) & M64))
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = M64 - M64 % bound
        r = rng()
        while r >= limit:
            r = rng()
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


def safetensors(path):
    with open(path, "rb") as f:
        (hl,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hl))
        blob = f.read()
    out = {}
    for name, t in header.items():
        if name != "__metadata__":
            b, e = t["data_offsets"]
            out[name] = torch.from_numpy(
                np.frombuffer(blob[b:e], dtype=np.float32).reshape(t["shape"]).copy())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--graphc", default=os.path.join(ROOT, "build", "graphc"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--cpu", default="",
                    help="graphc's vector ISAs to run, comma-separated (GRAPHC_CPU each), "
                         "e.g. avx2,avx512; default: graphc's own choice")
    a = ap.parse_args()
    model_file = os.path.join(ROOT, "examples", "mlp.model")
    isas = [c for c in a.cpu.split(",") if c] or [""]
    graphc_acc = {}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([a.graphc, "compile", model_file, "--input", "1x32x32", "--emit", "lib",
                        "--seed", str(a.seed), "-o", f"{tmp}/mlp"], check=True,
                       stdout=subprocess.DEVNULL)
        init = safetensors(f"{tmp}/mlp.safetensors")
        for isa in isas:
            env = dict(os.environ, GRAPHC_CPU=isa) if isa else None
            subprocess.run([a.graphc, "train", model_file, "--epochs", str(a.epochs), "--seed",
                            str(a.seed), "--data", a.data, "--progress", "none", "--metrics",
                            f"{tmp}/metrics.jsonl"], check=True, stdout=subprocess.DEVNULL,
                           env=env)
            with open(f"{tmp}/metrics.jsonl") as f:
                graphc_acc[isa] = [100 * json.loads(line)["test_acc"] for line in f]
            os.remove(f"{tmp}/metrics.jsonl")

    torch.manual_seed(0)
    xtr, ytr = load("train", a.data)
    xte, yte = load("t10k", a.data)
    model = seed_mlp()
    model.load_state_dict(init)
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-3)
    crit = torch.nn.NLLLoss()
    print(f"seed {a.seed}: test accuracy after each epoch, from graphc's initial weights "
          f"and batch order")
    names = [f"graphc {isa}" if isa else "graphc" for isa in isas]
    print("epoch   " + "   ".join(f"{n:>13}" for n in names) + "   PyTorch (same start)")
    for epoch in range(1, a.epochs + 1):
        order = torch.tensor(epoch_order(len(xtr), a.seed, epoch))
        for i in range(0, len(xtr), 256):
            ids = order[i:i + 256]
            opt.zero_grad()
            crit(model(xtr[ids]), ytr[ids]).backward()
            opt.step()
        with torch.no_grad():
            acc = 100 * (model(xte).argmax(1) == yte).float().mean().item()
        ours = "   ".join(f"{graphc_acc[isa][epoch - 1]:13.2f}" for isa in isas)
        gap = max(abs(graphc_acc[isa][epoch - 1] - acc) for isa in isas)
        print(f"{epoch:5d}   {ours}   {acc:6.2f}   (largest gap {gap:.2f})", flush=True)


if __name__ == "__main__":
    main()
