#!/usr/bin/env python3
"""tests/batchnorm_torch_test.py - graphc's BatchNorm layers against PyTorch.

Run by ctest as `batchnorm_torch_test.py GRAPHC SOURCE_DIR [sgd|nag]` (the
target from $GRAPHC_TARGET, default cpu; the CPU variant from $GRAPHC_CPU). A small
convnet with SpatialBatchNormalization and BatchNormalization trains on 64
samples written as a Torch7 data file, so that one step of batch 64 takes
them all (the order of the samples in a step does not change its result):

1. graphc trains one step from its own initial weights and saves; the
   checkpoint must hold the running statistics under PyTorch's names, Torch7's
   initial values moved once (running_var from 1, running_mean from 0, BN
   weights from [0, 1)), and no optimizer state for them.
2. graphc resumes for a second step. PyTorch takes the first checkpoint,
   runs the same step in training mode (batch statistics; running mean and
   unbiased variance moved by momentum 0.1) and applies Torch7's update by
   hand (sgd: momentum, dampening, weight decay; nag: the look-ahead point).
   Every trained tensor, every running statistic and the optimizer state
   must match graphc's second checkpoint; weight decay must not touch the
   running statistics.
3. graphc evaluates with the second checkpoint (running statistics);
   PyTorch's eval mode must give the same outputs.
4. A PyTorch state_dict with num_batches_tracked (int64) loads into graphc,
   which evaluates it as PyTorch does.

Exits 77 when python3-torch is missing.
"""
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t7_write import Storage, Table, Tensor, Writer  # noqa: E402

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIPPED: python3-torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

from torch_interop import fail, read_safetensors, run, write_safetensors  # noqa: E402

N, SIDE = 64, 8
LR, WD, MOM = 0.05, 0.01, 0.9
MODEL = """require 'nn'
model = nn.Sequential()
model:add(nn.SpatialConvolution(1, 4, 3, 3, 1, 1, 1, 1))
model:add(nn.SpatialBatchNormalization(4))
model:add(nn.ReLU())
model:add(nn.SpatialMaxPooling(2, 2))
model:add(nn.View(4 * 4 * 4))
model:add(nn.Linear(64, 16))
model:add(nn.BatchNormalization(16, 1e-3, 0.2))
model:add(nn.ReLU())
model:add(nn.Linear(16, 10))
model:add(nn.LogSoftMax())
criterion = nn.ClassNLLCriterion()
input = {1, 8, 8}
"""
BN = {"1": (4, 1e-5, 0.1), "6": (16, 1e-3, 0.2)}  # position: channels, eps, momentum


def write_data(directory):
    """64 images with class-dependent means, as Torch7 data files."""
    rng = random.Random(11)
    labels = [rng.randrange(10) for _ in range(N)]
    pixels = [max(0, min(255, 20 * c + int(rng.gauss(60, 50)))) for c in labels
              for _ in range(SIDE * SIDE)]
    for name in ("train_32x32.t7", "test_32x32.t7"):
        w = Writer(False)
        w.write(Table([
            ("data", Tensor("torch.ByteTensor", [N, 1, SIDE, SIDE],
                            [SIDE * SIDE, SIDE * SIDE, SIDE, 1], 1,
                            Storage("torch.ByteStorage", "B", pixels))),
            ("labels", Tensor("torch.ByteTensor", [N], [1], 1,
                              Storage("torch.ByteStorage", "B", [c + 1 for c in labels])))]))
        with open(os.path.join(directory, name), "wb") as f:
            f.write(w.f.out)
    x = np.array(pixels, dtype=np.float32).reshape(N, 1, SIDE, SIDE)
    return x, np.array(labels)


def torch_net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4, eps=1e-5, momentum=0.1),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 16),
        torch.nn.BatchNorm1d(16, eps=1e-3, momentum=0.2), torch.nn.ReLU(),
        torch.nn.Linear(16, 10), torch.nn.LogSoftmax(dim=1)).double()


def load(net, ckpt):
    """A graphc checkpoint into PyTorch, strictly: every name, the batch counts included."""
    state = {k: torch.from_numpy(v if v.dtype == np.int64 else v.astype(np.float64))
             for k, v in ckpt.items() if not k.startswith("optim.")}
    net.load_state_dict(state, strict=True)


def close(name, got, want, tol):
    err = float(np.max(np.abs(got - want)))
    scale = max(1.0, float(np.max(np.abs(want))))
    print(f"  {name:28s} max |graphc - pytorch| = {err:.3g} (scale {scale:.3g})")
    if not err <= tol * scale:
        fail(f"{name}: graphc and PyTorch differ by {err} (scale {scale})")


def main():
    if len(sys.argv) < 3:
        fail("usage: batchnorm_torch_test.py GRAPHC SOURCE_DIR [sgd|nag]")
    graphc, optim = sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else "sgd"
    config = f"momentum={MOM},weightDecay={WD}" + (",dampening=0" if optim == "sgd" else "")
    with tempfile.TemporaryDirectory(prefix="graphc-bn-") as tmp:
        model = os.path.join(tmp, "bn.model")
        with open(model, "w") as f:
            f.write(MODEL)
        x, labels = write_data(tmp)
        data = os.path.join(tmp, "train_32x32.t7")
        ck1, ck2 = os.path.join(tmp, "one.safetensors"), os.path.join(tmp, "two.safetensors")
        train = [graphc, "train", model, "--data", data, "--batch", str(N), "--progress", "none",
                 "--target", os.environ.get("GRAPHC_TARGET", "cpu"),
                 "--optim", optim, "--lr", str(LR), "--optim-config", config]
        run(check=True, cmd=train + ["--epochs", "1", "--save", ck1])
        run(check=True, cmd=train + ["--epochs", "2", "--resume", ck1, "--save", ck2])
        one, two = read_safetensors(ck1)[2], read_safetensors(ck2)[2]

        # 1. Names, Torch7's initial values moved once, no state for buffers.
        slot = "momentum" if optim == "sgd" else "dfdx"
        for pos, (c, eps, mom) in BN.items():
            for t in ("weight", "bias", "running_mean", "running_var"):
                if one[f"{pos}.{t}"].shape != (c,):
                    fail(f"{pos}.{t} has shape {one[f'{pos}.{t}'].shape}")
            for t in ("running_mean", "running_var"):
                if f"optim.{slot}.{pos}.{t}" in one:
                    fail(f"the checkpoint keeps optimizer state for {pos}.{t}")
            for ck, steps in ((one, 1), (two, 2)):  # PyTorch's count: int64, one per step
                count = ck.get(f"{pos}.num_batches_tracked")
                if count is None or count.dtype != np.int64 or count.shape != () or count != steps:
                    fail(f"{pos}.num_batches_tracked is {count!r}, expected int64 {steps}")
            w = one[f"{pos}.weight"]
            if not (w.min() > -0.05 and w.max() < 1.05 and w.max() - w.min() > 0.1):
                fail(f"{pos}.weight {w} is not Torch7's uniform [0, 1) start")
            if not np.all(one[f"{pos}.running_var"] > 1 - mom - 1e-6):
                fail(f"{pos}.running_var {one[f'{pos}.running_var']} did not start at 1")
            if np.all(one[f"{pos}.running_mean"] == 0):
                fail(f"{pos}.running_mean did not move")

        # 2. The second step, by PyTorch in double precision.
        net = torch_net()
        load(net, one)
        net.train()
        params = dict(net.named_parameters())
        before = {k: v.detach().clone() for k, v in params.items()}
        state = {k: one[f"optim.{slot}.{k}"].astype(np.float64) for k in params}
        if optim == "nag":  # Torch7's nag takes the gradient at x + momentum v
            with torch.no_grad():
                for k, p in params.items():
                    p += MOM * torch.from_numpy(state[k])
        loss = torch.nn.functional.nll_loss(net(torch.from_numpy(x).double()),
                                            torch.from_numpy(labels))
        loss.backward()
        print(f"  loss at step 2: {loss.item():.6f}")
        for name, p in params.items():
            x1, g, v1 = before[name].numpy(), p.grad.numpy(), state[name]
            if optim == "sgd":  # Torch7's sgd after its first step, dampening 0
                v2 = MOM * v1 + (g + WD * x1)
                x2 = x1 - LR * v2
            else:  # nag: weight decay at the look-ahead point too
                v2 = MOM * v1 - LR * (g + WD * (x1 + MOM * v1))
                x2 = x1 + v2
            close(name, two[name], x2, 1e-5)
            close(f"optim.{slot}.{name}", two[f"optim.{slot}.{name}"], v2, 1e-5)
        for pos in BN:
            for t in ("running_mean", "running_var"):
                close(f"{pos}.{t}", two[f"{pos}.{t}"],
                      net.state_dict()[f"{pos}.{t}"].numpy(), 1e-5)

        # 3. Evaluation with the running statistics.
        outs, ins = os.path.join(tmp, "y.bin"), os.path.join(tmp, "x.bin")
        run(check=True, cmd=[graphc, "eval", model, "--weights", ck2, "--data", data,
                             "--dump-inputs", ins, "--dump-outputs", outs])
        xe = np.fromfile(ins, dtype="<f4").reshape(N, 1, SIDE, SIDE)
        ye = np.fromfile(outs, dtype="<f4").reshape(N, 10)
        net2 = torch_net()
        load(net2, two)
        net2.eval()
        with torch.no_grad():
            close("eval outputs", ye, net2(torch.from_numpy(xe).double()).numpy(), 1e-4)

        # 4. PyTorch's own state_dict, num_batches_tracked included.
        torch.manual_seed(3)
        fresh = torch_net().float()
        fresh.train()
        with torch.no_grad():
            for m in fresh.modules():
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
            fresh(torch.from_numpy(xe))  # moves the running statistics
        fresh.eval()
        sd = os.path.join(tmp, "pytorch.safetensors")
        write_safetensors(sd, fresh.state_dict())
        run(check=True, cmd=[graphc, "eval", model, "--weights", sd, "--data", data,
                             "--dump-outputs", outs])
        ye = np.fromfile(outs, dtype="<f4").reshape(N, 10)
        with torch.no_grad():
            close("eval of PyTorch's weights", ye, fresh(torch.from_numpy(xe)).numpy(), 1e-4)
    print("PASSED")


if __name__ == "__main__":
    main()
