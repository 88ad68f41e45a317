#!/usr/bin/env python3
# tests/t7_read.py - reads .t7 files as Torch7 reads them, independently of
# graphc's reader (runtime/T7.cpp) and writer (runtime/T7Write.cpp).
#
# From torch7's File.lua readObject (type tags, reference indices: an index
# met again is the object already read) and DiskFile's two modes: binary
# (little-endian, 4-byte ints, 8-byte longs) and ascii (fscanf: numbers
# separated by white space, one newline eaten after an array; characters
# raw, then their newline). It makes tests/t7_write.py's objects (Table,
# Obj, Storage, Tensor), one Python object per reference index, so that
# t7_write's Writer can encode what was read again.
#
#   tests/t7_read.py DIR
#       checks every DIR/NAME.MODE.t7 (MODE binary or ascii) that graphc
#       wrote: it reads whole in its mode; read and written again by
#       t7_write.py it gives the same bytes; the binary and the ascii file
#       of one NAME hold the same tree; and where NAME is one of
#       t7_write.py's fixtures, the tree is that fixture, values and shared
#       objects alike. Exits 1 at the first difference.
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t7_write import Obj, Storage, Table, Tensor, Writer, fixtures  # noqa: E402

LETTERS = {"Byte": "B", "Char": "b", "Short": "h", "Int": "i", "Long": "q", "Float": "f",
           "Double": "d", "Half": "e", "": "f"}  # torch.CudaTensor: floats
WHITE = b" \t\n\v\f\r"


class Reader:
    def __init__(self, data, ascii):
        self.data, self.ascii, self.pos, self.refs = data, ascii, 0, {}

    def _token(self):
        while self.data[self.pos:self.pos + 1] and self.data[self.pos] in WHITE:
            self.pos += 1
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos] not in WHITE:
            self.pos += 1
        if start == self.pos:
            raise ValueError("byte %d: the file ends where a number should be" % start)
        return self.data[start:self.pos].decode()

    def _end_array(self, n):
        if n > 0 and self.data[self.pos:self.pos + 1] == b"\n":
            self.pos += 1

    def numbers(self, letter, n):
        if not self.ascii:
            size = struct.calcsize("<%d%s" % (n, letter))
            if self.pos + size > len(self.data):
                raise ValueError("byte %d: truncated" % self.pos)
            v = struct.unpack_from("<%d%s" % (n, letter), self.data, self.pos)
            self.pos += size
            return list(v)
        parse = float if letter in "fde" else int
        v = [parse(self._token()) for _ in range(n)]
        # Through the element type: a float is what "%g" makes of the text.
        v = list(struct.unpack("<%d%s" % (n, letter), struct.pack("<%d%s" % (n, letter), *v)))
        self._end_array(n)
        return v

    def int(self):
        return self.numbers("i", 1)[0]

    def chars(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("byte %d: %d characters past the end" % (self.pos, n))
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        if self.ascii:
            self._end_array(n)
        return v

    def string(self):
        return self.chars(self.int())

    def elements(self, letter, n):
        if letter in "bB":  # raw characters in both modes
            return list(struct.unpack("<%d%s" % (n, letter), self.chars(n)))
        return self.numbers(letter, n)

    def object(self):
        tag = self.int()
        if tag == 0:
            return None
        if tag == 1:
            return self.numbers("d", 1)[0]
        if tag == 5:
            return self.int() == 1
        if tag == 2:
            s = self.string()
            try:
                return s.decode()
            except UnicodeDecodeError:
                return s  # t7_write's Writer writes bytes as they are
        if tag not in (3, 4):
            raise ValueError("byte %d: type tag %d" % (self.pos - 4, tag))
        index = self.int()
        if index in self.refs:
            return self.refs[index]
        if tag == 3:
            t = self.refs[index] = Table()
            for _ in range(self.int()):
                k = self.object()
                t.pairs.append((k, self.object()))
            return t
        cls = self.string().decode()
        versioned, version = cls.startswith("V "), 1
        if versioned:
            version = int(cls[2:])
            cls = self.string().decode()
        name = cls[len("torch."):] if cls.startswith("torch.") else ""
        name = name[len("Cuda"):] if name.startswith("Cuda") else name
        if name.endswith("Storage") and name[:-len("Storage")] in LETTERS:
            letter = LETTERS[name[:-len("Storage")]]
            s = self.refs[index] = Storage(cls, letter, [])
            (n,) = self.numbers("q", 1)
            s.values = self.elements(letter, n)
            return s
        if name.endswith("Tensor") and name[:-len("Tensor")] in LETTERS:
            t = self.refs[index] = Tensor(cls, [], [], 1, None)
            nd = self.int()
            t.shape, t.strides = self.numbers("q", nd), self.numbers("q", nd)
            (t.offset1,) = self.numbers("q", 1)
            t.storage = self.object()
            return t
        o = self.refs[index] = Obj(cls, None, versioned, version)
        o.fields = self.object()
        return o


def read(data, ascii):
    r = Reader(data, ascii)
    root = r.object()
    if r.pos != len(data):
        raise ValueError("%d bytes after the root object" % (len(data) - r.pos))
    return root


def same(a, b, path="root", seen=None):
    """None when `a` and `b` are the same tree (values, classes, and which
    objects are one object), else where and how they differ."""
    seen = {} if seen is None else seen
    scalar = (type(None), bool, int, float, str)
    if isinstance(a, scalar) or isinstance(b, scalar):
        if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
            ok = type(a) is type(b) and a == b
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
            ok = struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
        else:
            ok = type(a) is type(b) and a == b
        return None if ok else "%s: %r, expected %r" % (path, a, b)
    if type(a) is not type(b):
        return "%s: a %s, expected a %s" % (path, type(a).__name__, type(b).__name__)
    if id(a) in seen or id(b) in seen.values():
        if seen.get(id(a)) != id(b):
            return "%s: not the same object as where it was seen first" % path
        return None
    seen[id(a)] = id(b)
    if isinstance(a, Table):
        if len(a.pairs) != len(b.pairs):
            return "%s: %d entries, expected %d" % (path, len(a.pairs), len(b.pairs))
        for i, ((ka, va), (kb, vb)) in enumerate(zip(a.pairs, b.pairs)):
            why = same(ka, kb, "%s<key %d>" % (path, i + 1), seen) or \
                same(va, vb, "%s[%r]" % (path, kb), seen)
            if why:
                return why
        return None
    if a.cls != b.cls:
        return "%s: class %s, expected %s" % (path, a.cls, b.cls)
    if isinstance(a, Obj):
        if (a.versioned, a.version) != (b.versioned, b.version):
            return "%s: version %s, expected %s" % (path, a.versioned and a.version,
                                                    b.versioned and b.version)
        return same(a.fields, b.fields, path, seen)
    if isinstance(a, Storage):
        pack = lambda s: struct.pack("<%d%s" % (len(s.values), s.kind), *s.values)
        if a.kind != b.kind or pack(a) != pack(b):
            return "%s: %s, expected %s" % (path, a.values, b.values)
        return None
    if (a.shape, a.strides, a.offset1) != (b.shape, b.strides, b.offset1):
        return "%s: shape %s strides %s offset %d, expected %s %s %d" % (
            path, a.shape, a.strides, a.offset1, b.shape, b.strides, b.offset1)
    return same(a.storage, b.storage, path + "<storage>", seen)


def encode(root, ascii):
    w = Writer(ascii)
    w.write(root)
    return bytes(w.f.out)


def check(directory):
    expected = fixtures()
    trees = {}
    names = sorted(n for n in os.listdir(directory) if n.endswith((".binary.t7", ".ascii.t7")))
    if not names:
        return "no .t7 files in %s" % directory
    for file in names:
        name, mode, _ = file.rsplit(".", 2)
        data = open(os.path.join(directory, file), "rb").read()
        try:
            tree = read(data, mode == "ascii")
        except (ValueError, AssertionError, struct.error) as e:
            return "%s: not read: %s" % (file, e)
        again = encode(tree, mode == "ascii")
        if again != data:
            at = next((i for i, (x, y) in enumerate(zip(again, data)) if x != y),
                      min(len(again), len(data)))
            return "%s: read and written again by t7_write.py, byte %d differs: %r, expected %r" % (
                file, at, data[max(0, at - 20):at + 20], again[max(0, at - 20):at + 20])
        why = None
        if name in trees:
            why = same(tree, trees[name])
            why = why and "the two modes differ: " + why
        elif name in expected:
            why = same(tree, expected[name])
        if why:
            return "%s: %s" % (file, why)
        trees[name] = tree
        print("ok: %s" % file)
    return None


if __name__ == "__main__":
    failure = check(sys.argv[1])
    if failure:
        sys.exit("FAIL: " + failure)
