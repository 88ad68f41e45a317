"""bench/torch_timing.py - the timed PyTorch training step that the bench
scripts share: forward, loss, backward, optimizer step on one batch."""
import time


def timed_steps(model, crit, opt, x, y, steps, warmup, sync=False):
    """Runs warmup + steps training steps on (x, y); returns the last `steps`
    step times in ms, sorted. sync: wait for the device each step (reads the
    loss), as a training loop that reports it does."""
    times = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        if sync:
            loss.item()
        ms = (time.perf_counter() - t0) * 1e3
        if s >= warmup:
            times.append(ms)
    return sorted(times)
