#!/usr/bin/env python3
# tests/t7_import_test.py GRAPHC SOURCE_DIR - trained Torch7 networks in and
# out of graphc, checked against PyTorch. Two networks are written as Torch7 writes
# them (tests/t7_write.py: the module classes and the fields Torch7 keeps):
# an MLP in binary with FloatTensor weights and Dropout, and a convnet in
# ascii with CudaTensor weights, cudnn classes, SpatialConvolutionMM's 2-D
# weight and a nested Sequential. `graphc eval NET.t7 --test-data ...`
# must give the outputs PyTorch computes with the same weights (1e-4), and
# `graphc import` must write a model file and safetensors weights that
# `graphc eval` turns into the same bits. Unsupported modules and bad
# weights are refused with their place in the tree. Out: networks trained
# by graphc and exported (`graphc export`) are read by a reader written here
# from File.lua's layout, rebuilt in PyTorch from their Torch7 fields, and
# must compute graphc's outputs. Exits 77 (a skip) without PyTorch.
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("skipped: PyTorch (Debian's python3-torch) is not installed")
    sys.exit(77)

graphc, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(src, "tests"))
from t7_write import Obj, Storage, Table, Tensor, Writer  # noqa: E402

rng = np.random.default_rng(5)


def ftensor(a, cls="torch.FloatTensor"):
    a = np.ascontiguousarray(a, dtype=np.float32)
    strides = [int(np.prod(a.shape[i + 1:])) for i in range(a.ndim)]
    storage_cls = cls.replace("Tensor", "Storage")
    return Tensor(cls, list(a.shape), strides, 1,
                  Storage(storage_cls, "f", [float(x) for x in a.ravel()]))


def module(cls, **fields):
    pairs = [(k, v) for k, v in fields.items()]
    pairs.append(("train", False))
    return Obj(cls, Table(pairs))


def sequential(*mods):
    return module("nn.Sequential", modules=Table([(i + 1, m) for i, m in enumerate(mods)]))


def linear(w, b, cls="torch.FloatTensor"):
    return module("nn.Linear", weight=ftensor(w, cls), bias=ftensor(b, cls),
                  gradWeight=ftensor(np.zeros_like(w), cls), gradBias=ftensor(np.zeros_like(b), cls))


def view(*sizes, cls="nn.View"):
    return module(cls, size=Storage("torch.LongStorage", "q", list(sizes)),
                  numElements=int(np.prod(sizes)))


def save(path, root, ascii):
    w = Writer(ascii)
    w.write(root)
    with open(path, "wb") as f:
        f.write(w.f.out)


def run(*args, ok=True):
    p = subprocess.run([graphc, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit("FAIL: graphc %s: %s" % (" ".join(args), p.stderr))
    if not ok and p.returncode == 0:
        sys.exit("FAIL: accepted: graphc %s" % " ".join(args))
    return p


work = tempfile.mkdtemp()
os.chdir(work)
subprocess.run([sys.executable, os.path.join(src, "tests", "t7_data.py"), work], check=True)
raw = open("idx/t10k-images-idx3-ubyte", "rb").read()
n = struct.unpack(">I", raw[4:8])[0]
images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, 28, 28).astype(np.float32)
x = torch.from_numpy(np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2))))  # as graphc pads

# The MLP: View, Linear, ReLU, Dropout, Linear, LogSoftMax; binary.
w1, b1 = rng.normal(0, 0.002, (64, 1024)), rng.normal(0, 0.1, 64)
w2, b2 = rng.normal(0, 0.2, (10, 64)), rng.normal(0, 0.1, 10)
save("mlp.t7", sequential(
    view(1024), linear(w1, b1), module("nn.ReLU", threshold=0, val=0, inplace=False),
    module("nn.Dropout", p=0.5, v2=True), linear(w2, b2), module("nn.LogSoftMax")), ascii=False)
mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 64), torch.nn.ReLU(),
                          torch.nn.Dropout(0.5), torch.nn.Linear(64, 10), torch.nn.LogSoftmax(1))
with torch.no_grad():
    for layer, (w, b) in zip([mlp[1], mlp[4]], [(w1, b1), (w2, b2)]):
        layer.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))

# The convnet: cudnn conv 1->4 5x5, cudnn ReLU, 2x2 max pooling, a nested
# Sequential with SpatialConvolutionMM 4->6 3x3 pad 1 (2-D weight) and
# Tanh, View, Linear, SoftMax; ascii, CudaTensor weights.
cw1, cb1 = rng.normal(0, 0.02, (4, 1, 5, 5)), rng.normal(0, 0.1, 4)
cw2, cb2 = rng.normal(0, 0.2, (6, 4, 3, 3)), rng.normal(0, 0.1, 6)
cw3, cb3 = rng.normal(0, 0.05, (10, 6 * 14 * 14)), rng.normal(0, 0.1, 10)
cuda = "torch.CudaTensor"
conv1 = module("cudnn.SpatialConvolution", nInputPlane=1, nOutputPlane=4, kW=5, kH=5, dW=1, dH=1,
               padW=0, padH=0, groups=1, weight=ftensor(cw1, cuda), bias=ftensor(cb1, cuda))
conv2 = module("nn.SpatialConvolutionMM", nInputPlane=4, nOutputPlane=6, kW=3, kH=3, dW=1, dH=1,
               padW=1, padH=1, weight=ftensor(cw2.reshape(6, 36), cuda), bias=ftensor(cb2, cuda))
save("convnet.t7", sequential(
    conv1, module("cudnn.ReLU", threshold=0, val=0, inplace=True),
    module("nn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0, ceil_mode=False),
    sequential(conv2, module("nn.Tanh")), view(6 * 14 * 14),
    linear(cw3, cb3, cuda), module("cudnn.SoftMax")), ascii=True)
conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                           torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                           torch.nn.Linear(6 * 14 * 14, 10), torch.nn.Softmax(1))
with torch.no_grad():
    for layer, (w, b) in zip([conv[0], conv[3], conv[6]], [(cw1, cb1), (cw2, cb2), (cw3, cb3)]):
        layer.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))

# Graph containers (binary): a ResNet basic block (ConcatTable of a conv with
# Threshold and an Identity, CAddTable), cudnn average pooling, a
# ConcatTable/JoinTable(1, 3) and an inception-style Concat(2) with
# MulConstant and AddConstant.
rw1, rb1 = rng.normal(0, 0.01, (4, 1, 3, 3)), rng.normal(0, 0.1, 4)
rw2, rb2 = rng.normal(0, 0.1, (4, 4, 3, 3)), rng.normal(0, 0.1, 4)
rw3, rb3 = rng.normal(0, 0.1, (2, 8, 1, 1)), rng.normal(0, 0.1, 2)
rw4, rb4 = rng.normal(0, 0.02, (10, 10 * 16 * 16)), rng.normal(0, 0.1, 10)


def conv_module(w, b, pad):
    o, i, kh, kw = w.shape
    return module("nn.SpatialConvolution", nInputPlane=i, nOutputPlane=o, kW=kw, kH=kh, dW=1, dH=1,
                  padW=pad, padH=pad, weight=ftensor(w), bias=ftensor(b))


def container(cls, *mods, **fields):
    return module(cls, modules=Table([(i + 1, m) for i, m in enumerate(mods)]), **fields)


save("graph.t7", sequential(
    conv_module(rw1, rb1, 1), module("nn.ReLU", threshold=0, val=0, inplace=True),
    container("nn.ConcatTable", sequential(conv_module(rw2, rb2, 1),
                                           module("nn.Threshold", threshold=0.1, val=-0.5,
                                                  inplace=False)),
              module("nn.Identity")),
    module("nn.CAddTable", inplace=True),
    module("cudnn.SpatialAveragePooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0,
           mode="CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING"),
    container("nn.ConcatTable", module("nn.Identity"), module("nn.MulConstant", constant_scalar=2.0)),
    module("nn.JoinTable", dimension=1, nInputDims=3),
    container("nn.Concat", sequential(conv_module(rw3, rb3, 0)),
              sequential(module("nn.MulConstant", constant_scalar=0.5),
                         module("nn.AddConstant", constant_scalar=1.0)), dimension=2),
    view(10 * 16 * 16), linear(rw4, rb4), module("nn.LogSoftMax")), ascii=False)


class Graph(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3, padding=1)
        self.c3, self.fc = torch.nn.Conv2d(8, 2, 1), torch.nn.Linear(10 * 16 * 16, 10)
        with torch.no_grad():
            for layer, (w, b) in zip([self.c1, self.c2, self.c3, self.fc],
                                     [(rw1, rb1), (rw2, rb2), (rw3, rb3), (rw4, rb4)]):
                layer.weight.copy_(torch.from_numpy(w.astype(np.float32)))
                layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))

    def forward(self, x):
        x = torch.relu(self.c1(x))
        b = self.c2(x)
        x = torch.where(b > 0.1, b, torch.full_like(b, -0.5)) + x
        x = torch.nn.functional.avg_pool2d(x, 2, 2)
        x = torch.cat([x, 2 * x], 1)
        x = torch.cat([self.c3(x), 0.5 * x + 1], 1)
        return torch.log_softmax(self.fc(x.flatten(1)), 1)


# BatchNorm (binary): cudnn.SpatialBatchNormalization as nn's version 2
# keeps it (affine, running_var), and nn.BatchNormalization as files from
# before version 2 keep it (running_std = 1/sqrt(var + eps), no `affine`).
bw1, bb1 = rng.normal(0, 0.01, (4, 1, 3, 3)), rng.normal(0, 0.1, 4)
bw2, bb2 = rng.normal(0, 0.05, (16, 1024)), rng.normal(0, 0.1, 16)
bw3, bb3 = rng.normal(0, 0.3, (10, 16)), rng.normal(0, 0.1, 10)
with torch.no_grad():
    c1 = torch.nn.functional.conv2d(x, torch.from_numpy(bw1.astype(np.float32)),
                                    torch.from_numpy(bb1.astype(np.float32)), padding=1)
    mean1 = c1.mean((0, 2, 3)).numpy() + rng.normal(0, 0.1, 4)
    var1 = c1.var((0, 2, 3)).numpy() * rng.uniform(0.8, 1.25, 4)
    h = torch.nn.functional.max_pool2d(torch.relu(
        (c1 - torch.from_numpy(mean1.astype(np.float32))[:, None, None]) /
        torch.from_numpy(np.sqrt(var1 + 1e-5).astype(np.float32))[:, None, None]), 2)
    l2 = h.flatten(1) @ torch.from_numpy(bw2.T.astype(np.float32))
    mean2, var2 = l2.mean(0).numpy() + 0.1, l2.var(0).numpy() * 1.2
gamma1, beta1 = rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.1, 4)
gamma2, beta2 = rng.uniform(0.5, 1.5, 16), rng.normal(0, 0.1, 16)
save("bnnet.t7", sequential(
    conv_module(bw1, bb1, 1),
    module("cudnn.SpatialBatchNormalization", eps=1e-5, momentum=0.1, affine=True, nDim=4,
           running_mean=ftensor(mean1), running_var=ftensor(var1), weight=ftensor(gamma1),
           bias=ftensor(beta1)),
    module("nn.ReLU", threshold=0, val=0, inplace=True),
    module("nn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0),
    view(1024), linear(bw2, bb2),
    module("nn.BatchNormalization", eps=0.5, momentum=0.2, running_mean=ftensor(mean2),
           running_std=ftensor(1 / np.sqrt(var2 + 0.5)), weight=ftensor(gamma2),
           bias=ftensor(beta2)),
    module("nn.ReLU", threshold=0, val=0, inplace=False), linear(bw3, bb3),
    module("nn.LogSoftMax")), ascii=False)
bnnet = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4, eps=1e-5), torch.nn.ReLU(),
    torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(1024, 16),
    torch.nn.BatchNorm1d(16, eps=0.5), torch.nn.ReLU(), torch.nn.Linear(16, 10),
    torch.nn.LogSoftmax(1))
with torch.no_grad():
    for layer, values in ((bnnet[0], (bw1, bb1)), (bnnet[5], (bw2, bb2)), (bnnet[8], (bw3, bb3)),
                          (bnnet[1], (gamma1, beta1, mean1, var1)),
                          (bnnet[6], (gamma2, beta2, mean2, var2))):
        names = ("weight", "bias", "running_mean", "running_var")
        for name, v in zip(names, values):
            getattr(layer, name).copy_(torch.from_numpy(np.asarray(v, dtype=np.float32)))

# Ceil mode (binary): 3x3 stride 2 max pooling (32 -> 16, floor mode 15),
# then 3x3 stride 2 pad 1 average pooling (16 -> 9, floor mode 8), whose
# clipped last windows divide by their size within the input and padding.
pw1, pb1 = rng.normal(0, 0.3, (2, 1, 3, 3)), rng.normal(0, 0.1, 2)
pw2, pb2 = rng.normal(0, 0.1, (10, 2 * 9 * 9)), rng.normal(0, 0.1, 10)
save("ceilnet.t7", sequential(
    conv_module(pw1, pb1, 1),
    module("nn.SpatialMaxPooling", kW=3, kH=3, dW=2, dH=2, padW=0, padH=0, ceil_mode=True),
    module("nn.SpatialAveragePooling", kW=3, kH=3, dW=2, dH=2, padW=1, padH=1, ceil_mode=True,
           count_include_pad=True, divide=True),
    view(2 * 9 * 9), linear(pw2, pb2), module("nn.LogSoftMax")), ascii=False)
ceilnet = torch.nn.Sequential(
    torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.MaxPool2d(3, 2, ceil_mode=True),
    torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True), torch.nn.Flatten(),
    torch.nn.Linear(2 * 9 * 9, 10), torch.nn.LogSoftmax(1))
with torch.no_grad():
    for layer, (w, b) in zip([ceilnet[0], ceilnet[4]], [(pw1, pb1), (pw2, pb2)]):
        layer.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))

for name, net in (("mlp", mlp), ("convnet", conv), ("graph", Graph()), ("bnnet", bnnet),
                  ("ceilnet", ceilnet)):
    net.eval()
    with torch.no_grad():
        want = net(x).numpy()
    run("eval", name + ".t7", "--test-data", "t7/test_32x32.t7", "--dump-outputs", name + ".f32",
        "--no-cache")
    got = np.fromfile(name + ".f32", dtype=np.float32).reshape(n, 10)
    err = np.abs(got - want).max()
    if not err < 1e-4:
        sys.exit("FAIL: %s.t7: graphc's outputs differ from PyTorch's by %g" % (name, err))
    print("ok: graphc eval %s.t7 matches PyTorch (largest difference %.2g)" % (name, err))

    out = run("import", name + ".t7", "-o", "out/" + name).stdout
    print("ok: " + out.strip())
    run("eval", "out/%s.model" % name, "--weights", "out/%s.safetensors" % name, "--test-data",
        "t7/test_32x32.t7", "--dump-outputs", name + ".imported.f32", "--no-cache")
    if open(name + ".f32", "rb").read() != open(name + ".imported.f32", "rb").read():
        sys.exit("FAIL: the imported %s.model and .safetensors evaluate differently" % name)
    print("ok: out/%s.model with out/%s.safetensors evaluates to the same bits" % (name, name))
    # The imported model file trains too (its criterion and optimizer).
    run("train", "out/%s.model" % name, "--data", "t7/train_32x32.t7", "--epochs", "1",
        "--train-limit", "64", "--test-limit", "64", "--progress", "none", "--no-cache")

# Refused, each naming the place in the tree.
def refused(path, root, expect, ascii=False):
    save(path, root, ascii)
    err = run("eval", path, "--test-data", "t7/test_32x32.t7", ok=False).stderr
    if expect not in err:
        sys.exit("FAIL: %s: expected %r, got %r" % (path, expect, err))
    print("ok: refused: " + err.strip())


lp = module("nn.SpatialSubtractiveNormalization", nInputPlane=1)
refused("lp.t7", sequential(view(1024), sequential(linear(w1, b1), lp)),
        "root.modules[2].modules[2]: nn.SpatialSubtractiveNormalization is not supported")
refused("bnsize.t7", sequential(module(
    "nn.BatchNormalization", eps=1e-5, momentum=0.1, affine=True, running_mean=ftensor(b1),
    running_var=ftensor(np.ones(3)), weight=ftensor(b1), bias=ftensor(b1))),
    "root.modules[1]: nn.BatchNormalization's running_var has size [3], expected [64]")
refused("size.t7", sequential(module(
    "nn.SpatialConvolution", nInputPlane=1, nOutputPlane=4, kW=5, kH=5, dW=1, dH=1, padW=0, padH=0,
    weight=ftensor(cw1[:, :, :, :4]), bias=ftensor(cb1))),
    "root.modules[1]: nn.SpatialConvolution's weight has size [4,1,5,4], expected [4,1,5,5]")
refused("stride0.t7", sequential(module(
    "nn.SpatialConvolution", nInputPlane=1, nOutputPlane=4, kW=5, kH=5, dW=0, dH=1, padW=0, padH=0,
    weight=ftensor(cw1), bias=ftensor(cb1))),
    "root.modules[1]: nn.SpatialConvolution's `dW` is 0, not a size")
refused("bias.t7", sequential(view(1024), module("nn.Linear", weight=ftensor(w1))),
        "root.modules[2]: nn.Linear without a bias")
refused("ceil.t7", sequential(module("nn.SpatialMaxPooling", kW=1, kH=1, dW=4, dH=4, padW=0,
                                     padH=0, ceil_mode=True)),
        "ceil mode (:ceil()) on input [N,1,28,28] makes a last window that starts past the input")
refused("nan.t7", sequential(view(1024), linear(np.full((64, 1024), np.nan), b1)),
        "root.modules[2]: nn.Linear's weight holds nan")
refused("notmodule.t7", Table([("a", 1)]), "root: not an nn module")

# Out: a network trained by graphc, exported, read back by a reader written
# here from File.lua's layout (independent of graphc's), rebuilt in PyTorch
# from the fields Torch7's modules keep, and run on the test images.
def read_t7(data):
    pos = 0
    refs = {}

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        (n,) = take("i")
        nonlocal pos
        pos += n
        return data[pos - n:pos].decode()

    def obj():
        (tag,) = take("i")
        if tag == 0:
            return None
        if tag == 1:
            return take("d")[0]
        if tag == 2:
            return string()
        if tag == 5:
            return take("i")[0] == 1
        (index,) = take("i")
        assert index not in refs, "graphc shares nothing"
        if tag == 3:
            (n,) = take("i")
            t = {}
            refs[index] = t
            for _ in range(n):
                k = obj()
                t[k] = obj()
            return t
        assert tag == 4, tag
        assert string() == "V 1"
        cls = string()
        if cls == "torch.FloatTensor":
            (nd,) = take("i")
            shape, strides = take("%dq" % nd), take("%dq" % nd)
            (offset,) = take("q")
            storage = obj()
            if nd == 0:
                return np.zeros(0, dtype=np.float32)
            return np.lib.stride_tricks.as_strided(storage[offset - 1:], shape,
                                                   [4 * s for s in strides]).copy()
        if cls in ("torch.FloatStorage", "torch.LongStorage"):
            (n,) = take("q")
            kind = "f" if cls == "torch.FloatStorage" else "q"
            return np.array(take("%d%s" % (n, kind)), dtype=np.float32 if kind == "f" else np.int64)
        fields = obj()
        fields["__class"] = cls
        return fields

    root = obj()
    assert pos == len(data), "trailing bytes"
    return root


def torch_net(m):
    cls = m["__class"]
    for field in ("output", "gradInput", "train", "_type"):
        assert field in m, "%s has no %s" % (cls, field)
    if cls == "nn.Sequential":
        return torch.nn.Sequential(*[torch_net(m["modules"][float(i + 1)])
                                     for i in range(len(m["modules"]))])
    if cls in ("nn.Linear", "nn.SpatialConvolution", "nn.SpatialConvolutionMM"):
        assert m["gradWeight"].shape == m["weight"].shape and not m["gradWeight"].any()
        if cls == "nn.Linear":
            layer = torch.nn.Linear(m["weight"].shape[1], m["weight"].shape[0])
            w = m["weight"]
        else:
            k = (int(m["kH"]), int(m["kW"]))
            layer = torch.nn.Conv2d(int(m["nInputPlane"]), int(m["nOutputPlane"]), k,
                                    stride=(int(m["dH"]), int(m["dW"])),
                                    padding=(int(m["padH"]), int(m["padW"])))
            w = m["weight"].reshape(layer.weight.shape)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(m["bias"]))
        return layer
    if cls in ("nn.BatchNormalization", "nn.SpatialBatchNormalization"):
        assert m["affine"] is True and m["nDim"] == (2 if cls == "nn.BatchNormalization" else 4)
        bn = (torch.nn.BatchNorm1d if m["nDim"] == 2 else torch.nn.BatchNorm2d)(
            len(m["running_mean"]), eps=m["eps"], momentum=m["momentum"])
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(torch.from_numpy(m[name]))
        return bn
    if cls == "nn.SpatialMaxPooling":
        return torch.nn.MaxPool2d((int(m["kH"]), int(m["kW"])), (int(m["dH"]), int(m["dW"])),
                                  (int(m["padH"]), int(m["padW"])), ceil_mode=m["ceil_mode"])
    if cls == "nn.SpatialAveragePooling":
        assert m["count_include_pad"] is True and m["divide"] is True
        return torch.nn.AvgPool2d((int(m["kH"]), int(m["kW"])), (int(m["dH"]), int(m["dW"])),
                                  (int(m["padH"]), int(m["padW"])), ceil_mode=m["ceil_mode"],
                                  count_include_pad=True)
    if cls in ("nn.View", "nn.Reshape"):
        return torch.nn.Flatten() if len(m["size"]) == 1 else torch.nn.Unflatten(
            1, tuple(int(d) for d in m["size"]))
    if cls == "nn.ReLU":
        assert m["threshold"] == 0 and m["val"] == 0
        return torch.nn.ReLU()
    if cls == "nn.Dropout":
        assert m["v2"] is True
        return torch.nn.Dropout(m["p"])
    return {"nn.Tanh": torch.nn.Tanh, "nn.Sigmoid": torch.nn.Sigmoid,
            "nn.LogSoftMax": lambda: torch.nn.LogSoftmax(1),
            "nn.SoftMax": lambda: torch.nn.Softmax(1)}[cls]()


with open("bn.model", "w") as f:  # BatchNorm trained by graphc, out to Torch7
    f.write("require 'nn'\nmodel = nn.Sequential()\n"
            "model:add(nn.SpatialConvolution(1, 4, 5, 5, 2, 2))\n"
            "model:add(nn.SpatialBatchNormalization(4)):add(nn.ReLU())\n"
            "model:add(nn.View(4 * 14 * 14)):add(nn.Linear(784, 10))\n"
            "model:add(nn.BatchNormalization(10, 1e-3, 0.3)):add(nn.LogSoftMax())\n"
            "criterion = nn.ClassNLLCriterion()\ninput = {1, 32, 32}\n"
            "optimizer = optim.sgd\nconfig = {learningRate = 0.01, momentum = 0.9}\n")
with open("ceil.model", "w") as f:  # ceil-mode pooling trained by graphc, out to Torch7
    f.write("require 'nn'\nmodel = nn.Sequential()\n"
            "model:add(nn.SpatialConvolution(1, 4, 3, 3)):add(nn.ReLU())\n"
            "model:add(nn.SpatialMaxPooling(3, 3, 2, 2):ceil())\n"  # 30 -> 15 (floor 14)
            "model:add(nn.SpatialAveragePooling(2, 2, 2, 2):ceil())\n"  # 15 -> 8 (floor 7)
            "model:add(nn.View(4 * 8 * 8)):add(nn.Linear(256, 10)):add(nn.LogSoftMax())\n"
            "criterion = nn.ClassNLLCriterion()\ninput = {1, 32, 32}\n"
            "optimizer = optim.sgd\nconfig = {learningRate = 0.01, momentum = 0.9}\n")
for model in ("mlp.model", "lenet.model", "bn.model", "ceil.model"):
    name = model.split(".")[0]
    model = os.path.join(src, "examples", model) if name not in ("bn", "ceil") else model
    run("train", model, "--data", "t7/train_32x32.t7", "--epochs",
        "1", "--train-limit", "128", "--progress", "none", "--no-cache", "--save",
        name + ".trained.safetensors")
    print("ok: " + run("export", name + ".trained.safetensors", "-o", name + ".out.t7").stdout.strip())
    run("eval", model, "--weights", name + ".trained.safetensors",
        "--test-data", "t7/test_32x32.t7", "--dump-outputs", name + ".trained.f32", "--no-cache")
    got = np.fromfile(name + ".trained.f32", dtype=np.float32).reshape(n, 10)
    net = torch_net(read_t7(open(name + ".out.t7", "rb").read()))
    net.eval()
    with torch.no_grad():
        want = net(x).numpy()
    err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
    if not err < 1e-5:
        sys.exit("FAIL: %s.out.t7 rebuilt in PyTorch differs from graphc by %g" % (name, err))
    print("ok: %s.out.t7, read here and rebuilt in PyTorch, computes graphc's outputs "
          "(relative difference %.2g)" % (name, err))
    run("eval", name + ".out.t7", "--test-data", "t7/test_32x32.t7", "--dump-outputs",
        name + ".back.f32", "--no-cache")
    if open(name + ".back.f32", "rb").read() != open(name + ".trained.f32", "rb").read():
        sys.exit("FAIL: graphc eval %s.out.t7 differs from the checkpoint it came from" % name)
    print("ok: graphc eval %s.out.t7 gives the checkpoint's outputs, bit for bit" % name)
# graphc train --save net.t7 writes what export writes from the checkpoint.
run("train", os.path.join(src, "examples", "lenet.model"), "--data", "t7/train_32x32.t7",
    "--epochs", "1", "--train-limit", "128", "--progress", "none", "--no-cache", "--save",
    "lenet.direct.t7")
if open("lenet.direct.t7", "rb").read() != open("lenet.out.t7", "rb").read():
    sys.exit("FAIL: train --save lenet.direct.t7 differs from export of the same run")
err = run("train", os.path.join(src, "examples", "lenet.model"), "--data", "t7/train_32x32.t7",
          "--epochs", "1", "--save", "lenet.direct.t7", ok=False).stderr
if "only with --force" not in err:
    sys.exit("FAIL: train --save over an existing .t7: " + err)
print("ok: train --save lenet.direct.t7 writes the exported file's bytes, and replaces none")
err = run("export", "mlp.trained.safetensors", "-o", "mlp.out.t7", ok=False).stderr
if "replaces nothing" not in err:
    sys.exit("FAIL: export over an existing file: " + err)
err = run("export", "out/mlp.safetensors", "-o", "x.t7", ok=False).stderr
if "name the model file with --model" not in err:
    sys.exit("FAIL: export of a checkpoint without its network: " + err)
run("export", "out/mlp.safetensors", "-o", "x.t7", "--model", "out/mlp.model")
print("ok: export refuses to replace a file, and asks for --model where the network is unknown")

# The graph network out again: imported, exported from its files, and read
# back (by the reader here, and by graphc) to the same outputs.
run("export", "out/graph.safetensors", "--model", "out/graph.model", "-o", "graph.out.t7")
back = read_t7(open("graph.out.t7", "rb").read())
assert back["modules"][3.0]["__class"] == "nn.ConcatTable", back["modules"][3.0]["__class"]
assert back["modules"][8.0]["dimension"] == 2 and back["modules"][7.0]["nInputDims"] == 3
run("eval", "graph.out.t7", "--test-data", "t7/test_32x32.t7", "--dump-outputs", "graph.back.f32",
    "--no-cache")
if open("graph.back.f32", "rb").read() != open("graph.f32", "rb").read():
    sys.exit("FAIL: graph.t7 imported and exported again evaluates differently")
print("ok: graph.t7 imported and exported again evaluates to the same bits")

# Nothing the user saved is replaced.
err = run("import", "mlp.t7", "-o", "out/mlp", ok=False).stderr
if "replaces nothing" not in err:
    sys.exit("FAIL: import over existing files: " + err)
run("import", "mlp.t7", "-o", "out/mlp", "--force")
print("ok: import refuses to replace out/mlp.model without --force")
print("1 passed, 0 failed")
