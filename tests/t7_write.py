#!/usr/bin/env python3
# tests/t7_write.py - writes .t7 fixtures byte by byte, as Torch7 writes them.
#
# An encoder independent of graphc's reader (runtime/T7.cpp): it follows
# torch7's File.lua writeObject (type tags, reference indices, "V 1" class
# versions), the Tensor/Storage write methods (nDimension, sizes, strides,
# 1-based storage offset, then the storage object; a storage is its size
# then its raw elements) and DiskFile's two modes: binary (little-endian,
# 4-byte ints, 8-byte longs) and ascii (numbers as "%d", "%ld", "%.17g",
# "%.9g", arrays separated by spaces and ended by a newline; characters
# raw, then a newline). tests/t7_test.cpp checks what the reader makes of
# these files against the values written here.
#
#   tests/t7_write.py OUTDIR [--hostile]
#       writes OUTDIR/NAME.{binary,ascii}.t7, and with --hostile the refused
#       files OUTDIR/hostile_NAME.t7 too (the seeds of fuzz/corpus/t7)
import os
import struct
import sys

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5
TYPE_RECUR_FUNCTION = 8


class Table:
    """A Lua table: ordered (key, value) pairs; mutable, so cycles can be built."""

    def __init__(self, pairs=()):
        self.pairs = list(pairs)


class Obj:
    """A torch class instance written from its fields (nn.Linear, ...)."""

    def __init__(self, cls, fields, versioned=True, version=1):
        self.cls, self.fields, self.versioned, self.version = cls, fields, versioned, version


class Storage:
    def __init__(self, cls, kind, values):
        self.cls, self.kind, self.values = cls, kind, values  # kind: struct letter


class Tensor:
    def __init__(self, cls, shape, strides, offset1, storage):
        self.cls, self.shape, self.strides = cls, shape, strides
        self.offset1, self.storage = offset1, storage


class Function:
    def __init__(self, bytecode):
        self.bytecode = bytecode


class File:
    """DiskFile's primitive writes in one mode."""

    def __init__(self, ascii):
        self.ascii, self.out = ascii, bytearray()

    def _numbers(self, fmt, letter, values):
        if self.ascii:
            if values:
                self.out += (" ".join(fmt % v for v in values) + "\n").encode()
        else:
            self.out += struct.pack("<%d%s" % (len(values), letter), *values)

    def ints(self, *v):
        self._numbers("%d", "i", v)

    def longs(self, *v):
        self._numbers("%d", "q", v)

    def double(self, v):
        self._numbers("%.17g", "d", [v])

    def chars(self, data):
        self.out += data
        if self.ascii and data:
            self.out += b"\n"

    def elements(self, kind, values):
        if kind in "bB":  # Char, Byte: raw in both modes
            self.chars(struct.pack("<%d%s" % (len(values), kind), *values))
        elif kind == "h":
            self._numbers("%d", "h", values)
        elif kind == "i":
            self.ints(*values)
        elif kind == "q":
            self.longs(*values)
        elif kind == "f":
            self._numbers("%.9g", "f", values)
        elif kind == "e":  # Half: binary 2 bytes, ascii as a float
            self._numbers("%.9g", "e", values)
        else:
            self._numbers("%.17g", "d", values)


class Writer:
    """File.lua's writeObject with references on (torch.save's default)."""

    def __init__(self, ascii):
        self.f = File(ascii)
        self.index = {}  # id(object) -> reference index

    def string(self, s):
        data = s.encode() if isinstance(s, str) else s
        self.f.ints(len(data))
        self.f.chars(data)

    def write(self, v):
        f = self.f
        if v is None:
            f.ints(TYPE_NIL)
        elif isinstance(v, bool):
            f.ints(TYPE_BOOLEAN)
            f.ints(1 if v else 0)
        elif isinstance(v, (int, float)):
            f.ints(TYPE_NUMBER)
            f.double(float(v))
        elif isinstance(v, str):
            f.ints(TYPE_STRING)
            self.string(v)
        else:
            tag = (TYPE_TABLE if isinstance(v, Table) else
                   TYPE_RECUR_FUNCTION if isinstance(v, Function) else TYPE_TORCH)
            f.ints(tag)
            if id(v) in self.index:
                f.ints(self.index[id(v)])
                return
            self.index[id(v)] = len(self.index) + 1
            f.ints(self.index[id(v)])
            self.body(v)

    def body(self, v):
        f = self.f
        if isinstance(v, Table):
            f.ints(len(v.pairs))
            for k, x in v.pairs:
                self.write(k)
                self.write(x)
        elif isinstance(v, Function):
            self.string(v.bytecode)
            self.write(Table())  # no upvalues
        else:
            if getattr(v, "versioned", True):
                self.string("V %d" % getattr(v, "version", 1))
            self.string(v.cls)
            if isinstance(v, Storage):
                f.longs(len(v.values))
                f.elements(v.kind, v.values)
            elif isinstance(v, Tensor):
                f.ints(len(v.shape))
                f.longs(*v.shape)
                f.longs(*v.strides)
                f.longs(v.offset1)
                self.write(v.storage)
            else:
                self.write(v.fields)


def fixtures():
    """NAME -> root object; t7_test.cpp expects exactly these values."""
    out = {}

    deep = Table([("c", 42)])
    out["nested"] = Table([
        (1, 1.5), (2, "hello"), (3, True), (4, False),
        ("name", "graphc"), ("empty", ""), ("neg", -0.25), ("big", 1e300),
        ("tiny", 1e-300), ("third", 1.0 / 3.0), ("bytes", "a\nb\x00c"),
        ("nested", Table([("a", Table([("b", deep)]))])),
    ])

    shared = Table([("x", 1)])
    root = Table([("a", shared), ("b", shared)])
    root.pairs.append(("self", root))  # a cycle back to the root
    out["shared"] = root

    # A 2x3 view with strides (1, 2) from element 2 of 8: the transpose of a
    # 3x2 block, storage elements 2..7 (1-based offset 2).
    fs = Storage("torch.FloatStorage", "f", [9.0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 9.0])
    ds = Storage("torch.DoubleStorage", "d", [1.0 / 3.0, -2.0, 1e-310, 4.0])
    out["tensors"] = Table([
        ("float", Tensor("torch.FloatTensor", [2, 3], [1, 2], 2, fs)),
        ("byte", Tensor("torch.ByteTensor", [4], [1], 1,
                        Storage("torch.ByteStorage", "B", [0, 1, 200, 255]))),
        ("char", Tensor("torch.CharTensor", [2], [1], 1,
                        Storage("torch.CharStorage", "b", [-128, 127]))),
        ("short", Tensor("torch.ShortTensor", [2], [1], 1,
                         Storage("torch.ShortStorage", "h", [-32768, 32767]))),
        ("int", Tensor("torch.IntTensor", [2], [1], 1,
                       Storage("torch.IntStorage", "i", [-2147483648, 2147483647]))),
        ("long", Storage("torch.LongStorage", "q", [-1, 2 ** 40, 7])),
        ("half", Tensor("torch.HalfTensor", [3], [1], 1,
                        Storage("torch.HalfStorage", "e", [0.5, -2.0, 65504.0]))),
        ("cuda", Tensor("torch.CudaTensor", [2, 2], [2, 1], 1,
                        Storage("torch.CudaStorage", "f", [1.0, 2.0, 3.0, 4.0]))),
        ("cudaLong", Tensor("torch.CudaLongTensor", [1], [1], 1,
                            Storage("torch.CudaLongStorage", "q", [-5]))),
        ("dA", Tensor("torch.DoubleTensor", [2], [1], 1, ds)),
        ("dB", Tensor("torch.DoubleTensor", [2], [2], 2, ds)),  # same storage
        ("expanded", Tensor("torch.FloatTensor", [3, 2], [0, 1], 7, fs)),
        ("empty", Tensor("torch.FloatTensor", [], [], 1, None)),
    ])

    linear = Obj("nn.Linear", Table([
        ("weight", Tensor("torch.FloatTensor", [2, 3], [3, 1], 1,
                          Storage("torch.FloatStorage", "f", [1, 2, 3, 4, 5, 6]))),
        ("bias", Tensor("torch.FloatTensor", [2], [1], 1,
                        Storage("torch.FloatStorage", "f", [0.25, -0.75]))),
        ("train", True),
        ("output", Tensor("torch.FloatTensor", [], [], 1, None)),
    ]))
    relu = Obj("nn.ReLU", Table([("inplace", False), ("threshold", 0)]), versioned=False)
    model = Obj("nn.Sequential", Table([
        ("modules", Table([(1, linear), (2, relu), (3, linear)])),  # a module used twice
        ("train", True),
    ]))
    out["model"] = model

    with_function = Obj("nn.Sequential", Table([
        ("modules", Table([(1, Obj("nn.ReLU", Table())),
                           (2, Obj("nn.Custom", Table([
                               ("updateOutput", Function(b"\x1bLuaQ\x00 fake bytecode"))])))])),
    ]))
    out["function"] = with_function

    # Every element type, host and CUDA (read as host data), at its extremes:
    # a 2x2 view (strides 1, 2, offset 2) of a storage of five, then the
    # storage itself (a reference back), the first tensor again (another),
    # and empty storages and tensors. The bytes 10 and 32 test ascii's raw
    # characters; -0, subnormals, infinities and NaN its number formats.
    f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
    inf = float("inf")
    extremes = [
        ("Byte", "B", [0, 10, 32, 128, 255]),
        ("Char", "b", [-128, -1, 0, 10, 127]),
        ("Short", "h", [-32768, -1, 0, 1, 32767]),
        ("Int", "i", [-2 ** 31, -1, 0, 1, 2 ** 31 - 1]),
        ("Long", "q", [-2 ** 63, -1, 0, 2 ** 53 + 1, 2 ** 63 - 1]),
        ("Float", "f", [f32(0.1), -0.0, f32(1e-45), f32(3.4028234663852886e38), -inf]),
        ("Double", "d", [0.1, -0.0, 5e-324, 1.7976931348623157e308, float("nan")]),
        ("Half", "e", [0.5, -2.0, 65504.0, 2.0 ** -24, -inf]),
    ]
    types = Table()
    for cuda in (False, True):
        for name, kind, values in extremes:
            prefix = "torch.Cuda" if cuda else "torch."
            element = "" if cuda and name == "Float" else name  # torch.CudaTensor
            storage = Storage(prefix + element + "Storage", kind, values)
            key = ("Cuda" if cuda else "") + name
            types.pairs.append((key, Tensor(prefix + element + "Tensor", [2, 2], [1, 2], 2,
                                            storage)))
            types.pairs.append((key + "Storage", storage))
    types.pairs.append(("again", types.pairs[0][1]))
    types.pairs.append(("emptyStorage", Storage("torch.DoubleStorage", "d", [])))
    types.pairs.append(("zero", Tensor("torch.IntTensor", [3, 0], [0, 1], 1,
                                       Storage("torch.IntStorage", "i", []))))
    types.pairs.append(("empty", Tensor("torch.LongTensor", [], [], 1, None)))
    out["types"] = types
    return out


def hostile():
    """NAME -> bytes that must be refused (the seeds of fuzz/corpus/t7)."""
    i = lambda *v: struct.pack("<%di" % len(v), *v)
    q = lambda *v: struct.pack("<%dq" % len(v), *v)
    s = lambda t: i(len(t)) + t
    torch = lambda index, cls: i(TYPE_TORCH, index) + s(b"V 1") + s(cls)
    storage4 = torch(2, b"torch.FloatStorage") + q(4) + struct.pack("<4f", 1, 2, 3, 4)
    deep = b"".join(i(TYPE_TABLE, n, 1, TYPE_NUMBER) + struct.pack("<d", 1) for n in range(1, 1100))
    return {
        "huge_storage": torch(1, b"torch.FloatStorage") + q(2 ** 62),
        "negative_storage": torch(1, b"torch.DoubleStorage") + q(-3),
        "long_string": i(TYPE_STRING, 1000) + b"abc",
        "negative_string": i(TYPE_STRING, -1),
        "huge_table": i(TYPE_TABLE, 1, 2 ** 31 - 1),
        "deep_tables": deep,
        "tensor_outside": torch(1, b"torch.FloatTensor") + i(1) + q(3, 2, 1) + storage4,
        "tensor_overflow": torch(1, b"torch.FloatTensor") + i(2) + q(2 ** 62, 4, 2 ** 62, 1, 1)
        + storage4,
        "tensor_repeat": torch(1, b"torch.FloatTensor") + i(1) + q(2 ** 62, 0, 1) + storage4,
        "tensor_self_storage": torch(1, b"torch.FloatTensor") + i(1) + q(2, 1, 1) + i(4, 1),
        "tensor_dims": torch(1, b"torch.FloatTensor") + i(100000),
        "function": i(TYPE_RECUR_FUNCTION, 1) + s(b"\x1bLuaQ") + i(TYPE_TABLE, 2, 0),
        "truncated_storage": torch(1, b"torch.FloatStorage") + q(4) + struct.pack("<2f", 1, 2),
        "truncated_tensor": torch(1, b"torch.FloatTensor") + i(2) + q(2, 3, 3),
        "tensor_negative_size": torch(1, b"torch.FloatTensor") + i(1) + q(-2, 1, 1) + storage4,
        "tensor_negative_stride": torch(1, b"torch.FloatTensor") + i(2) + q(2, 2, 2, -1, 2)
        + storage4,
        "unknown_class": torch(1, b"torch.QuantTensor") + i(0) + q(1) + i(TYPE_NIL),
        "unknown_tag": i(3, 1, 1) + i(TYPE_STRING) + s(b"k") + i(9, 2),
        # An nn.Sequential among its own modules: a cycle of references.
        "module_cycle": torch(1, b"nn.Sequential") + i(TYPE_TABLE, 2, 1) + i(TYPE_STRING)
        + s(b"modules") + i(TYPE_TABLE, 3, 1, TYPE_NUMBER) + struct.pack("<d", 1)
        + i(TYPE_TORCH, 1),
        "ascii_short_range": b"4\n1\n3\nV 1\n18\ntorch.ShortStorage\n2\n5 70000\n",
        "ascii_garbage": b"3\n1\n1\n1\n1\n1\nxyz\n",
    }


def encode(root, ascii):
    w = Writer(ascii)
    w.write(root)
    return bytes(w.f.out)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    files = {}
    for name, root in fixtures().items():
        for mode, ascii in (("binary", False), ("ascii", True)):
            files["%s.%s.t7" % (name, mode)] = encode(root, ascii)
    if "--hostile" in sys.argv:
        files.update(("hostile_%s.t7" % name, data) for name, data in hostile().items())
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
