#!/usr/bin/env python3
"""tests/gpu/accuracy.py METRICS REFERENCE - the cuda target's test accuracy
per epoch (graphc train --metrics, JSON lines) against the interpreter's
figures for the same run (REFERENCE: lines `epoch percent`, and one
`tolerance points`). Prints `PASS ...` or `FAIL ...` on one line; exits 0
only on PASS."""
import json
import sys


def main():
    got = {}
    for line in open(sys.argv[1]):
        if line.strip():
            m = json.loads(line)
            got[int(m["epoch"])] = 100.0 * float(m["test_acc"])
    want, tol = {}, 0.5
    try:
        ref = open(sys.argv[2]).readlines()
    except OSError as e:
        print("FAIL no reference figures (%s); got %s" % (e.strerror, ", ".join(
            f"epoch {k} {v:.2f}%" for k, v in sorted(got.items()))))
        return 1
    for line in ref:
        words = line.split("#", 1)[0].split()
        if len(words) != 2:
            continue
        if words[0] == "tolerance":
            tol = float(words[1])
        else:
            want[int(words[0])] = float(words[1])
    parts, ok = [], True
    for epoch in sorted(want):
        if epoch not in got:
            parts.append(f"epoch {epoch}: missing")
            ok = False
            continue
        d = got[epoch] - want[epoch]
        ok &= abs(d) <= tol
        parts.append(f"epoch {epoch} {got[epoch]:.2f}% vs interp {want[epoch]:.2f}%")
    print(("PASS " if ok else "FAIL ") + "; ".join(parts) + f" (within {tol} pt)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
