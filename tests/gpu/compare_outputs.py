#!/usr/bin/env python3
"""tests/gpu/compare_outputs.py GOT WANT CLASSES - two `graphc eval
--dump-outputs` files (raw little-endian float32, samples x classes): the
cuda target's against the interpreter's, on the same checkpoint and inputs.
Passes when the outputs agree to 1e-4 relative (2-norm over all) and every
sample gets the same class. Prints `PASS ...` or `FAIL ...`."""
import array
import math
import sys


def read(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def main():
    got, want, classes = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
    if len(got) != len(want) or len(got) % classes:
        print(f"FAIL sizes differ: {len(got)} and {len(want)} values")
        return 1
    num = sum((g - w) ** 2 for g, w in zip(got, want))
    den = sum(w * w for w in want)
    rel = math.sqrt(num) / max(math.sqrt(den), 1e-30)
    n = len(got) // classes

    def argmax(a, i):
        row = a[i * classes:(i + 1) * classes]
        return max(range(classes), key=row.__getitem__)

    differ = sum(argmax(got, i) != argmax(want, i) for i in range(n))
    ok = rel <= 1e-4 and differ == 0
    print(f"{'PASS' if ok else 'FAIL'} {n} samples: outputs rel {rel:.2e}, "
          f"{differ} classes differ")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
