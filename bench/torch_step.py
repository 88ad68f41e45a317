#!/usr/bin/env python3
"""bench/torch_step.py - PyTorch's training step for the seed MLP, the same
recipe graphc compiles (View -> Linear(1024,1000) -> ReLU -> Linear(1000,1000)
-> ReLU -> Linear(1000,10) -> LogSoftMax, ClassNLL, Adagrad lr 1e-3, raw
0..255 inputs), timed at each thread count; prints one JSON line per
setting and a last line with the best."""
import json
import sys

import torch

from torch_timing import timed_steps

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 256
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 30
warmup = 5

torch.manual_seed(1)
x = torch.randint(0, 256, (batch, 1, 32, 32)).float()
y = torch.randint(0, 10, (batch,))
best = None
for threads in (1, 2):
    torch.set_num_threads(threads)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(1024, 1000), torch.nn.ReLU(),
        torch.nn.Linear(1000, 1000), torch.nn.ReLU(),
        torch.nn.Linear(1000, 10), torch.nn.LogSoftmax(dim=1))
    crit = torch.nn.NLLLoss()
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-3)
    times = timed_steps(model, crit, opt, x, y, steps, warmup)
    r = {"system": "pytorch " + torch.__version__, "batch": batch, "threads": threads,
         "step_ms_median": round(times[len(times) // 2], 3),
         "step_ms_min": round(times[0], 3),
         "gflops": round(2.6e9 * batch / 256 / (times[len(times) // 2] * 1e6), 1)}
    print(json.dumps(r))
    if best is None or r["step_ms_median"] < best["step_ms_median"]:
        best = r
print(json.dumps(dict(best, best=True)))
