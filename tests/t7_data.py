#!/usr/bin/env python3
# tests/t7_data.py OUTDIR - one small image set written twice: as MNIST idx
# files (OUTDIR/idx/) and as Torch7 data files the way the seed tutorial's
# mnist.t7 holds them (OUTDIR/t7/train_32x32.t7 and test_32x32.t7: torch.save
# of {data = images, labels = classes from 1}), with tests/t7_write.py's
# encoder. The training file is binary with a ByteTensor N x 1 x 28 x 28;
# the test file is ascii with a FloatTensor N x 28 x 28 of the same whole
# pixel values, stored transposed (strides that are not row-major), so the
# reader's element order and conversions are all exercised. graphc must read
# the same samples from both (tests/t7_data_test.sh).
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t7_write import Storage, Table, Tensor, Writer  # noqa: E402

ROWS = COLS = 28


def images(count, rng, prototypes):
    """Each image its class's prototype plus noise, clamped to 0..255."""
    out, labels = [], []
    for _ in range(count):
        c = rng.randrange(10)
        labels.append(c)
        out.append([max(0, min(255, p + int(rng.gauss(0, 160)))) for p in prototypes[c]])
    return out, labels


def write_idx(path, magic, dims, payload):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(bytes(payload))


def save(path, root, ascii):
    w = Writer(ascii)
    w.write(root)
    with open(path, "wb") as f:
        f.write(w.f.out)


def main():
    out = sys.argv[1]
    rng = random.Random(7)
    prototypes = [[rng.randrange(256) for _ in range(ROWS * COLS)] for _ in range(10)]
    train, train_labels = images(600, rng, prototypes)
    test, test_labels = images(200, rng, prototypes)
    os.makedirs(os.path.join(out, "idx"), exist_ok=True)
    os.makedirs(os.path.join(out, "t7"), exist_ok=True)
    for prefix, imgs, labels in (("train", train, train_labels), ("t10k", test, test_labels)):
        write_idx(os.path.join(out, "idx", prefix + "-images-idx3-ubyte"), 0x803,
                  (len(imgs), ROWS, COLS), [p for img in imgs for p in img])
        write_idx(os.path.join(out, "idx", prefix + "-labels-idx1-ubyte"), 0x801,
                  (len(labels),), labels)

    n = len(train)
    flat = [p for img in train for p in img]
    data = Tensor("torch.ByteTensor", [n, 1, ROWS, COLS], [ROWS * COLS, ROWS * COLS, COLS, 1], 1,
                  Storage("torch.ByteStorage", "B", flat))
    labels = Tensor("torch.ByteTensor", [n], [1], 1,
                    Storage("torch.ByteStorage", "B", [c + 1 for c in train_labels]))
    save(os.path.join(out, "t7", "train_32x32.t7"), Table([("data", data), ("labels", labels)]),
         ascii=False)

    # The test images as a FloatTensor whose storage holds each image
    # transposed (column-major): strides (R*C, 1, R), after 3 unused elements.
    n = len(test)
    storage = [0.0, 0.0, 0.0]
    for img in test:
        storage += [float(img[r * COLS + c]) for c in range(COLS) for r in range(ROWS)]
    data = Tensor("torch.FloatTensor", [n, ROWS, COLS], [ROWS * COLS, 1, ROWS], 4,
                  Storage("torch.FloatStorage", "f", storage))
    labels = Tensor("torch.DoubleTensor", [n], [1], 1,
                    Storage("torch.DoubleStorage", "d", [float(c + 1) for c in test_labels]))
    save(os.path.join(out, "t7", "test_32x32.t7"), Table([("labels", labels), ("data", data)]),
         ascii=True)

    # Refused: a label 0 (Torch7 counts from 1), normalised pixels, colour.
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    one = Storage("torch.ByteStorage", "B", [1] * (4 * 4))
    img = Tensor("torch.ByteTensor", [1, 1, 4, 4], [16, 16, 4, 1], 1, one)
    save(os.path.join(bad, "label0.t7"), Table([
        ("data", img),
        ("labels", Tensor("torch.ByteTensor", [1], [1], 1, Storage("torch.ByteStorage", "B", [0])))]),
        ascii=False)
    save(os.path.join(bad, "normalised.t7"), Table([
        ("data", Tensor("torch.FloatTensor", [1, 4, 4], [16, 4, 1], 1,
                        Storage("torch.FloatStorage", "f", [0.5] * 16))),
        ("labels", Tensor("torch.ByteTensor", [1], [1], 1, Storage("torch.ByteStorage", "B", [1])))]),
        ascii=False)
    save(os.path.join(bad, "colour.t7"), Table([
        ("data", Tensor("torch.ByteTensor", [1, 3, 2, 2], [12, 4, 2, 1], 1,
                        Storage("torch.ByteStorage", "B", [0] * 12))),
        ("labels", Tensor("torch.ByteTensor", [1], [1], 1, Storage("torch.ByteStorage", "B", [1])))]),
        ascii=False)
    save(os.path.join(bad, "notable.t7"), 3.5, ascii=False)


if __name__ == "__main__":
    main()
