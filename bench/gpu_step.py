#!/usr/bin/env python3
"""bench/gpu_step.py - PyTorch's training step for the seed MLP on the GPU, the
recipe graphc compiles (View -> Linear(1024,1000) -> ReLU -> Linear(1000,1000)
-> ReLU -> Linear(1000,10) -> LogSoftMax, ClassNLL, Adagrad lr 1e-3, raw 0..255
inputs), next to graphc's cuda target in tests/gpu/check.sh.

    python3 bench/gpu_step.py [--batch 256] [--steps 200] [--warmup 30]
                              [--variants eager,compile,eager_tf32]

The batch already lives on the GPU, like graphc's device-resident data path;
every step reads the loss back (loss.item()), as graphc's trainStep returns
it, so each timed step ends with the GPU idle. Variants: eager fp32; fp32
under torch.compile(mode="reduce-overhead") (CUDA graphs; the model and the
optimizer step compiled); eager with TF32 matrix products. Prints one line
per variant, `TORCH_GPU_BENCH variant=NAME median_us=... min_us=...`, or
`TORCH_GPU_BENCH variant=NAME FAIL reason=...`.
"""
import argparse
import statistics
import sys
import time
import traceback

try:
    import torch
except ImportError:
    print("TORCH_GPU_BENCH variant=all FAIL reason=no-torch")
    sys.exit(1)


def make(device):
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(1024, 1000), torch.nn.ReLU(),
        torch.nn.Linear(1000, 1000), torch.nn.ReLU(),
        torch.nn.Linear(1000, 10), torch.nn.LogSoftmax(dim=1)).to(device)
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-3)
    return model, opt


def run(variant, batch, steps, warmup):
    device = torch.device("cuda")
    tf32 = variant.endswith("tf32")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    model, opt = make(device)
    crit = torch.nn.NLLLoss()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (batch, 1, 32, 32), generator=g).float().to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)

    forward = model
    opt_step = opt.step
    if variant.startswith("compile"):
        forward = torch.compile(model, mode="reduce-overhead")
        opt_step = torch.compile(opt.step, mode="reduce-overhead")

    compiled = variant.startswith("compile")

    def step():
        if compiled:
            # A new iteration for the CUDA graphs of reduce-overhead: the
            # previous step's outputs (the loss) may be overwritten.
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)
        loss = crit(forward(x), y)
        loss.backward()
        opt_step()
        return loss.item()

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    times = []
    loss = 0.0
    for _ in range(steps):
        a = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - a) * 1e6)
    return statistics.median(times), min(times), loss, warm_s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--variants", default="eager,compile,eager_tf32")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("TORCH_GPU_BENCH variant=all FAIL reason=no-cuda-device")
        return 1
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name(0)}", flush=True)
    failed = False
    for v in a.variants.split(","):
        try:
            med, lo, loss, warm_s = run(v, a.batch, a.steps, a.warmup)
            print(f"TORCH_GPU_BENCH variant={v} median_us={med:.1f} min_us={lo:.1f} "
                  f"loss={loss:.4f} warmup_s={warm_s:.1f}", flush=True)
        except Exception as e:  # one variant's failure must not hide the others
            failed = True
            traceback.print_exc(limit=3)
            reason = type(e).__name__
            print(f"TORCH_GPU_BENCH variant={v} FAIL reason={reason}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
