// tests/t7_test.cpp - the .t7 reader against files written by an independent
// encoder (tests/t7_write.py, Torch7's layout in Python) in binary and ascii,
// and against hostile bytes built by hand, each with its own error; the
// writer (runtime/T7Write.h) against the same encoder's bytes, against the
// reader, and against an independent reader (tests/t7_read.py).
#include "driver/T7Models.h"
#include "frontend/ModelFile.h"
#include "frontend/Trace.h"
#include "runtime/T7.h"
#include "runtime/T7Print.h"
#include "runtime/T7Write.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
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

// --- the writer ---------------------------------------------------------------

namespace {

const char *const kWritable[] = {"nested", "shared", "tensors", "model", "types"};

std::vector<uint8_t> fileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), {}};
}

void writeFile(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
  REQUIRE(out);
}

/// What the reader made of a file, written again with T7Writer's calls: an
/// object met a second time is written as a reference to the first.
class Rewriter {
public:
  explicit Rewriter(T7Mode mode) : w_(mode) {}

  void value(const T7Value &v) {
    switch (v.kind) {
    case T7Value::Nil: return w_.nil();
    case T7Value::Boolean: return w_.boolean(v.boolean);
    case T7Value::Number: return w_.number(v.number);
    case T7Value::String: return w_.string(v.string);
    case T7Value::Object: return object(*v.object);
    }
  }
  const std::vector<uint8_t> &bytes() const { return w_.bytes(); }

private:
  void object(const T7Object &o) {
    if (auto it = written_.find(&o); it != written_.end())
      return w_.reference(it->second);
    switch (o.kind) {
    case T7Object::Table:
      written_[&o] = w_.table(int32_t(o.entries.size()));
      for (const auto &[k, v] : o.entries) {
        value(k);
        value(v);
      }
      return;
    case T7Object::Torch: written_[&o] = w_.object(o.className, o.version); return value(o.fields);
    case T7Object::Storage:
      CHECK(o.className == t7ClassName(o.storage.element, o.storage.cuda, false));
      written_[&o] = w_.storage(o.storage.element, o.storage.bytes, o.storage.cuda);
      return;
    case T7Object::Tensor: {
      const T7Tensor &t = o.tensor;
      CHECK(o.className == t7ClassName(t.element, t.cuda, true));
      written_[&o] = w_.tensor(t.element, t.shape, t.strides, t.offset, t.cuda);
      if (t.storage)
        return object(*t.storage);
      return w_.nil();
    }
    }
  }

  T7Writer w_;
  std::map<const T7Object *, T7Writer::Ref> written_;
};

std::vector<uint8_t> rewrite(const std::string &name, const std::string &mode) {
  Rewriter r(mode == "ascii" ? T7Mode::Ascii : T7Mode::Binary);
  r.value(load(name, mode).root);
  return r.bytes();
}

/// `values` as the little-endian bytes of `e` (each exact in every type).
std::vector<uint8_t> elementBytes(T7Element e, const std::vector<int> &values) {
  Bytes b;
  for (int v : values) {
    switch (e) {
    case T7Element::Byte: b.put(uint8_t(v)); break;
    case T7Element::Char: b.put(int8_t(v)); break;
    case T7Element::Short: b.put(int16_t(v)); break;
    case T7Element::Int: b.put(int32_t(v)); break;
    case T7Element::Long: b.put(int64_t(v) << 32); break; // beyond 4 bytes
    case T7Element::Float: b.put(float(v) / 4); break;
    case T7Element::Double: b.put(double(v) / 3); break;
    case T7Element::Half: b.put(uint16_t(v == 0 ? 0 : v == 100 ? 0x5640 : 0x3c00)); break;
    }
  }
  return b.b;
}

std::vector<double> elementValues(T7Element e, const std::vector<int> &values) {
  std::vector<double> out;
  for (int v : values) {
    switch (e) {
    case T7Element::Long: out.push_back(double(int64_t(v) << 32)); break;
    case T7Element::Float: out.push_back(double(float(v) / 4)); break;
    case T7Element::Double: out.push_back(double(v) / 3); break;
    case T7Element::Half: out.push_back(v == 0 ? 0 : v == 100 ? 100 : 1); break;
    default: out.push_back(v);
    }
  }
  return out;
}

const T7Element kElements[] = {T7Element::Byte,   T7Element::Char, T7Element::Short,
                               T7Element::Int,    T7Element::Long, T7Element::Float,
                               T7Element::Double, T7Element::Half};
const std::vector<int> kValues = {0, 100, 1}; // Half: 0, 100, 1

/// A network-like tree written call by call: nested modules, a module used
/// twice, a bias that views its weight's storage, every element type on the
/// host and on CUDA, an empty tensor and a cycle back to the root.
std::vector<uint8_t> writeByHand(T7Mode mode) {
  T7Writer w(mode);
  T7Writer::Ref root = w.object("nn.Sequential");
  w.table(5);
  w.string("modules");
  w.table(3);
  w.number(1);
  T7Writer::Ref linear = w.object("nn.Linear");
  w.table(2);
  w.string("weight");
  w.tensor(T7Element::Double, {2, 3}, {3, 1});
  std::vector<double> weight = {1.5, -2, 0.25, 1e-300, 3, 1.0 / 3};
  T7Writer::Ref storage = w.storage(
      T7Element::Double, {reinterpret_cast<const uint8_t *>(weight.data()), weight.size() * 8});
  w.string("bias");
  w.tensor(T7Element::Double, {2}, {2}, 1); // elements 2 and 4 of the weight's storage
  w.reference(storage);
  w.number(2);
  w.reference(linear);
  w.number(3);
  w.object("nn.Sequential", 2);
  w.table(1);
  w.string("modules");
  w.table(1);
  w.number(1);
  w.object("nn.View");
  w.table(1);
  w.string("size");
  w.longStorage({-1, int64_t(1) << 40});
  w.string("types");
  w.table(2 * 8);
  for (bool cuda : {false, true})
    for (T7Element e : kElements) {
      w.string(t7ClassName(e, cuda, true));
      w.tensor(e, {3}, {1}, 0, cuda);
      w.storage(e, elementBytes(e, kValues), cuda);
    }
  w.string("self");
  w.reference(root);
  w.string("train");
  w.boolean(true);
  w.string("empty");
  w.floatTensor({}, nullptr);
  return w.bytes();
}

/// First differing byte, with context, for a failed comparison.
std::string firstDifference(const std::vector<uint8_t> &got, const std::vector<uint8_t> &want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i])
    ++i;
  auto around = [i](const std::vector<uint8_t> &b) {
    size_t from = i < 24 ? 0 : i - 24, to = std::min(b.size(), i + 24);
    return quote(std::string(b.begin() + std::ptrdiff_t(from), b.begin() + std::ptrdiff_t(to)),
                 100);
  };
  return "sizes " + std::to_string(got.size()) + " and " + std::to_string(want.size()) +
         ", first difference at byte " + std::to_string(i) + "\n  written:  " + around(got) +
         "\n  expected: " + around(want);
}

} // namespace

TEST_CASE("t7: the writer makes the independent encoder's bytes in both modes", "[t7]") {
  // Every fixture of tests/t7_write.py that Torch7 could load (all but the
  // function): read by graphc, written again by graphc, byte for byte.
  for (const char *name : kWritable)
    for (const char *mode : {"binary", "ascii"}) {
      INFO(name << "." << mode);
      std::vector<uint8_t> want = fileBytes(fixtureDir() + "/" + name + "." + mode + ".t7");
      std::vector<uint8_t> got = rewrite(name, mode);
      INFO(firstDifference(got, want));
      CHECK(got == want);
    }
}

TEST_CASE("t7: what the writer writes, the reader reads back, in both modes", "[t7]") {
  std::string printed[2];
  for (T7Mode mode : {T7Mode::Binary, T7Mode::Ascii}) {
    INFO((mode == T7Mode::Ascii ? "ascii" : "binary"));
    auto f = parseT7(writeByHand(mode), "hand.t7");
    if (!f)
      FAIL(f.diag().str());
    CHECK(f->mode == mode);
    const T7Object *root = f->root.torchObject();
    REQUIRE(root);
    CHECK(root->className == "nn.Sequential");
    CHECK(root->version == 1);
    const T7Object *modules = at(root, "modules").table();
    const T7Object *linear = at(modules, 1.0).torchObject();
    REQUIRE(linear);
    CHECK(linear->className == "nn.Linear");
    CHECK(at(modules, 2.0).object == linear);
    const T7Object *weight = at(linear, "weight").tensor(), *bias = at(linear, "bias").tensor();
    REQUIRE(weight);
    REQUIRE(bias);
    CHECK(weight->className == "torch.DoubleTensor");
    CHECK(weight->tensor.values() == std::vector<double>{1.5, -2, 0.25, 1e-300, 3, 1.0 / 3});
    CHECK(bias->tensor.storage == weight->tensor.storage);
    CHECK(bias->tensor.values() == std::vector<double>{-2, 1e-300});
    const T7Object *inner = at(modules, 3.0).torchObject();
    REQUIRE(inner);
    CHECK(inner->version == 2);
    const T7Object *viewModule = at(at(inner, "modules").table(), 1.0).torchObject();
    REQUIRE(viewModule);
    CHECK(viewModule->className == "nn.View");
    const T7Object *size = at(viewModule, "size").storage();
    REQUIRE(size);
    CHECK(size->className == "torch.LongStorage");
    REQUIRE(size->storage.size == 2);
    CHECK(size->storage.at(0) == -1);
    CHECK(size->storage.at(1) == 1099511627776.0);
    const T7Object *types = at(root, "types").table();
    REQUIRE(types);
    CHECK(types->entries.size() == 16);
    for (bool cuda : {false, true})
      for (T7Element e : kElements) {
        std::string cls = t7ClassName(e, cuda, true);
        INFO(cls);
        const T7Object *t = at(types, cls.c_str()).tensor();
        REQUIRE(t);
        CHECK(t->className == cls);
        CHECK(t->tensor.element == e);
        CHECK(t->tensor.cuda == cuda);
        CHECK(t->tensor.storage->className == t7ClassName(e, cuda, false));
        CHECK(t->tensor.values() == elementValues(e, kValues));
      }
    CHECK(at(root, "self").object == root);
    CHECK(at(root, "train").boolean);
    CHECK(at(root, "empty").tensor()->tensor.numel() == 0);
    // Each object once: 14 for the modules, 32 for the types, the types
    // table and the empty tensor; none written twice.
    CHECK(f->objects.size() == 48);
    printed[mode == T7Mode::Ascii] = printT7(*f);
  }
  CHECK(printed[0] == printed[1]);
  CHECK(t7ClassName(T7Element::Float, true, true) == "torch.CudaTensor");
  CHECK(t7ClassName(T7Element::Float, true, false) == "torch.CudaStorage");
  CHECK(t7ClassName(T7Element::Byte, true, false) == "torch.CudaByteStorage");
  CHECK(t7ClassName(T7Element::Half, false, true) == "torch.HalfTensor");
}

TEST_CASE("t7: the writer's ascii and binary layouts, by hand", "[t7]") {
  T7Writer a(T7Mode::Ascii);
  a.table(2);
  a.number(1);
  a.string("a b\n");
  a.string("x");
  a.tensor(T7Element::Long, {2, 1}, {1, 1}, 1);
  int64_t longs[] = {-3, int64_t(1) << 40, 7};
  a.storage(T7Element::Long, {reinterpret_cast<const uint8_t *>(longs), sizeof longs});
  std::string text(a.bytes().begin(), a.bytes().end());
  CHECK(text == "3\n1\n2\n1\n1\n2\n4\na b\n\n2\n1\nx\n4\n2\n3\nV 1\n16\ntorch.LongTensor\n"
                "2\n2 1\n1 1\n2\n4\n3\n3\nV 1\n17\ntorch.LongStorage\n3\n-3 1099511627776 7\n");
  T7Writer n(T7Mode::Ascii);
  n.number(0.1);
  n.number(-0.0);
  n.number(1e300);
  float f[] = {0.1f, -1.5f};
  n.storage(T7Element::Float, {reinterpret_cast<const uint8_t *>(f), sizeof f});
  CHECK(std::string(n.bytes().begin(), n.bytes().end()) ==
        "1\n0.10000000000000001\n1\n-0\n1\n1.0000000000000001e+300\n"
        "4\n1\n3\nV 1\n18\ntorch.FloatStorage\n2\n0.100000001 -1.5\n");
  // Binary: 4-byte tags, indices and counts, 8-byte longs and doubles.
  T7Writer b;
  T7Writer::Ref t = b.table(1);
  b.boolean(true);
  b.reference(t);
  b.tensor(T7Element::Byte, {2}, {1}, 0, true);
  b.storage(T7Element::Byte, std::vector<uint8_t>{10, 255}, true);
  Bytes want;
  want.table(1, 1).i32(5).i32(1).i32(3).i32(1);
  want.tensor(2, "torch.CudaByteTensor", {2}, {1}, 1).torch(3, "torch.CudaByteStorage").i64(2);
  want.raw("\x0a\xff");
  INFO(firstDifference(b.bytes(), want.b));
  CHECK(b.bytes() == want.b);
}

TEST_CASE("t7: the independent reader reads what the writer writes", "[t7]") {
  // tests/t7_read.py reads each file graphc wrote, compares it with
  // t7_write.py's fixture of that name, writes it again with t7_write.py
  // and compares the bytes, and compares the two modes of each name.
  test::TempDir dir("graphc-t7-written");
  for (const char *mode : {"binary", "ascii"}) {
    for (const char *name : kWritable)
      writeFile(dir / (std::string(name) + "." + mode + ".t7"), rewrite(name, mode));
    writeFile(dir / (std::string("hand.") + mode + ".t7"),
              writeByHand(std::string(mode) == "ascii" ? T7Mode::Ascii : T7Mode::Binary));
  }
  std::string command =
      "python3 '" GRAPHC_SOURCE_DIR "/tests/t7_read.py' '" + dir.path.string() + "' >/dev/null";
  CHECK(std::system(command.c_str()) == 0);
}

TEST_CASE("t7: export writes a network in either mode, and import reads it back", "[t7]") {
  auto spec = frontend::parseModel("model = nn.Sequential()\n"
                                   "model:add(nn.View(16)):add(nn.Linear(16, 5)):add(nn.ReLU())\n"
                                   "model:add(nn.Linear(5, 3)):add(nn.LogSoftMax())\n"
                                   "criterion = nn.ClassNLLCriterion()\ninput = {1, 4, 4}\n",
                                   "small.model");
  if (!spec)
    FAIL(spec.diag().str());
  auto layout = frontend::paramLayout(spec->model);
  REQUIRE(layout);
  int64_t n = 0;
  for (const ir::ParamInfo &p : *layout)
    n = std::max(n, p.offset + p.numel());
  std::vector<float> params(static_cast<size_t>(n));
  for (size_t i = 0; i < params.size(); ++i)
    params[i] = float(std::sin(double(i))) / 7; // no short decimal: "%.9g" must be exact
  test::TempDir dir("graphc-t7-export");
  std::string printed[2];
  for (T7Mode mode : {T7Mode::Binary, T7Mode::Ascii}) {
    INFO((mode == T7Mode::Ascii ? "ascii" : "binary"));
    auto bytes = driver::exportT7(spec->model, params, mode);
    REQUIRE(bytes);
    auto f = parseT7(*bytes, "small.t7");
    if (!f)
      FAIL(f.diag().str());
    CHECK(f->mode == mode);
    printed[mode == T7Mode::Ascii] = printT7(*f);
    std::string path = dir / (mode == T7Mode::Ascii ? "small.ascii.t7" : "small.binary.t7");
    writeFile(path, *bytes);
    auto back = driver::importT7(path);
    if (!back)
      FAIL(back.diag().str());
    CHECK(back->params == params);
    CHECK(driver::networkLua(back->spec.model) == driver::networkLua(spec->model));
  }
  CHECK(printed[0] == printed[1]);
}

TEST_CASE("t7: import refuses a container that holds itself", "[t7]") {
  // An nn.Sequential whose modules[1] is itself: the reader closes the
  // cycle; the importer must not follow it for ever.
  Bytes cycle;
  cycle.torch(1, "nn.Sequential").table(2, 1).string("modules").table(3, 1).number(1);
  cycle.i32(4).i32(1);
  test::TempDir dir("graphc-t7-cycle");
  std::string path = dir / "cycle.t7";
  writeFile(path, cycle.b);
  auto imported = driver::importT7(path);
  REQUIRE_FALSE(imported);
  CHECK_THAT(imported.diag().str(),
             Catch::Contains("root.modules[1]: nn.Sequential holds itself (a cycle of "
                             "references)"));
}
