// tests/t7_test.cpp - the .t7 reader against files written by an independent
// encoder (tests/t7_write.py, Torch7's layout in Python) in binary and ascii,
// and against hostile bytes built by hand, each with its own error.
#include "runtime/T7.h"
#include "runtime/T7Print.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace graphc;
using namespace graphc::runtime;

namespace {

/// The fixtures of tests/t7_write.py, written once per run.
const std::string &fixtureDir() {
  static test::TempDir dir("graphc-t7");
  static const bool written =
      std::system(("python3 '" GRAPHC_SOURCE_DIR "/tests/t7_write.py' '" + dir.path.string() + "'")
                      .c_str()) == 0;
  REQUIRE(written);
  static const std::string path = dir.path.string();
  return path;
}

T7File load(const std::string &name, const std::string &mode) {
  std::string path = fixtureDir() + "/" + name + "." + mode + ".t7";
  auto file = readT7(path);
  INFO(path);
  if (!file)
    FAIL(file.diag().str());
  CHECK(file->mode == (mode == "ascii" ? T7Mode::Ascii : T7Mode::Binary));
  return std::move(*file);
}

const T7Value &at(const T7Object *o, const char *key) {
  REQUIRE(o);
  const T7Value *v = o->get(key);
  INFO("key " << key);
  REQUIRE(v);
  return *v;
}

const T7Value &at(const T7Object *o, double key) {
  REQUIRE(o);
  const T7Value *v = o->get(key);
  INFO("key " << key);
  REQUIRE(v);
  return *v;
}

std::vector<double> valuesOf(const T7Value &v) {
  REQUIRE(v.tensor());
  return v.tensor()->tensor.values();
}

/// Hand-built binary .t7 bytes: 4-byte ints, 8-byte longs, little-endian.
struct Bytes {
  std::vector<uint8_t> b;
  template <class T> Bytes &put(T v) {
    uint8_t buf[sizeof v];
    std::memcpy(buf, &v, sizeof v);
    b.insert(b.end(), buf, buf + sizeof v);
    return *this;
  }
  Bytes &i32(int32_t v) { return put(v); }
  Bytes &i64(int64_t v) { return put(v); }
  Bytes &raw(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes &chars(std::string_view s) { return i32(int32_t(s.size())).raw(s); }
  Bytes &string(std::string_view s) { return i32(2).chars(s); }
  Bytes &number(double v) { return i32(1).put(v); }
  Bytes &table(int32_t index, int32_t entries) { return i32(3).i32(index).i32(entries); }
  Bytes &torch(int32_t index, std::string_view cls) {
    return i32(4).i32(index).chars("V 1").chars(cls);
  }
  /// A tensor header: nDimension, sizes, strides, 1-based offset.
  Bytes &tensor(int32_t index, std::string_view cls, std::vector<int64_t> shape,
                std::vector<int64_t> strides, int64_t offset1) {
    torch(index, cls).i32(int32_t(shape.size()));
    for (int64_t s : shape)
      i64(s);
    for (int64_t s : strides)
      i64(s);
    return i64(offset1);
  }
  Bytes &floatStorage(int32_t index, std::vector<float> v) {
    torch(index, "torch.FloatStorage").i64(int64_t(v.size()));
    for (float x : v)
      put(x);
    return *this;
  }
};

std::string errorOf(const Bytes &bytes, T7Mode mode = T7Mode::Auto) {
  auto file = parseT7(bytes.b, "hostile.t7", mode);
  REQUIRE_FALSE(file);
  return file.diag().str();
}

std::string errorOf(std::string_view text) {
  Bytes b;
  b.raw(text);
  return errorOf(b);
}

} // namespace

TEST_CASE("t7: numbers, strings, booleans and nested tables in both modes", "[t7]") {
  for (const char *mode : {"binary", "ascii"}) {
    INFO(mode);
    T7File f = load("nested", mode);
    const T7Object *root = f.root.table();
    REQUIRE(root);
    CHECK(root->entries.size() == 12);
    CHECK(at(root, 1.0).number == 1.5);
    CHECK(at(root, 2.0).string == "hello");
    CHECK(at(root, 3.0).kind == T7Value::Boolean);
    CHECK(at(root, 3.0).boolean);
    CHECK_FALSE(at(root, 4.0).boolean);
    CHECK(at(root, "name").string == "graphc");
    CHECK(at(root, "empty").kind == T7Value::String);
    CHECK(at(root, "empty").string.empty());
    CHECK(at(root, "neg").number == -0.25);
    CHECK(at(root, "big").number == 1e300);
    CHECK(at(root, "tiny").number == 1e-300);
    CHECK(at(root, "third").number == 1.0 / 3.0); // %.17g round-trips exactly
    CHECK(at(root, "bytes").string == std::string("a\nb\0c", 5));
    const T7Object *a = at(root, "nested").table();
    const T7Object *b = at(a, "a").table();
    const T7Object *c = at(b, "b").table();
    CHECK(at(c, "c").number == 42);
  }
}

TEST_CASE("t7: a shared table is one object and a cycle closes on the root", "[t7]") {
  for (const char *mode : {"binary", "ascii"}) {
    INFO(mode);
    T7File f = load("shared", mode);
    const T7Object *root = f.root.table();
    REQUIRE(root);
    CHECK(at(root, "a").object == at(root, "b").object);
    CHECK(at(at(root, "a").table(), "x").number == 1);
    CHECK(at(root, "self").object == root);
    CHECK(f.objects.size() == 2); // the root and the shared table, each read once
  }
}

TEST_CASE("t7: every tensor and storage type, views and shared storages", "[t7]") {
  for (const char *mode : {"binary", "ascii"}) {
    INFO(mode);
    T7File f = load("tensors", mode);
    const T7Object *root = f.root.table();
    REQUIRE(root);

    const T7Object *fl = at(root, "float").tensor();
    REQUIRE(fl);
    CHECK(fl->className == "torch.FloatTensor");
    CHECK(fl->version == 1);
    CHECK(fl->tensor.element == T7Element::Float);
    CHECK(fl->tensor.shape == std::vector<int64_t>{2, 3});
    CHECK(fl->tensor.strides == std::vector<int64_t>{1, 2});
    CHECK(fl->tensor.offset == 1);
    REQUIRE(fl->tensor.storage);
    CHECK(fl->tensor.storage->className == "torch.FloatStorage");
    CHECK(fl->tensor.storage->storage.size == 8);
    CHECK(fl->tensor.values() == std::vector<double>{0.5, 2.5, 4.5, 1.5, 3.5, 5.5});
    // The same storage seen with a zero stride: rows repeat elements 7 and 8.
    CHECK(valuesOf(at(root, "expanded")) == std::vector<double>{5.5, 9, 5.5, 9, 5.5, 9});
    CHECK(at(root, "expanded").tensor()->tensor.storage == fl->tensor.storage);

    CHECK(valuesOf(at(root, "byte")) == std::vector<double>{0, 1, 200, 255});
    CHECK(at(root, "byte").tensor()->tensor.element == T7Element::Byte);
    CHECK(valuesOf(at(root, "char")) == std::vector<double>{-128, 127});
    CHECK(valuesOf(at(root, "short")) == std::vector<double>{-32768, 32767});
    CHECK(valuesOf(at(root, "int")) == std::vector<double>{-2147483648.0, 2147483647.0});
    CHECK(valuesOf(at(root, "half")) == std::vector<double>{0.5, -2, 65504});

    const T7Object *longs = at(root, "long").storage();
    REQUIRE(longs);
    CHECK(longs->className == "torch.LongStorage");
    CHECK(longs->storage.element == T7Element::Long);
    REQUIRE(longs->storage.size == 3);
    CHECK(longs->storage.at(0) == -1);
    CHECK(longs->storage.at(1) == 1099511627776.0);
    CHECK(longs->storage.at(2) == 7);

    const T7Object *cuda = at(root, "cuda").tensor();
    REQUIRE(cuda);
    CHECK(cuda->tensor.cuda);
    CHECK(cuda->tensor.element == T7Element::Float);
    CHECK(cuda->tensor.storage->className == "torch.CudaStorage");
    CHECK(cuda->tensor.values() == std::vector<double>{1, 2, 3, 4});
    CHECK(at(root, "cudaLong").tensor()->tensor.element == T7Element::Long);
    CHECK(valuesOf(at(root, "cudaLong")) == std::vector<double>{-5});

    const T7Object *dA = at(root, "dA").tensor(), *dB = at(root, "dB").tensor();
    REQUIRE(dA);
    REQUIRE(dB);
    CHECK(dA->tensor.storage == dB->tensor.storage);
    CHECK(dA->tensor.values() == std::vector<double>{1.0 / 3.0, -2});
    CHECK(dB->tensor.values() == std::vector<double>{-2, 4});
    CHECK(dA->tensor.storage->storage.at(2) == 1e-310);

    const T7Object *empty = at(root, "empty").tensor();
    REQUIRE(empty);
    CHECK(empty->tensor.numel() == 0);
    CHECK(empty->tensor.storage == nullptr);
    CHECK(empty->tensor.values().empty());
  }
}

TEST_CASE("t7: nn modules are class names over field tables", "[t7]") {
  for (const char *mode : {"binary", "ascii"}) {
    INFO(mode);
    T7File f = load("model", mode);
    const T7Object *seq = f.root.torchObject();
    REQUIRE(seq);
    CHECK(seq->className == "nn.Sequential");
    CHECK(seq->version == 1);
    CHECK(at(seq, "train").boolean);
    const T7Object *modules = at(seq, "modules").table();
    const T7Object *linear = at(modules, 1.0).torchObject();
    REQUIRE(linear);
    CHECK(linear->className == "nn.Linear");
    CHECK(at(modules, 3.0).object == linear); // the same module twice
    const T7Object *w = at(linear, "weight").tensor();
    REQUIRE(w);
    CHECK(w->tensor.shape == std::vector<int64_t>{2, 3});
    CHECK(w->tensor.values() == std::vector<double>{1, 2, 3, 4, 5, 6});
    CHECK(valuesOf(at(linear, "bias")) == std::vector<double>{0.25, -0.75});
    CHECK(at(linear, "output").tensor()->tensor.numel() == 0);
    const T7Object *relu = at(modules, 2.0).torchObject();
    REQUIRE(relu);
    CHECK(relu->className == "nn.ReLU");
    CHECK(relu->version == 0); // written before class versions
    CHECK_FALSE(at(relu, "inplace").boolean);
  }
}

TEST_CASE("t7: a serialized function is refused where it is", "[t7]") {
  for (const char *mode : {"binary", "ascii"}) {
    INFO(mode);
    std::string path = fixtureDir() + "/function." + mode + ".t7";
    auto f = readT7(path);
    REQUIRE_FALSE(f);
    std::string msg = f.diag().str();
    INFO(msg);
    CHECK(msg.find("root.modules[2].updateOutput") != std::string::npos);
    CHECK(msg.find("a serialized Lua function (type tag 8)") != std::string::npos);
    CHECK(msg.find("never loads or runs code") != std::string::npos);
    CHECK(msg.rfind(path, 0) == 0);
  }
  CHECK_THAT(errorOf(Bytes().i32(6).chars("\x1bLua")),
             Catch::Contains("byte 0, root: a serialized Lua function (type tag 6)"));
  CHECK_THAT(errorOf(Bytes().table(1, 1).string("f").i32(7).i32(2).chars("\x1bLua")),
             Catch::Contains("root.f: a serialized Lua function (type tag 7)"));
}

TEST_CASE("t7: the mode is detected and can be forced", "[t7]") {
  std::string binary = fixtureDir() + "/nested.binary.t7";
  REQUIRE(readT7(binary, T7Mode::Binary));
  REQUIRE(readT7(fixtureDir() + "/nested.ascii.t7", T7Mode::Ascii));
  auto wrong = readT7(binary, T7Mode::Ascii);
  REQUIRE_FALSE(wrong);
  CHECK_THAT(wrong.diag().str(), Catch::Contains("expected an integer"));
  CHECK_THAT(errorOf(""), Catch::Contains("an empty file is not a .t7 file"));
  CHECK_THAT(errorOf("PK\x03\x04"), Catch::Contains("not a .t7 file: it starts with byte 0x50"));
  auto missing = readT7(fixtureDir() + "/no-such.t7");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.diag().str(), Catch::Contains("cannot open"));
  auto dir = readT7(fixtureDir());
  REQUIRE_FALSE(dir);
  CHECK_THAT(dir.diag().str(), Catch::Contains("not a regular file"));
}

TEST_CASE("t7: hostile sizes and counts are refused before any allocation", "[t7]") {
  // A storage of 2^62 floats in a file of a few dozen bytes.
  CHECK_THAT(errorOf(Bytes().torch(1, "torch.FloatStorage").i64(int64_t(1) << 62)),
             Catch::Contains("byte 37, root: torch.FloatStorage of 4611686018427387904 elements "
                             "of 4 bytes, but only 0 bytes are left in the file"));
  CHECK_THAT(errorOf(Bytes().torch(1, "torch.DoubleStorage").i64(-3)),
             Catch::Contains("torch.DoubleStorage of -3 elements (negative)"));
  CHECK_THAT(errorOf(Bytes().i32(2).i32(1000).raw("abc")),
             Catch::Contains("byte 4, root: a string of 1000 bytes, but only 3 bytes are left"));
  CHECK_THAT(errorOf(Bytes().i32(2).i32(-1)),
             Catch::Contains("a string has a negative length (-1)"));
  CHECK_THAT(errorOf(Bytes().table(1, 2147483647)),
             Catch::Contains("a table of 2147483647 entries, but only 0 bytes are left"));
  CHECK_THAT(errorOf(Bytes().table(1, -5)), Catch::Contains("a table of -5 entries (negative)"));
  CHECK_THAT(errorOf(Bytes().i32(1).raw("abc")),
             Catch::Contains("byte 4, root: the file ends inside a number (8 bytes; truncated)"));
  CHECK_THAT(errorOf(Bytes().i32(3)), Catch::Contains("byte 4, root: the file ends inside an "
                                                      "integer (4 bytes; truncated)"));
  CHECK_THAT(errorOf(Bytes().i32(9), T7Mode::Binary), Catch::Contains("unknown type tag 9"));
  CHECK_THAT(errorOf(Bytes().i32(4).i32(1).chars("V x").chars("nn.Linear")),
             Catch::Contains("a class version 'V x' that is not \"V <number>\""));
  CHECK_THAT(errorOf(Bytes().torch(1, "nn.Li\nnear")), Catch::Contains("is not a class name"));
  CHECK_THAT(errorOf(Bytes().torch(1, "torch.QuantTensor")),
             Catch::Contains("unknown tensor class 'torch.QuantTensor'"));
  CHECK_THAT(errorOf(Bytes().table(1, 1).i32(0).number(1)),
             Catch::Contains("byte 12, root<key 1>: a table key is nil"));
  CHECK_THAT(errorOf(Bytes().table(1, 2).string("k").number(1).string("k").number(2)),
             Catch::Contains("the key .k appears twice in one table"));
}

TEST_CASE("t7: depth is bounded and cycles terminate", "[t7]") {
  Bytes deep;
  for (int i = 1; i <= 2000; ++i)
    deep.table(i, 1).number(1);
  CHECK_THAT(errorOf(deep), Catch::Contains("byte 4800, root[1][1][1][1][1][1]...(186 more)..."
                                            "[1][1][1][1][1][1][1][1]: tables and objects "
                                            "nested deeper than 200 levels"));
  // 200 nested tables (depths 0 to 199) are fine.
  Bytes ok;
  for (int i = 1; i <= 200; ++i)
    ok.table(i, 1).number(1);
  ok.i32(0);
  REQUIRE(parseT7(ok.b, "ok.t7"));
  // A table that holds itself under many keys: each is a reference, read once.
  Bytes self;
  self.table(1, 1000);
  for (int i = 1; i <= 1000; ++i)
    self.number(i).i32(3).i32(1);
  auto f = parseT7(self.b, "self.t7");
  REQUIRE(f);
  CHECK(f->objects.size() == 1);
  CHECK(f->root.table()->get(1000.0)->object == f->root.object);
}

TEST_CASE("t7: tensors must lie inside their storages", "[t7]") {
  auto withStorage = [](Bytes b) { return b.floatStorage(2, {1, 2, 3, 4}); };
  // Sizes 3, stride 2 from element 1 reach element 5 of 4.
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {3}, {2}, 1))),
             Catch::Contains("a torch.FloatTensor of shape (3), strides (2) and offset 1 "
                             "reaches element 5 of a storage of 4 (outside it)"));
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {2}, {1}, 4))),
             Catch::Contains("reaches element 5 of a storage of 4"));
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {2}, {1}, 0))),
             Catch::Contains("a tensor with storage offset 0 (1-based, so at least 1)"));
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {-2}, {1}, 1))),
             Catch::Contains("dimension 1 of a torch.FloatTensor has size -2 and stride 1"));
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {2, 2}, {2, -1}, 2))),
             Catch::Contains("dimension 2 of a torch.FloatTensor has size 2 and stride -1"));
  // Sizes and strides whose products overflow 64 bits.
  int64_t huge = int64_t(1) << 62;
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {huge, 4}, {huge, 1}, 1))),
             Catch::Contains("(outside it)"));
  CHECK_THAT(errorOf(withStorage(Bytes().tensor(1, "torch.FloatTensor", {huge}, {0}, 1))),
             Catch::Contains("repeats the 4 of its storage; graphc reads such views up to"));
  CHECK_THAT(errorOf(Bytes().tensor(1, "torch.FloatTensor", {2}, {1}, 1).i32(0)),
             Catch::Contains("a torch.FloatTensor of 2 elements has no storage"));
  CHECK_THAT(errorOf(Bytes().tensor(1, "torch.ByteTensor", {2}, {1}, 1).floatStorage(2, {1, 2})),
             Catch::Contains("torch.ByteTensor over a torch.FloatStorage"));
  CHECK_THAT(errorOf(Bytes().tensor(1, "torch.FloatTensor", {2}, {1}, 1).table(2, 0)),
             Catch::Contains("byte 64, root: the storage of a torch.FloatTensor is not a "
                             "storage"));
  // The tensor's own index as its storage: a reference to an unfinished tensor.
  CHECK_THAT(errorOf(Bytes().tensor(1, "torch.FloatTensor", {2}, {1}, 1).i32(4).i32(1)),
             Catch::Contains("is not a storage"));
  CHECK_THAT(errorOf(Bytes().torch(1, "torch.FloatTensor").i32(100000)),
             Catch::Contains("a tensor of 100000 dimensions (0 to 64 are read)"));
  CHECK_THAT(errorOf(Bytes().torch(1, "torch.FloatTensor").i32(-1)),
             Catch::Contains("a tensor of -1 dimensions"));
  // No elements, whatever the other sizes (found by fuzzing: their product
  // overflowed before the zero was met).
  auto none = parseT7(
      Bytes().tensor(1, "torch.FloatTensor", {int64_t(1) << 58, 64, 0}, {1, 1, 1}, 1).i32(0).b,
      "none.t7");
  REQUIRE(none);
  CHECK(none->root.tensor()->tensor.numel() == 0);
  CHECK(none->root.tensor()->tensor.values().empty());
  // Where: the path of keys to the tensor.
  Bytes nested;
  nested.table(1, 1).string("weight").tensor(2, "torch.FloatTensor", {9}, {1}, 1);
  nested.floatStorage(3, {1});
  CHECK_THAT(errorOf(nested), Catch::Contains("root.weight: a torch.FloatTensor of shape (9)"));
}

TEST_CASE("t7: ascii errors carry line and column", "[t7]") {
  CHECK_THAT(errorOf("3\n1\n1\n1\n1\n1\nxyz\n"),
             Catch::Contains("hostile.t7:7:1: error: byte 12, root[1]: expected a number, "
                             "found 'xyz"));
  CHECK_THAT(errorOf("2\n99999999999\n"),
             Catch::Contains("2:1: error: byte 2, root: an integer '99999999999"));
  CHECK_THAT(errorOf("2\n5\nab"), Catch::Contains("a string of 5 bytes, but only 2 bytes"));
  CHECK_THAT(errorOf("4\n1\n3\nV 1\n18\ntorch.ShortStorage\n2\n5 70000\n"),
             Catch::Contains("a short integer '70000"));
}

TEST_CASE("t7: the printed tree names shared objects once", "[t7]") {
  for (const char *mode : {"binary", "ascii"}) {
    INFO(mode);
    CHECK(printT7(load("model", mode)) ==
          "root: nn.Sequential\n"
          "  .modules: table, 3 entries\n"
          "    [1]: nn.Linear\n"
          "      .weight: torch.FloatTensor 2x3 = [1, 2, 3, 4, 5, 6]\n"
          "      .bias: torch.FloatTensor 2 = [0.25, -0.75]\n"
          "      .train: true\n"
          "      .output: torch.FloatTensor, empty\n"
          "    [2]: nn.ReLU (unversioned)\n"
          "      .inplace: false\n"
          "      .threshold: 0\n"
          "    [3]: nn.Linear (the same object as root.modules[1])\n"
          "  .train: true\n");
    T7PrintOptions two;
    two.values = 2;
    std::string tensors = printT7(load("tensors", mode), two);
    CHECK_THAT(tensors, Catch::Contains(".float: torch.FloatTensor 2x3 strides 1x2 offset 2 = "
                                        "[0.5, 2.5, ...]\n"));
    CHECK_THAT(tensors, Catch::Contains(".long: torch.LongStorage, 3 elements = [-1, "
                                        "1099511627776, ...]\n"));
    CHECK_THAT(printT7(load("shared", mode)),
               Catch::Contains("  .self: table, 3 entries (the same object as root)\n"));
  }
  // Floats print in their own shortest form, not as the doubles they widen to.
  auto tenth = parseT7(Bytes().floatStorage(1, {0.1f, 1e-3f}).b, "tenth.t7");
  REQUIRE(tenth);
  CHECK(printT7(*tenth) == "root: torch.FloatStorage, 2 elements = [0.1, 0.001]\n");
}
