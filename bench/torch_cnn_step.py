#!/usr/bin/env python3
"""bench/torch_cnn_step.py - PyTorch's training step for the convolutional
nets of bench/cnn_step.sh, the same recipe graphc compiles from the model
file (ClassNLL on LogSoftMax, SGD lr 0.01 momentum 0.9, raw 0..255 inputs),
timed at 1 and 2 threads; prints one JSON line per setting and a last line
with the best. Each line carries the step's FLOPs: 2 per multiply-add of
every convolution and matrix product, forward, input gradient (not for the
first layer) and weight gradient.

  bench/torch_cnn_step.py MODEL_FILE [BATCH] [STEPS]
  bench/torch_cnn_step.py MODEL_FILE BATCH STEPS cuda

With `cuda` (tests/gpu/check.sh) the step runs on the GPU instead, eager and
under torch.compile, the batch already on the device and the loss read back
every step (as graphc's trainStep returns it); one JSON line per variant.
"""
import json
import os
import sys
import time

import torch

from torch_timing import timed_steps

nn = torch.nn


def lenet():  # examples/lenet.model
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(32 * 5 * 5, 128), nn.ReLU(),
        nn.Linear(128, 10), nn.LogSoftmax(dim=1)), (1, 32, 32)


def vgg_cifar(bn=False):  # bench/vgg_cifar.model (bn: bench/vgg_cifar_bn.model)
    layers, planes = [], 3
    for v in (64, 64, 'M', 128, 128, 'M', 256, 256, 'M'):
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(planes, v, 3, 1, 1))
        if bn:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        planes = v
    layers += [nn.Flatten(), nn.Linear(planes * 4 * 4, 512), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(512, 10), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers), (3, 32, 32)


MODELS = {"lenet": lenet, "vgg_cifar": vgg_cifar, "vgg_cifar_bn": lambda: vgg_cifar(True)}


def step_flops(model, x):
    """2 * multiply-adds of the products: forward, weight gradient, and input
    gradient for every layer but the first."""
    total, first = [0.0], [True]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            f = 2.0 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            f = 2.0 * inp[0].shape[0] * m.in_features * m.out_features
        total[0] += f * (2 if first[0] else 3)
        first[0] = False

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total[0]


def gpu(name, batch, steps, warmup):
    """The step on the GPU, eager and compiled: one JSON line each."""
    for variant in ("eager", "compile"):
        torch.manual_seed(1)
        model, shape = MODELS[name]()
        model = model.cuda().train()
        x = torch.randint(0, 256, (batch, *shape), device="cuda").float()
        y = torch.randint(0, 10, (batch,), device="cuda")
        flops = step_flops(model, x)
        crit = nn.NLLLoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        fwd = torch.compile(model) if variant == "compile" else model
        try:
            t_start = time.perf_counter()
            times = timed_steps(fwd, crit, opt, x, y, steps, warmup, sync=True)
            med = times[len(times) // 2]
            print(json.dumps({"system": "pytorch " + torch.__version__, "variant": variant,
                              "model": name, "batch": batch, "device": "cuda",
                              "step_ms_median": round(med, 3), "flops": flops,
                              "gflops": round(flops / (med * 1e6), 1),
                              "total_s": round(time.perf_counter() - t_start, 1)}), flush=True)
        except Exception as e:  # a compile failure is a result too
            print(json.dumps({"system": "pytorch " + torch.__version__, "variant": variant,
                              "model": name, "error": str(e)[:200]}), flush=True)


def main():
    name = os.path.splitext(os.path.basename(sys.argv[1]))[0]
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    warmup = 3
    if name not in MODELS:
        sys.exit(f"torch_cnn_step.py: no PyTorch twin for {name}; add it to MODELS")
    if len(sys.argv) > 4 and sys.argv[4] == "cuda":
        return gpu(name, batch, steps, warmup)
    torch.manual_seed(1)
    best = None
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model, shape = MODELS[name]()
        x = torch.randint(0, 256, (batch, *shape)).float()
        y = torch.randint(0, 10, (batch,))
        flops = step_flops(model, x)
        crit = nn.NLLLoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        times = timed_steps(model, crit, opt, x, y, steps, warmup)
        med = times[len(times) // 2]
        r = {"system": "pytorch " + torch.__version__, "model": name, "batch": batch,
             "threads": threads, "step_ms_median": round(med, 3),
             "step_ms_min": round(times[0], 3), "flops": flops,
             "gflops": round(flops / (med * 1e6), 1)}
        print(json.dumps(r), flush=True)
        if best is None or r["step_ms_median"] < best["step_ms_median"]:
            best = r
    print(json.dumps(dict(best, best=True)))


if __name__ == "__main__":
    main()
