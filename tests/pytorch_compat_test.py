#!/usr/bin/env python3
"""tests/pytorch_compat_test.py - graphc checkpoints load into PyTorch and back.

Run by ctest as `pytorch_compat_test.py GRAPHC`. Trains a tiny MLP for one
epoch on the synthetic data set, loads the safetensors checkpoint into the
same layer list in PyTorch (the file is parsed by hand: struct + json +
numpy, no safetensors package needed) with strict=True, and compares
PyTorch's forward pass with graphc's outputs on the inputs graphc saw. Then
the other way: random PyTorch weights saved as safetensors, evaluated by
graphc. Exits 77 (ctest's SKIP_RETURN_CODE) when python3-torch is missing.
"""
import os
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIPPED: python3-torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_interop import fail, read_safetensors, run, write_safetensors  # noqa: E402

MODEL = """require 'nn'
model = nn.Sequential()
model:add(nn.View(1024))
model:add(nn.Linear(1024, 16)):add(nn.ReLU())
model:add(nn.Linear(16, 10))
model:add(nn.LogSoftMax())
criterion = nn.ClassNLLCriterion()
optimizer = optim.adagrad
config = {learningRate = 0.001}
"""
N_TEST = 64


def torch_model():
    # graphc's nn.View is position 0, so a Flatten there keeps Linear at "1.".
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 10), torch.nn.LogSoftmax(dim=1))


def graphc_eval(graphc, target, model, weights, tmp, tag):
    ins, outs = os.path.join(tmp, tag + ".in"), os.path.join(tmp, tag + ".out")
    p = run([graphc, "eval", model, "--weights", weights, "--data", "synthetic",
             "--test-limit", str(N_TEST), "--target", target,
             "--dump-inputs", ins, "--dump-outputs", outs])
    if p.returncode != 0:
        fail(f"graphc eval exited {p.returncode}")
    x = np.fromfile(ins, dtype="<f4")
    y = np.fromfile(outs, dtype="<f4")
    if x.size != N_TEST * 1024 or y.size != N_TEST * 10:
        fail(f"dumped {x.size} inputs and {y.size} outputs")
    return x.reshape(N_TEST, 1, 32, 32), y.reshape(N_TEST, 10)


def compare(net, x, y_graphc, what):
    with torch.no_grad():
        y_torch = net(torch.from_numpy(x.copy())).numpy()
    err = np.max(np.abs(y_torch - y_graphc))
    scale = max(1.0, float(np.max(np.abs(y_torch))))
    print(f"{what}: max |pytorch - graphc| = {err:.3g} (scale {scale:.3g})")
    if not err <= 1e-4 * scale:
        fail(f"{what}: outputs differ by {err} (relative {err / scale})")
    if not np.array_equal(np.argmax(y_torch, 1), np.argmax(y_graphc, 1)):
        print(f"note: {what}: an argmax differs (near-tie)")


def main():
    if len(sys.argv) != 2:
        fail("usage: pytorch_compat_test.py GRAPHC")
    graphc = sys.argv[1]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="graphc-pytorch-") as tmp:
        model = os.path.join(tmp, "tiny.model")
        with open(model, "w") as f:
            f.write(MODEL)
        ckpt = os.path.join(tmp, "tiny.safetensors")

        # 1. graphc trains and saves; try the CPU backend, else the interpreter.
        target = "cpu"
        train = [graphc, "train", model, "--data", "synthetic", "--epochs", "1",
                 "--train-limit", "512", "--test-limit", str(N_TEST), "--save", ckpt,
                 "--progress", "none"]
        p = run(train + ["--target", target])
        if p.returncode != 0 and "without the LLVM CPU backend" in p.stdout:
            target = "interp"
            p = run(train + ["--target", target])
        if p.returncode != 0:
            fail(f"graphc train exited {p.returncode}")

        # 2. The checkpoint, read by hand, is a PyTorch state_dict plus optimizer state.
        header, meta, tensors = read_safetensors(ckpt)
        want = {"1.weight": [16, 1024], "1.bias": [16], "3.weight": [10, 16], "3.bias": [10]}
        for name, shape in want.items():
            if list(tensors[name].shape) != shape:
                fail(f"{name} has shape {tensors[name].shape}, expected {shape}")
            v = "optim.v." + name
            if v not in tensors or tensors[v].shape != tensors[name].shape:
                fail(f"no adagrad state {v}")
            if not (tensors[v] >= 0).all():
                fail(f"{v}: a sum of squares is negative")
        if set(tensors) != set(want) | {"optim.v." + n for n in want}:
            fail(f"unexpected tensors: {sorted(tensors)}")
        if meta.get("graphc.step") != "2" or meta.get("graphc.epoch") != "1":
            fail(f"metadata {meta}: expected step 2 (512 samples / 256) and epoch 1")
        if not meta.get("graphc.optimizer", "").startswith("optim.adagrad"):
            fail(f"metadata {meta}: optimizer")

        net = torch_model()
        state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()
                 if not k.startswith("optim.")}
        net.load_state_dict(state, strict=True)
        x, y = graphc_eval(graphc, target, model, ckpt, tmp, "trained")
        if np.any(x[:, :, :2, :]) or np.any(x[:, :, -2:, :]) or np.any(x[:, :, :, :2]) \
                or np.any(x[:, :, :, -2:]):
            fail("the 2-pixel frame of the padded inputs is not zero")
        if x.max() <= 1 or x.max() > 255:
            fail(f"inputs are not raw 0-255 values (max {x.max()})")
        compare(net, x, y, "graphc-trained weights")

        # 3. PyTorch weights into graphc.
        fresh = torch_model()
        sd = os.path.join(tmp, "pytorch.safetensors")
        write_safetensors(sd, fresh.state_dict())
        x2, y2 = graphc_eval(graphc, target, model, sd, tmp, "pytorch")
        if not np.array_equal(x, x2):
            fail("the same test inputs came out differently")
        compare(fresh, x2, y2, "PyTorch-initialised weights")
    print(f"OK (target {target})")


if __name__ == "__main__":
    main()
