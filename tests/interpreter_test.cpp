// tests/interpreter_test.cpp - the reference interpreter against independent
// computations written here: hand-computed examples and plain loops that are
// organised differently from ir/Interpreter.cpp (conv2d through im2col and a
// matrix product, softmax without the max shift, reductions through a kept
// shape, ...). Every op runs with batch sizes 1 and 96.
#include "frontend/Trace.h"
#include "ir/Graph.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "ir/Random.h"
#include "ir/Verifier.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <set>
#include <sstream>
#include <string>

using namespace graphc;
using namespace graphc::ir;

namespace {

using Ints = std::vector<int64_t>;
constexpr int64_t N = kBatch;

Type f32(Shape s) { return {DType::F32, std::move(s)}; }
Type i32(Shape s) { return {DType::I32, std::move(s)}; }

int64_t product(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

Tensor tensor(Shape s, std::vector<double> data) {
  Tensor t(std::move(s));
  if (int64_t(data.size()) != t.numel())
    FAIL("test bug: " << data.size() << " values for shape " << str(t.shape));
  t.data = std::move(data);
  return t;
}

/// Row-major offset of `idx` in a tensor of shape `s` (checked without a
/// Catch assertion per call: it runs in the inner loops).
size_t at(const Shape &s, std::initializer_list<int64_t> idx) {
  bool ok = idx.size() == s.size();
  int64_t off = 0;
  size_t d = 0;
  for (int64_t i : idx) {
    ok = ok && i >= 0 && i < s[d];
    off = off * s[d++] + i;
  }
  if (!ok)
    FAIL("test bug: index out of range of " << str(s));
  return size_t(off);
}

/// The tensor in a failure message: shape and the first values.
std::string show(const Tensor &t, size_t max = 16) {
  std::ostringstream os;
  os.precision(17);
  os << str(t.shape) << " {";
  for (size_t i = 0; i < t.data.size() && i < max; ++i)
    os << (i ? ", " : "") << t.data[i];
  if (t.data.size() > max)
    os << ", ... (" << t.data.size() << " values)";
  os << "}";
  return os.str();
}

/// |got - want| <= tol * max(1, |want|) elementwise, reporting the first
/// mismatch and both tensors.
void checkTensor(const Tensor &got, const Tensor &want, double tol = 1e-12) {
  INFO("result:   " << show(got));
  INFO("expected: " << show(want));
  REQUIRE(got.shape == want.shape);
  REQUIRE(got.data.size() == want.data.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.data.size(); ++i) {
    double a = got.data[i], b = want.data[i];
    bool ok = (std::isnan(a) && std::isnan(b)) || a == b ||
              std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
    if (!ok && bad++ == 0)
      first = i;
  }
  if (bad) {
    std::ostringstream os;
    os.precision(17);
    os << "first mismatch at flat index " << first << ": got " << got.data[first] << ", expected "
       << want.data[first] << " (" << bad << " mismatches)";
    INFO(os.str());
    CHECK(bad == 0);
  }
}

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  double uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(gen);
  }
  int64_t integer(int64_t lo, int64_t hi) { // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen);
  }
  Tensor tensor(Shape s, double lo = -1, double hi = 1) {
    Tensor t(std::move(s));
    for (double &x : t.data)
      x = uniform(lo, hi);
    return t;
  }
};

/// An input of a single-op graph: its IR type and its concrete value.
struct Arg {
  Type type;
  Tensor value;
};

/// Runs a graph of one `op` node over inputs a0, a1, ... and returns its value.
Tensor runOp(Op op, const std::vector<Arg> &args, const Attrs &attrs = {}) {
  Graph g(std::string(opName(op)));
  std::vector<ValueId> ins;
  Bindings b;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = "a" + std::to_string(i);
    ins.push_back(g.input(name, args[i].type));
    b[name] = args[i].value;
  }
  auto v = g.tryAdd(op, ins, attrs);
  if (!v)
    FAIL("cannot build " << opName(op) << ": " << v.diag().message);
  g.addOutput("y", *v);
  INFO("graph:\n" << print(g));
  Status s = verify(g);
  if (!s)
    FAIL(s.diag().message);
  auto r = run(g, b);
  if (!r)
    FAIL("interpreter error: " << r.diag().message);
  return r->at("y");
}

const int64_t kBatches[] = {1, 96};

} // namespace

// ---------------------------------------------------------------------------
// Sources and shape ops.

TEST_CASE("interpreter: input, constant, batch_size", "[interp]") {
  Rng rng(1);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Graph g;
    ValueId x = g.input("x", f32({N, 3}));
    ValueId c = g.constant(2.5, f32({N, 3}));
    ValueId s = g.constant(-0.25);
    ValueId y = g.add(Op::Add, {g.add(Op::Mul, {x, c}), s});
    ValueId n = g.add(Op::BatchSize, {x});
    g.addOutput("x", x);
    g.addOutput("c", c);
    g.addOutput("s", s);
    g.addOutput("y", y);
    g.addOutput("n", n);
    Tensor xv = rng.tensor({B, 3});
    INFO("x = " << show(xv));
    auto r = run(g, {{"x", xv}});
    if (!r)
      FAIL(r.diag().message);
    checkTensor(r->at("x"), xv, 0);
    checkTensor(r->at("c"), Tensor({B, 3}, 2.5), 0);
    checkTensor(r->at("s"), Tensor({}, -0.25), 0);
    Tensor want({B, 3});
    for (int64_t i = 0; i < B * 3; ++i)
      want.data[size_t(i)] = xv.data[size_t(i)] * 2.5 - 0.25;
    checkTensor(r->at("y"), want);
    checkTensor(r->at("n"), Tensor({}, double(B)), 0);
  }
}

TEST_CASE("interpreter: const_tensor gives its values, pow is C's pow", "[interp]") {
  // const_tensor: its values row-major in its shape, whatever the batch.
  Graph g;
  ValueId t =
      g.add(Op::ConstTensor, {},
            {{"shape", Ints{2, 3}}, {"values", std::vector<double>{1, -2, 0.5, 0, 3, -1e-3}}});
  g.addOutput("t", t);
  auto r = run(g, {});
  if (!r)
    FAIL(r.diag().message);
  checkTensor(r->at("t"), tensor({2, 3}, {1, -2, 0.5, 0, 3, -1e-3}), 0);

  // pow broadcasts like the other binary ops; its values are std::pow's,
  // worked out here element by element (0^0 = 1, a fractional power of a
  // negative base NaN, as in C and Torch7).
  Rng rng(11);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor a = rng.tensor({B, 3});
    for (double &v : a.data)
      v = std::fabs(v) + 0.1;
    Tensor e = tensor({3}, {2.0, 0.5, -1.5});
    Tensor y = runOp(Op::Pow, {{f32({N, 3}), a}, {f32({3}), e}});
    Tensor want({B, 3});
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < 3; ++j)
        want.data[size_t(i * 3 + j)] = std::pow(a.data[size_t(i * 3 + j)], e.data[size_t(j)]);
    checkTensor(y, want);
  }
  Tensor edge = runOp(Op::Pow, {{f32({3}), tensor({3}, {0.0, -8.0, 4.0})},
                                {f32({3}), tensor({3}, {0.0, 0.5, -0.5})}});
  CHECK(edge.data[0] == 1.0);
  CHECK(std::isnan(edge.data[1]));
  CHECK(edge.data[2] == 0.5);
}

TEST_CASE("interpreter: param views into the flat buffer", "[interp]") {
  Rng rng(2);
  Tensor flat = rng.tensor({30});
  INFO("flat = " << show(flat, 30));
  Graph g;
  ValueId p = g.input("params", f32({30}));
  ValueId w = g.add(Op::Param, {p},
                    {{"name", std::string("w")}, {"offset", int64_t(5)}, {"shape", Ints{3, 4}}});
  ValueId b = g.add(Op::Param, {p},
                    {{"name", std::string("b")}, {"offset", int64_t(26)}, {"shape", Ints{4}}});
  ValueId k =
      g.add(Op::Param, {p},
            {{"name", std::string("k")}, {"offset", int64_t(0)}, {"shape", Ints{1, 2, 1, 2}}});
  g.addOutput("w", w);
  g.addOutput("b", b);
  g.addOutput("k", k);
  auto r = run(g, {{"params", flat}});
  if (!r)
    FAIL(r.diag().message);
  Tensor ww({3, 4}), bw({4}), kw({1, 2, 1, 2});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      ww.data[at(ww.shape, {i, j})] = flat.data[size_t(5 + 4 * i + j)];
  for (int64_t j = 0; j < 4; ++j)
    bw.data[size_t(j)] = flat.data[size_t(26 + j)];
  kw.data = {flat.data[0], flat.data[1], flat.data[2], flat.data[3]};
  checkTensor(r->at("w"), ww, 0);
  checkTensor(r->at("b"), bw, 0);
  checkTensor(r->at("k"), kw, 0);
}

TEST_CASE("interpreter: random_mask", "[interp]") {
  auto mask = [](int64_t seed, int64_t salt, double p, Type t, int64_t batch) {
    Graph g;
    ValueId s = g.input("seed", i32({}));
    ValueId m = g.add(Op::RandomMask, {s}, {{"p", p}, {"salt", salt}, {"shape", t.shape}});
    g.addOutput("m", m);
    Bindings b{{"seed", Tensor({}, double(seed))}};
    if (t.batched()) { // the batch size comes from a batched input
      ValueId x = g.input("x", f32({N}));
      g.addOutput("x", x);
      b["x"] = Tensor({batch});
    }
    auto r = run(g, b);
    if (!r)
      FAIL(r.diag().message);
    return r->at("m");
  };

  SECTION("values, zero fraction, determinism over 100k elements")
  for (double p : {0.1, 0.3, 0.5, 0.8}) {
    CAPTURE(p);
    const int64_t n = 100000;
    Tensor a = mask(42, 1, p, f32({n}), 1);
    REQUIRE(a.shape == Shape{n});
    double keep = 1.0 / (1.0 - p);
    int64_t zeros = 0, bad = 0;
    for (double v : a.data) {
      if (v == 0)
        ++zeros;
      else if (std::abs(v - keep) > 1e-6 * keep)
        ++bad;
    }
    CAPTURE(keep, show(a));
    CHECK(bad == 0); // every value is 0 or 1/(1-p)
    double frac = double(zeros) / double(n);
    CAPTURE(frac);
    // Binomial standard deviation is at most 0.0016 here: 0.01 is > 6 sigma.
    CHECK(std::abs(frac - p) < 0.01);
    // The mean of a dropout mask is 1.
    double mean = 0;
    for (double v : a.data)
      mean += v / double(n);
    CHECK(std::abs(mean - 1.0) < 0.05);

    // Deterministic for a seed, different for another seed or salt.
    Tensor again = mask(42, 1, p, f32({n}), 1);
    checkTensor(again, a, 0);
    for (auto [seed, salt] : {std::pair<int64_t, int64_t>{43, 1}, {42, 2}}) {
      CAPTURE(seed, salt);
      Tensor other = mask(seed, salt, p, f32({n}), 1);
      int64_t differ = 0;
      for (size_t i = 0; i < a.data.size(); ++i)
        differ += a.data[i] != other.data[i];
      // Two independent masks differ with probability 2p(1-p) per element.
      double want = 2 * p * (1 - p);
      CHECK(std::abs(double(differ) / double(n) - want) < 0.02);
    }
    // It is the shared counter-based generator (ir/Random.h) that the
    // backends use, element i from (seed, salt, i).
    int64_t mismatch = 0;
    for (int64_t i = 0; i < n; ++i)
      mismatch += a.data[size_t(i)] != double(dropoutMask(42, 1, uint64_t(i), float(p)));
    CHECK(mismatch == 0);
  }

  SECTION("p = 0 keeps everything") {
    Tensor a = mask(7, 1, 0.0, f32({1000}), 1);
    checkTensor(a, Tensor({1000}, 1.0), 0);
  }
  SECTION("batched: a row does not depend on the batch size") {
    Tensor one = mask(9, 3, 0.5, f32({N, 10}), 1);
    Tensor many = mask(9, 3, 0.5, f32({N, 10}), 96);
    REQUIRE(one.shape == Shape{1, 10});
    REQUIRE(many.shape == Shape{96, 10});
    Tensor firstRow({1, 10});
    std::copy_n(many.data.begin(), 10, firstRow.data.begin());
    checkTensor(firstRow, one, 0);
    int64_t zeros = 0;
    for (double v : many.data)
      zeros += v == 0;
    CHECK(zeros > 300); // about 480 of 960
    CHECK(zeros < 660);
  }
  SECTION("a sample offset: rows of the global batch's mask") {
    // Rows [5, 8) of a batch drawn with offset 5 are those elements of the
    // whole batch's mask (ir/Random.h's element index 5 * 10 + j onwards).
    Graph g;
    ValueId s = g.input("seed", i32({})), o = g.input("offset", i32({}));
    g.addOutput("m", g.add(Op::RandomMask, {s, o},
                           {{"p", 0.5}, {"salt", int64_t(3)}, {"shape", Ints{N, 10}}}));
    g.addOutput("x", g.input("x", f32({N})));
    auto r = run(g, {{"seed", Tensor({}, 9.0)}, {"offset", Tensor({}, 5.0)}, {"x", Tensor({3})}});
    if (!r)
      FAIL(r.diag().message);
    const Tensor &m = r->at("m");
    REQUIRE(m.shape == Shape{3, 10});
    int64_t mismatch = 0;
    for (int64_t i = 0; i < 30; ++i)
      mismatch += m.data[size_t(i)] != double(dropoutMask(9, 3, uint64_t(50 + i), 0.5f));
    CHECK(mismatch == 0);
  }
}

TEST_CASE("interpreter: reshape and transpose", "[interp]") {
  Rng rng(3);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor x = rng.tensor({B, 6});
    INFO("x = " << show(x));
    Tensor r = runOp(Op::Reshape, {{f32({N, 6}), x}}, {{"shape", Ints{N, 2, 3}}});
    checkTensor(r, tensor({B, 2, 3}, x.data), 0);

    // [N,3,4] perm [0,2,1]: y[n][j][i] = x[n][i][j].
    Tensor x3 = rng.tensor({B, 3, 4});
    Tensor t = runOp(Op::Transpose, {{f32({N, 3, 4}), x3}}, {{"perm", Ints{0, 2, 1}}});
    Tensor want({B, 4, 3});
    for (int64_t n = 0; n < B; ++n)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j)
          want.data[at(want.shape, {n, j, i})] = x3.data[at(x3.shape, {n, i, j})];
    checkTensor(t, want, 0);

    // [N,2,3,4] perm [0,3,1,2] (NCHW -> NWCH): y[n][d][b][c] = x[n][b][c][d].
    Tensor x4 = rng.tensor({B, 2, 3, 4});
    Tensor t4 = runOp(Op::Transpose, {{f32({N, 2, 3, 4}), x4}}, {{"perm", Ints{0, 3, 1, 2}}});
    Tensor want4({B, 4, 2, 3});
    for (int64_t n = 0; n < B; ++n)
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t d = 0; d < 4; ++d)
            want4.data[at(want4.shape, {n, d, b, c})] = x4.data[at(x4.shape, {n, b, c, d})];
    checkTensor(t4, want4, 0);
  }
  // Unbatched [2,3,4] perm [2,0,1]: y[k][i][j] = x[i][j][k].
  Tensor x({2, 3, 4});
  for (int64_t i = 0; i < 24; ++i)
    x.data[size_t(i)] = double(i);
  Tensor t = runOp(Op::Transpose, {{f32({2, 3, 4}), x}}, {{"perm", Ints{2, 0, 1}}});
  // Row k of the result lists x[.][.][k]: k, k+4, k+8, ...
  std::vector<double> want;
  for (int k = 0; k < 4; ++k)
    for (int ij = 0; ij < 6; ++ij)
      want.push_back(double(ij * 4 + k));
  checkTensor(t, tensor({4, 2, 3}, want), 0);
  // A 2-D transpose by hand.
  checkTensor(runOp(Op::Transpose, {{f32({2, 3}), tensor({2, 3}, {1, 2, 3, 4, 5, 6})}},
                    {{"perm", Ints{1, 0}}}),
              tensor({3, 2}, {1, 4, 2, 5, 3, 6}), 0);
}

TEST_CASE("interpreter: broadcast and flat_pack", "[interp]") {
  Rng rng(4);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor v = rng.tensor({3});
    Tensor x = rng.tensor({B}); // only carries the batch size
    Graph g;
    ValueId vi = g.input("v", f32({3}));
    ValueId xi = g.input("x", f32({N, 1}));
    g.addOutput("bv", g.add(Op::Broadcast, {vi}, {{"shape", Ints{N, 3}}}));
    g.addOutput("bx", g.add(Op::Broadcast, {xi}, {{"shape", Ints{N, 4}}}));
    auto r = run(g, {{"v", v}, {"x", tensor({B, 1}, x.data)}});
    if (!r)
      FAIL(r.diag().message);
    Tensor wv({B, 3}), wx({B, 4});
    for (int64_t n = 0; n < B; ++n) {
      for (int64_t j = 0; j < 3; ++j)
        wv.data[at(wv.shape, {n, j})] = v.data[size_t(j)];
      for (int64_t j = 0; j < 4; ++j)
        wx.data[at(wx.shape, {n, j})] = x.data[size_t(n)];
    }
    checkTensor(r->at("bv"), wv, 0);
    checkTensor(r->at("bx"), wx, 0);
  }
  // [2,1,3] -> [2,4,3] by hand.
  Tensor b = runOp(Op::Broadcast, {{f32({2, 1, 3}), tensor({2, 1, 3}, {1, 2, 3, 4, 5, 6})}},
                   {{"shape", Ints{2, 4, 3}}});
  checkTensor(b, tensor({2, 4, 3}, {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3,
                                    4, 5, 6, 4, 5, 6, 4, 5, 6, 4, 5, 6}),
              0);

  // flat_pack: b [3] at 0, a [2,3] at 4, size 12; the gaps are zero.
  Tensor a = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor c = tensor({3}, {-1, -2, -3});
  Tensor p = runOp(Op::FlatPack, {{f32({2, 3}), a}, {f32({3}), c}},
                   {{"offsets", Ints{4, 0}}, {"size", int64_t(12)}});
  checkTensor(p, tensor({12}, {-1, -2, -3, 0, 1, 2, 3, 4, 5, 6, 0, 0}), 0);
}

// ---------------------------------------------------------------------------
// Elementwise.

TEST_CASE("interpreter: binary elementwise ops with broadcasting", "[interp]") {
  struct Bin {
    Op op;
    double (*f)(double, double);
  };
  const Bin ops[] = {
      {Op::Add, [](double a, double b) { return a + b; }},
      {Op::Sub, [](double a, double b) { return a - b; }},
      {Op::Mul, [](double a, double b) { return a * b; }},
      {Op::Div, [](double a, double b) { return a / b; }},
      {Op::Max, [](double a, double b) { return a >= b ? a : b; }},
      {Op::Min, [](double a, double b) { return a <= b ? a : b; }},
      {Op::Greater, [](double a, double b) { return a > b ? 1.0 : 0.0; }},
  };
  Rng rng(5);
  for (int64_t B : kBatches)
    for (const Bin &bin : ops) {
      CAPTURE(B, opName(bin.op));
      // Values away from zero so that division is well conditioned; a few
      // equal pairs so that greater/max/min see ties.
      Tensor a = rng.tensor({B, 3}, 0.5, 2), b = rng.tensor({3}, 0.5, 2);
      if (rng.integer(0, 1))
        for (double &x : a.data)
          x = -x;
      a.data[0] = b.data[0];
      INFO("a = " << show(a) << "\nb = " << show(b));
      // [N,3] op [3]
      Tensor y = runOp(bin.op, {{f32({N, 3}), a}, {f32({3}), b}});
      Tensor want({B, 3});
      for (int64_t n = 0; n < B; ++n)
        for (int64_t j = 0; j < 3; ++j)
          want.data[at(want.shape, {n, j})] = bin.f(a.data[at(a.shape, {n, j})], b.data[size_t(j)]);
      checkTensor(y, want);
      // [3] op [N,3]: the broadcast operand first.
      Tensor y2 = runOp(bin.op, {{f32({3}), b}, {f32({N, 3}), a}});
      for (int64_t n = 0; n < B; ++n)
        for (int64_t j = 0; j < 3; ++j)
          want.data[at(want.shape, {n, j})] = bin.f(b.data[size_t(j)], a.data[at(a.shape, {n, j})]);
      checkTensor(y2, want);
      // [N,1] op [1,4] -> [N,4]
      Tensor col = rng.tensor({B, 1}, 0.5, 2), row = rng.tensor({1, 4}, 0.5, 2);
      Tensor y3 = runOp(bin.op, {{f32({N, 1}), col}, {f32({1, 4}), row}});
      Tensor want3({B, 4});
      for (int64_t n = 0; n < B; ++n)
        for (int64_t j = 0; j < 4; ++j)
          want3.data[at(want3.shape, {n, j})] = bin.f(col.data[size_t(n)], row.data[size_t(j)]);
      checkTensor(y3, want3);
      // [N,3] op scalar
      Tensor s = tensor({}, {1.25});
      Tensor y4 = runOp(bin.op, {{f32({N, 3}), a}, {f32({}), s}});
      Tensor want4({B, 3});
      for (size_t i = 0; i < a.data.size(); ++i)
        want4.data[i] = bin.f(a.data[i], 1.25);
      checkTensor(y4, want4);
    }
  // By hand.
  checkTensor(runOp(Op::Add, {{f32({2, 3}), tensor({2, 3}, {1, 2, 3, 4, 5, 6})},
                              {f32({3}), tensor({3}, {10, 20, 30})}}),
              tensor({2, 3}, {11, 22, 33, 14, 25, 36}), 0);
  checkTensor(runOp(Op::Greater, {{f32({4}), tensor({4}, {1, 2, 3, -1})},
                                  {f32({4}), tensor({4}, {2, 2, 1, -2})}}),
              tensor({4}, {0, 0, 1, 1}), 0);
}

TEST_CASE("interpreter: select", "[interp]") {
  Rng rng(6);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor c({B, 3});
    for (double &x : c.data) // 0 is false; 1, 2 and -1 are all true
      x = double(rng.integer(-1, 2));
    Tensor a = rng.tensor({B, 3}), b = rng.tensor({3});
    INFO("cond = " << show(c) << "\na = " << show(a) << "\nb = " << show(b));
    Tensor y = runOp(Op::Select, {{f32({N, 3}), c}, {f32({N, 3}), a}, {f32({3}), b}});
    Tensor want({B, 3});
    for (int64_t n = 0; n < B; ++n)
      for (int64_t j = 0; j < 3; ++j) {
        size_t i = at(want.shape, {n, j});
        want.data[i] = c.data[i] == 0 ? b.data[size_t(j)] : a.data[i];
      }
    checkTensor(y, want, 0);
  }
}

TEST_CASE("interpreter: unary elementwise ops", "[interp]") {
  struct Un {
    Op op;
    double lo, hi;
    double (*f)(double);
  };
  const Un ops[] = {
      {Op::Neg, -3, 3, [](double x) { return 0.0 - x; }},
      {Op::Exp, -5, 5, [](double x) { return std::pow(std::numbers::e, x); }},
      {Op::Log, 0.01, 10, [](double x) { return std::log2(x) / std::log2(std::numbers::e); }},
      {Op::Sqrt, 0, 10, [](double x) { return std::pow(x, 0.5); }},
      {Op::Square, -3, 3, [](double x) { return std::pow(x, 2.0); }},
      {Op::Relu, -3, 3, [](double x) { return std::max(x, 0.0); }},
      {Op::Tanh, -4, 4, [](double x) { return (std::exp(2 * x) - 1) / (std::exp(2 * x) + 1); }},
      {Op::Sigmoid, -8, 8, [](double x) { return std::exp(x) / (1 + std::exp(x)); }},
  };
  Rng rng(7);
  for (int64_t B : kBatches)
    for (const Un &u : ops) {
      CAPTURE(B, opName(u.op));
      Tensor x = rng.tensor({B, 5}, u.lo, u.hi);
      INFO("x = " << show(x));
      Tensor y = runOp(u.op, {{f32({N, 5}), x}});
      Tensor want({B, 5});
      for (size_t i = 0; i < x.data.size(); ++i)
        want.data[i] = u.f(x.data[i]);
      checkTensor(y, want, 1e-12);
    }
  // By hand.
  checkTensor(runOp(Op::Relu, {{f32({4}), tensor({4}, {-2, -0.0, 0.5, 3})}}),
              tensor({4}, {0, 0, 0.5, 3}), 0);
  checkTensor(runOp(Op::Sqrt, {{f32({3}), tensor({3}, {0, 4, 2.25})}}), tensor({3}, {0, 2, 1.5}),
              0);
  checkTensor(runOp(Op::Sigmoid, {{f32({1}), tensor({1}, {0})}}), tensor({1}, {0.5}), 0);
  checkTensor(runOp(Op::Log, {{f32({2}), tensor({2}, {1, std::numbers::e})}}), tensor({2}, {0, 1}),
              1e-15);
}

TEST_CASE("interpreter: cast", "[interp]") {
  Tensor x = tensor({6}, {2.7, -2.7, 0.5, -0.5, 3.0, 1e6 + 0.25});
  checkTensor(runOp(Op::Cast, {{f32({6}), x}}, {{"to", std::string("i32")}}),
              tensor({6}, {2, -2, 0, 0, 3, 1e6}), 0);
  Tensor l = tensor({3}, {0, 7, -4});
  checkTensor(runOp(Op::Cast, {{i32({3}), l}}, {{"to", std::string("f32")}}), l, 0);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor y = runOp(Op::Cast, {{f32({N}), Tensor({B}, 9.99)}}, {{"to", std::string("i32")}});
    checkTensor(y, Tensor({B}, 9.0), 0);
  }
}

// ---------------------------------------------------------------------------
// Reductions.

TEST_CASE("interpreter: reduce_sum, reduce_mean, reduce_max over any axes", "[interp]") {
  Rng rng(8);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    const Shape s{B, 3, 4};
    Tensor x = rng.tensor(s, -2, 2);
    INFO("x = " << show(x));
    // Every subset of the three axes (the empty list means all axes).
    for (int mask = 0; mask < 8; ++mask)
      for (bool keep : {false, true})
        for (Op op : {Op::ReduceSum, Op::ReduceMean, Op::ReduceMax}) {
          Ints axes;
          bool red[3];
          for (int d = 0; d < 3; ++d) {
            red[d] = mask == 0 || (mask >> d & 1);
            if (mask >> d & 1)
              axes.push_back(d == 2 && (mask & 1) ? -1 : d); // also a negative axis
          }
          CAPTURE(opName(op), axes, keep);
          // Accumulate into the kept-dims shape: 1 where reduced.
          Shape kept{red[0] ? 1 : B, red[1] ? 1 : 3, red[2] ? 1 : 4};
          Tensor acc(kept, op == Op::ReduceMax ? -std::numeric_limits<double>::infinity() : 0.0);
          double count = (red[0] ? double(B) : 1) * (red[1] ? 3 : 1) * (red[2] ? 4 : 1);
          for (int64_t n = 0; n < B; ++n)
            for (int64_t i = 0; i < 3; ++i)
              for (int64_t j = 0; j < 4; ++j) {
                double v = x.data[at(s, {n, i, j})];
                double &a = acc.data[at(kept, {red[0] ? 0 : n, red[1] ? 0 : i, red[2] ? 0 : j})];
                a = op == Op::ReduceMax ? std::max(a, v) : a + v;
              }
          if (op == Op::ReduceMean)
            for (double &a : acc.data)
              a /= count;
          Shape outShape;
          for (int d = 0; d < 3; ++d)
            if (!red[d] || keep)
              outShape.push_back(kept[size_t(d)]);
          Tensor want = tensor(outShape, acc.data);
          Tensor y = runOp(op, {{f32({N, 3, 4}), x}}, {{"axes", axes}, {"keepdims", keep}});
          checkTensor(y, want, 1e-12);
        }
  }
  // By hand: [[1,5,3],[4,2,6]].
  Tensor m = tensor({2, 3}, {1, 5, 3, 4, 2, 6});
  auto red = [&](Op op, Ints axes, bool keep) {
    return runOp(op, {{f32({2, 3}), m}}, {{"axes", axes}, {"keepdims", keep}});
  };
  checkTensor(red(Op::ReduceSum, {1}, false), tensor({2}, {9, 12}), 0);
  checkTensor(red(Op::ReduceSum, {0}, true), tensor({1, 3}, {5, 7, 9}), 0);
  checkTensor(red(Op::ReduceMean, {}, false), tensor({}, {3.5}), 0);
  checkTensor(red(Op::ReduceMean, {0}, false), tensor({3}, {2.5, 3.5, 4.5}), 0);
  checkTensor(red(Op::ReduceMax, {1}, true), tensor({2, 1}, {5, 6}), 0);
  checkTensor(red(Op::ReduceMax, {0, 1}, true), tensor({1, 1}, {6}), 0);
  checkTensor(runOp(Op::ReduceMax, {{f32({3}), tensor({3}, {-7, -3, -5})}}, {{"axes", Ints{0}}}),
              tensor({}, {-3}), 0);
}

TEST_CASE("interpreter: argmax", "[interp]") {
  Rng rng(9);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor x = rng.tensor({B, 7});
    // A tie in the first row: the first maximum wins.
    for (int64_t j = 0; j < 7; ++j)
      x.data[size_t(j)] = j == 2 || j == 5 ? 9.0 : 0.0;
    INFO("x = " << show(x));
    Tensor y = runOp(Op::ArgMax, {{f32({N, 7}), x}});
    Tensor want({B});
    for (int64_t n = 0; n < B; ++n) {
      int64_t best = 0;
      for (int64_t j = 1; j < 7; ++j)
        if (x.data[at(x.shape, {n, j})] > x.data[at(x.shape, {n, best})])
          best = j;
      want.data[size_t(n)] = double(best);
    }
    CHECK(want.data[0] == 2);
    checkTensor(y, want, 0);
  }
}

// ---------------------------------------------------------------------------
// Matrix products and the neural-network ops.

TEST_CASE("interpreter: matmul with every transpose combination", "[interp]") {
  Rng rng(10);
  auto ref = [](const Tensor &a, const Tensor &b, bool ta, bool tb) {
    int64_t m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1];
    int64_t n = tb ? b.shape[0] : b.shape[1];
    Tensor c({m, n});
    for (int64_t p = 0; p < k; ++p) // outer-product order, unlike the interpreter
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
          c.data[at(c.shape, {i, j})] += a.data[ta ? at(a.shape, {p, i}) : at(a.shape, {i, p})] *
                                         b.data[tb ? at(b.shape, {j, p}) : at(b.shape, {p, j})];
    return c;
  };
  for (int64_t B : kBatches) {
    CAPTURE(B);
    struct Case {
      Type ta_, tb_;
      Shape a, b;
      bool ta, tb;
    };
    const Case cases[] = {
        {f32({N, 5}), f32({5, 7}), {B, 5}, {5, 7}, false, false},
        {f32({N, 5}), f32({7, 5}), {B, 5}, {7, 5}, false, true},
        {f32({N, 5}), f32({N, 7}), {B, 5}, {B, 7}, true, false}, // over N
        {f32({6, 4}), f32({3, 6}), {6, 4}, {3, 6}, true, true},
        {f32({N, 8}), f32({N, 3}), {B, 8}, {B, 3}, true, false},
    };
    for (const Case &c : cases) {
      CAPTURE(c.a, c.b, c.ta, c.tb);
      Tensor a = rng.tensor(c.a), b = rng.tensor(c.b);
      INFO("a = " << show(a) << "\nb = " << show(b));
      Tensor y = runOp(Op::MatMul, {{c.ta_, a}, {c.tb_, b}}, {{"transA", c.ta}, {"transB", c.tb}});
      checkTensor(y, ref(a, b, c.ta, c.tb), 1e-12);
    }
  }
  // By hand: [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]].
  Tensor a = tensor({2, 2}, {1, 2, 3, 4}), b = tensor({2, 2}, {5, 6, 7, 8});
  checkTensor(runOp(Op::MatMul, {{f32({2, 2}), a}, {f32({2, 2}), b}}),
              tensor({2, 2}, {19, 22, 43, 50}), 0);
  // aT b = [[26,30],[38,44]], a bT = [[17,23],[39,53]].
  checkTensor(runOp(Op::MatMul, {{f32({2, 2}), a}, {f32({2, 2}), b}}, {{"transA", true}}),
              tensor({2, 2}, {26, 30, 38, 44}), 0);
  checkTensor(runOp(Op::MatMul, {{f32({2, 2}), a}, {f32({2, 2}), b}}, {{"transB", true}}),
              tensor({2, 2}, {17, 23, 39, 53}), 0);
}

TEST_CASE("interpreter: softmax and log_softmax over the last axis", "[interp]") {
  Rng rng(11);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor x = rng.tensor({B, 10}, -5, 5);
    INFO("x = " << show(x));
    Tensor sm({B, 10}), lsm({B, 10});
    for (int64_t n = 0; n < B; ++n) {
      double sum = 0;
      for (int64_t j = 0; j < 10; ++j)
        sum += std::exp(x.data[at(x.shape, {n, j})]);
      for (int64_t j = 0; j < 10; ++j) {
        double v = x.data[at(x.shape, {n, j})];
        sm.data[at(sm.shape, {n, j})] = std::exp(v) / sum;
        lsm.data[at(lsm.shape, {n, j})] = v - std::log(sum);
      }
    }
    checkTensor(runOp(Op::SoftMax, {{f32({N, 10}), x}}), sm, 1e-13);
    checkTensor(runOp(Op::LogSoftMax, {{f32({N, 10}), x}}), lsm, 1e-13);
  }
  // Rank 3: over the last axis only.
  Tensor x3 = rng.tensor({2, 3, 4}, -3, 3);
  Tensor want3({2, 3, 4});
  for (int64_t r = 0; r < 6; ++r) {
    double sum = 0;
    for (int64_t j = 0; j < 4; ++j)
      sum += std::exp(x3.data[size_t(r * 4 + j)]);
    for (int64_t j = 0; j < 4; ++j)
      want3.data[size_t(r * 4 + j)] = std::exp(x3.data[size_t(r * 4 + j)]) / sum;
  }
  checkTensor(runOp(Op::SoftMax, {{f32({2, 3, 4}), x3}}), want3, 1e-13);
  // Large logits do not overflow: log_softmax [1000,1001,1002] = [-2,-1,0] - lse.
  double lse = std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0);
  checkTensor(runOp(Op::LogSoftMax, {{f32({1, 3}), tensor({1, 3}, {1000, 1001, 1002})}}),
              tensor({1, 3}, {-2 - lse, -1 - lse, -lse}), 1e-12);
  checkTensor(runOp(Op::SoftMax, {{f32({1, 2}), tensor({1, 2}, {800, 800})}}),
              tensor({1, 2}, {0.5, 0.5}), 1e-15);
}

TEST_CASE("interpreter: one_hot and nll_loss", "[interp]") {
  Rng rng(12);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    Tensor labels({B});
    for (double &l : labels.data)
      l = double(rng.integer(0, 4));
    INFO("labels = " << show(labels));
    Tensor oh = runOp(Op::OneHot, {{i32({N}), labels}}, {{"classes", int64_t(5)}});
    Tensor want({B, 5});
    for (int64_t n = 0; n < B; ++n)
      for (int64_t c = 0; c < 5; ++c)
        want.data[at(want.shape, {n, c})] = labels.data[size_t(n)] == double(c);
    checkTensor(oh, want, 0);

    Tensor lp = rng.tensor({B, 5}, -4, 0);
    INFO("logp = " << show(lp));
    Tensor loss = runOp(Op::NllLoss, {{f32({N, 5}), lp}, {i32({N}), labels}});
    double s = 0;
    for (int64_t n = 0; n < B; ++n)
      s += lp.data[at(lp.shape, {n, int64_t(labels.data[size_t(n)])})];
    checkTensor(loss, tensor({}, {-s / double(B)}), 1e-13);
  }
  // By hand: -(log 0.5 + log 0.25) / 2.
  Tensor lp = tensor({2, 3}, {std::log(0.5), std::log(0.3), std::log(0.2), std::log(0.25),
                              std::log(0.25), std::log(0.5)});
  checkTensor(runOp(Op::NllLoss, {{f32({N, 3}), lp}, {i32({N}), tensor({2}, {0, 1})}}),
              tensor({}, {-(std::log(0.5) + std::log(0.25)) / 2}), 1e-15);
}

namespace {

struct Conv {
  int64_t sh, sw, ph, pw;
};

int64_t outSize(int64_t in, int64_t k, int64_t s, int64_t p) {
  return int64_t(std::floor(double(in + 2 * p - k) / double(s))) + 1;
}

/// Convolution as im2col followed by a matrix product [O, C*kh*kw] x
/// [C*kh*kw, Ho*Wo] per image.
Tensor convIm2col(const Tensor &x, const Tensor &w, Conv cv) {
  int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t O = w.shape[0], KH = w.shape[2], KW = w.shape[3];
  int64_t Ho = outSize(H, KH, cv.sh, cv.ph), Wo = outSize(W, KW, cv.sw, cv.pw);
  int64_t K = C * KH * KW, P = Ho * Wo;
  Tensor y({B, O, Ho, Wo});
  std::vector<double> cols(size_t(K * P));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ky = 0; ky < KH; ++ky)
        for (int64_t kx = 0; kx < KW; ++kx) {
          int64_t row = (c * KH + ky) * KW + kx;
          for (int64_t oy = 0; oy < Ho; ++oy)
            for (int64_t ox = 0; ox < Wo; ++ox) {
              int64_t iy = oy * cv.sh - cv.ph + ky, ix = ox * cv.sw - cv.pw + kx;
              bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
              cols[size_t(row * P + oy * Wo + ox)] =
                  inside ? x.data[at(x.shape, {b, c, iy, ix})] : 0.0;
            }
        }
    for (int64_t o = 0; o < O; ++o)
      for (int64_t col = 0; col < P; ++col) {
        double s = 0;
        for (int64_t row = 0; row < K; ++row)
          s += w.data[size_t(o * K + row)] * cols[size_t(row * P + col)];
        y.data[size_t((b * O + o) * P + col)] = s;
      }
  }
  return y;
}

double dot(const Tensor &a, const Tensor &b) {
  REQUIRE(a.data.size() == b.data.size());
  double s = 0;
  for (size_t i = 0; i < a.data.size(); ++i)
    s += a.data[i] * b.data[i];
  return s;
}

Attrs convAttrs(Conv cv) { return {{"stride", Ints{cv.sh, cv.sw}}, {"pad", Ints{cv.ph, cv.pw}}}; }

} // namespace

TEST_CASE("interpreter: conv2d against im2col + matmul", "[interp]") {
  struct Case {
    int64_t C, O, H, W, KH, KW;
    Conv cv;
  };
  const Case cases[] = {
      {2, 3, 7, 6, 3, 2, {2, 1, 1, 0}},
      {1, 2, 5, 5, 5, 5, {1, 1, 2, 2}},
      {3, 4, 6, 7, 1, 1, {2, 2, 0, 0}},
      {2, 2, 8, 8, 3, 3, {3, 3, 1, 1}},
  };
  Rng rng(13);
  for (int64_t B : kBatches)
    for (const Case &c : cases) {
      CAPTURE(B, c.C, c.O, c.H, c.W, c.KH, c.KW, c.cv.sh, c.cv.sw, c.cv.ph, c.cv.pw);
      Tensor x = rng.tensor({B, c.C, c.H, c.W}), w = rng.tensor({c.O, c.C, c.KH, c.KW});
      INFO("x = " << show(x) << "\nw = " << show(w));
      Tensor y = runOp(Op::Conv2d, {{f32({N, c.C, c.H, c.W}), x}, {f32({c.O, c.C, c.KH, c.KW}), w}},
                       convAttrs(c.cv));
      checkTensor(y, convIm2col(x, w, c.cv), 1e-12);
    }
  // By hand: a 3x3 image, a 2x2 kernel of ones, no padding: sums of 2x2 blocks.
  Tensor x = tensor({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = Tensor({1, 1, 2, 2}, 1.0);
  checkTensor(runOp(Op::Conv2d, {{f32({N, 1, 3, 3}), x}, {f32({1, 1, 2, 2}), w}}),
              tensor({1, 1, 2, 2}, {12, 16, 24, 28}), 0);
  // Same with pad 1, stride 2: corners see one, two or four pixels.
  checkTensor(
      runOp(Op::Conv2d, {{f32({N, 1, 3, 3}), x}, {f32({1, 1, 2, 2}), w}}, convAttrs({2, 2, 1, 1})),
      tensor({1, 1, 2, 2}, {1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9}), 0);
}

TEST_CASE("interpreter: conv2d gradients are the adjoints of conv2d", "[interp]") {
  struct Case {
    int64_t C, O, H, W, KH, KW;
    Conv cv;
  };
  const Case cases[] = {
      {2, 3, 6, 5, 3, 2, {2, 1, 1, 0}},
      {1, 2, 4, 4, 3, 3, {1, 1, 1, 1}},
  };
  Rng rng(14);
  for (int64_t B : kBatches)
    for (const Case &c : cases) {
      CAPTURE(B, c.C, c.O, c.H, c.W, c.KH, c.KW, c.cv.sh, c.cv.sw, c.cv.ph, c.cv.pw);
      Shape xs{B, c.C, c.H, c.W}, ws{c.O, c.C, c.KH, c.KW};
      int64_t Ho = outSize(c.H, c.KH, c.cv.sh, c.cv.ph);
      int64_t Wo = outSize(c.W, c.KW, c.cv.sw, c.cv.pw);
      Shape ys{B, c.O, Ho, Wo};
      Tensor x = rng.tensor(xs), w = rng.tensor(ws), g = rng.tensor(ys);
      INFO("x = " << show(x) << "\nw = " << show(w) << "\ng = " << show(g));
      Attrs gi = convAttrs(c.cv);
      gi.set("in_shape", Ints{c.C, c.H, c.W});
      Tensor dx = runOp(Op::Conv2dGradInput, {{f32({N, c.O, Ho, Wo}), g}, {f32(ws), w}}, gi);
      Attrs gw = convAttrs(c.cv);
      gw.set("kernel", Ints{c.KH, c.KW});
      Tensor dw = runOp(Op::Conv2dGradWeight,
                        {{f32({N, c.C, c.H, c.W}), x}, {f32({N, c.O, Ho, Wo}), g}}, gw);
      REQUIRE(dx.shape == xs);
      REQUIRE(dw.shape == ws);
      // <conv(x, w), g> = <x, dx> = <w, dw>.
      double lhs = dot(convIm2col(x, w, c.cv), g);
      CAPTURE(lhs, dot(x, dx), dot(w, dw));
      CHECK(std::abs(dot(x, dx) - lhs) <= 1e-11 * std::max(1.0, std::abs(lhs)));
      CHECK(std::abs(dot(w, dw) - lhs) <= 1e-11 * std::max(1.0, std::abs(lhs)));

      if (B != 1)
        continue;
      // Elementwise: dx[i] = <conv(e_i, w), g> and dw[i] = <conv(x, e_i), g>.
      Tensor wantDx(xs), wantDw(ws);
      for (size_t i = 0; i < x.data.size(); ++i) {
        Tensor e(xs);
        e.data[i] = 1;
        wantDx.data[i] = dot(convIm2col(e, w, c.cv), g);
      }
      for (size_t i = 0; i < w.data.size(); ++i) {
        Tensor e(ws);
        e.data[i] = 1;
        wantDw.data[i] = dot(convIm2col(x, e, c.cv), g);
      }
      checkTensor(dx, wantDx, 1e-12);
      checkTensor(dw, wantDw, 1e-12);
    }
}

namespace {

struct Pool {
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t eh = 0, ew = 0; // pad_end: Torch7's ceil mode
};

Attrs poolAttrs(Pool p) {
  Attrs a{{"kernel", Ints{p.kh, p.kw}}, {"stride", Ints{p.sh, p.sw}}, {"pad", Ints{p.ph, p.pw}}};
  if (p.eh || p.ew)
    a.set("pad_end", Ints{p.eh, p.ew});
  return a;
}

/// Max pooling and its gradient with explicit loops; padding never wins.
std::pair<Tensor, Tensor> poolRef(const Tensor &x, const Tensor *g, Pool p) {
  int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t Ho = outSize(H + p.eh, p.kh, p.sh, p.ph), Wo = outSize(W + p.ew, p.kw, p.sw, p.pw);
  Tensor y({B, C, Ho, Wo}), dx(x.shape);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oy = 0; oy < Ho; ++oy)
        for (int64_t ox = 0; ox < Wo; ++ox) {
          double best = -std::numeric_limits<double>::infinity();
          int64_t by = -1, bx = -1;
          for (int64_t iy = oy * p.sh - p.ph; iy < oy * p.sh - p.ph + p.kh; ++iy)
            for (int64_t ix = ox * p.sw - p.pw; ix < ox * p.sw - p.pw + p.kw; ++ix) {
              if (iy < 0 || ix < 0 || iy >= H || ix >= W)
                continue;
              double v = x.data[at(x.shape, {b, c, iy, ix})];
              if (v > best) {
                best = v;
                by = iy;
                bx = ix;
              }
            }
          REQUIRE(by >= 0);
          y.data[at(y.shape, {b, c, oy, ox})] = best;
          if (g)
            dx.data[at(x.shape, {b, c, by, bx})] += g->data[at(y.shape, {b, c, oy, ox})];
        }
  return {y, dx};
}

} // namespace

TEST_CASE("interpreter: maxpool2d and its gradient with explicit loops", "[interp]") {
  const Pool pools[] = {
      {2, 2, 2, 2, 0, 0}, // the usual 2x2/2
      {3, 3, 2, 2, 1, 1}, // overlapping, padded
      {3, 2, 1, 2, 1, 0}, // asymmetric
      {3, 3, 1, 1, 1, 1}, // stride 1: one input can win many windows
      // Torch7's ceil mode: a last window clipped by the input's end.
      {2, 2, 2, 2, 0, 0, 1, 0},
      {3, 3, 2, 2, 0, 0, 0, 1},
      {3, 3, 2, 2, 1, 1, 0, 1},
  };
  Rng rng(15);
  for (int64_t B : kBatches)
    for (const Pool &p : pools) {
      CAPTURE(B, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.eh, p.ew);
      Shape xs{B, 2, 7, 6};
      Tensor x = rng.tensor(xs);
      INFO("x = " << show(x));
      Tensor y = runOp(Op::MaxPool2d, {{f32({N, 2, 7, 6}), x}}, poolAttrs(p));
      auto [want, unused] = poolRef(x, nullptr, p);
      checkTensor(y, want, 0);

      Tensor g = rng.tensor(want.shape);
      INFO("g = " << show(g));
      Tensor dx = runOp(Op::MaxPool2dGrad,
                        {{f32({N, 2, 7, 6}), x}, {f32({N, 2, want.shape[2], want.shape[3]}), g}},
                        poolAttrs(p));
      checkTensor(dx, poolRef(x, &g, p).second, 1e-14);
    }
  // By hand: 2x2/2 on a 4x4 ramp picks the bottom-right of each block.
  Tensor x({1, 1, 4, 4});
  for (int i = 0; i < 16; ++i)
    x.data[size_t(i)] = i;
  checkTensor(runOp(Op::MaxPool2d, {{f32({N, 1, 4, 4}), x}}, poolAttrs({2, 2, 2, 2, 0, 0})),
              tensor({1, 1, 2, 2}, {5, 7, 13, 15}), 0);
  // Ties: the first maximum of a window in row-major order takes the whole
  // gradient (PyTorch's choice; backends must agree with the oracle). Zeros
  // after a ReLU tie all the time.
  Tensor zeros({1, 1, 4, 4});
  Tensor g = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  checkTensor(runOp(Op::MaxPool2dGrad, {{f32({N, 1, 4, 4}), zeros}, {f32({N, 1, 2, 2}), g}},
                    poolAttrs({2, 2, 2, 2, 0, 0})),
              tensor({1, 1, 4, 4}, {1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0}), 0);
  // Overlapping 2x2/1 windows on a plateau with one peak: the peak wins the
  // windows it is in, the first element of the window wins the others.
  Tensor plateau = tensor({1, 1, 3, 3}, {0, 0, 0, 0, 0, 5, 0, 0, 0});
  checkTensor(
      runOp(Op::MaxPool2dGrad,
            {{f32({N, 1, 3, 3}), plateau}, {f32({N, 1, 2, 2}), tensor({1, 1, 2, 2}, {1, 2, 3, 4})}},
            poolAttrs({2, 2, 1, 1, 0, 0})),
      tensor({1, 1, 3, 3}, {1, 0, 0, 3, 0, 6, 0, 0, 0}), 0);
  // Negative inputs with padding: the padding is not a zero that wins.
  Tensor neg = Tensor({1, 1, 2, 2}, -3.0);
  checkTensor(runOp(Op::MaxPool2d, {{f32({N, 1, 2, 2}), neg}}, poolAttrs({2, 2, 1, 1, 1, 1})),
              Tensor({1, 1, 3, 3}, -3.0), 0);
}

TEST_CASE("interpreter: average pooling in Torch7's ceil mode (pad_end)", "[interp]") {
  // Values from PyTorch's avg_pool2d(ceil_mode=True, count_include_pad=True),
  // which follows THNN: a window divides by its size clipped to the input
  // and its padding, so ceil mode's extra windows divide by fewer.
  auto ramp = [](int64_t h, int64_t w) {
    Tensor x({1, 1, h, w});
    for (size_t i = 0; i < x.data.size(); ++i)
      x.data[i] = double(i);
    return x;
  };
  // 2x2 stride 2 over 5x5: the last row and column in windows of 2 (and 1).
  checkTensor(runOp(Op::AvgPool2d, {{f32({N, 1, 5, 5}), ramp(5, 5)}},
                    {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"pad_end", Ints{1, 1}}}),
              tensor({1, 1, 3, 3}, {3, 5, 6.5, 13, 15, 16.5, 20.5, 22.5, 24}), 1e-12);
  // GoogLeNet's 3x3 stride 2 pad 1 over 6x6: 4x4 windows, the last ones
  // holding one input row or column and one of padding (divisor 2 x 3).
  Attrs a{
      {"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"pad", Ints{1, 1}}, {"pad_end", Ints{1, 1}}};
  checkTensor(runOp(Op::AvgPool2d, {{f32({N, 1, 6, 6}), ramp(6, 6)}}, a),
              tensor({1, 1, 4, 4},
                     {14. / 9, 30. / 9, 42. / 9, 16. / 6, 75. / 9, 14, 16, 51. / 6, 147. / 9, 26,
                      28, 87. / 6, 61. / 6, 16, 17, 35. / 4}),
              1e-12);
  // Its gradient (PyTorch's, times 36): ones back through the windows.
  Attrs ga = a;
  ga.set("in_shape", Ints{1, 6, 6});
  const std::vector<double> dx36{4,  8,  4, 8,  4, 10, 8,  16, 8,  16, 8,  20,
                                 4,  8,  4, 8,  4, 10, 8,  16, 8,  16, 8,  20,
                                 4,  8,  4, 8,  4, 10, 10, 20, 10, 20, 10, 25};
  std::vector<double> dx;
  for (double v : dx36)
    dx.push_back(v / 36);
  checkTensor(runOp(Op::AvgPool2dGrad, {{f32({N, 1, 4, 4}), Tensor({1, 1, 4, 4}, 1.0)}}, ga),
              tensor({1, 1, 6, 6}, dx), 1e-12);
}

TEST_CASE("interpreter: average pooling counts the padding, as Torch7's", "[interp]") {
  // 3x3 input, 2x2 windows, stride 1, pad 1: a 4x4 output whose corners
  // hold one input value each, divided by 4 all the same.
  Tensor x = tensor({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Attrs a{{"kernel", Ints{2, 2}}, {"stride", Ints{1, 1}}, {"pad", Ints{1, 1}}};
  Tensor y = runOp(Op::AvgPool2d, {{f32({N, 1, 3, 3}), x}}, a);
  checkTensor(y, tensor({1, 1, 4, 4},
                        {1. / 4, 3. / 4, 5. / 4, 3. / 4, 5. / 4, 12. / 4, 16. / 4, 9. / 4, 11. / 4,
                         24. / 4, 28. / 4, 15. / 4, 7. / 4, 15. / 4, 17. / 4, 9. / 4}));
  // Its gradient: each input gets 1/4 of the gradient of the 4 windows holding it.
  Attrs ga = a;
  ga.set("in_shape", Ints{1, 3, 3});
  Tensor ones({1, 1, 4, 4}, 1.0);
  checkTensor(runOp(Op::AvgPool2dGrad, {{f32({N, 1, 4, 4}), ones}}, ga), Tensor({1, 1, 3, 3}, 1.0));
  // 3x3 windows, stride 2, no pad, on a batch: plain means.
  Rng rng(5);
  Tensor xb = rng.tensor({2, 2, 5, 5});
  Tensor yb = runOp(Op::AvgPool2d, {{f32({N, 2, 5, 5}), xb}},
                    {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}});
  REQUIRE(yb.shape == Shape{2, 2, 2, 2});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t oy = 0; oy < 2; ++oy)
        for (int64_t ox = 0; ox < 2; ++ox) {
          double s = 0;
          for (int64_t ky = 0; ky < 3; ++ky)
            for (int64_t kx = 0; kx < 3; ++kx)
              s += xb.data[at(xb.shape, {n, c, 2 * oy + ky, 2 * ox + kx})];
          CHECK(yb.data[at(yb.shape, {n, c, oy, ox})] == Approx(s / 9).epsilon(1e-12));
        }
}

TEST_CASE("interpreter: concat and slice", "[interp]") {
  Rng rng(11);
  for (int64_t B : kBatches) {
    CAPTURE(B);
    // Along the channels of [N,C,2,2]: y[n][c] comes from the operand whose range holds c.
    Tensor a = rng.tensor({B, 1, 2, 2}), b = rng.tensor({B, 3, 2, 2});
    Tensor y =
        runOp(Op::Concat, {{f32({N, 1, 2, 2}), a}, {f32({N, 3, 2, 2}), b}, {f32({N, 1, 2, 2}), a}},
              {{"axis", int64_t(1)}});
    Tensor want({B, 5, 2, 2});
    for (int64_t n = 0; n < B; ++n)
      for (int64_t c = 0; c < 5; ++c)
        for (int64_t i = 0; i < 4; ++i) {
          double v = c == 0 || c == 4 ? a.data[at(a.shape, {n, 0, i / 2, i % 2})]
                                      : b.data[at(b.shape, {n, c - 1, i / 2, i % 2})];
          want.data[at(want.shape, {n, c, i / 2, i % 2})] = v;
        }
    checkTensor(y, want, 0);
    // Slices of it give the operands back.
    Attrs middle{{"axis", int64_t(1)}, {"start", int64_t(1)}, {"size", int64_t(3)}};
    checkTensor(runOp(Op::Slice, {{f32({N, 5, 2, 2}), y}}, middle), b, 0);
    Attrs last{{"axis", int64_t(1)}, {"start", int64_t(4)}, {"size", int64_t(1)}};
    checkTensor(runOp(Op::Slice, {{f32({N, 5, 2, 2}), y}}, last), a, 0);
  }
  // The last axis, by hand.
  checkTensor(
      runOp(Op::Concat,
            {{f32({2, 2}), tensor({2, 2}, {1, 2, 3, 4})}, {f32({2, 1}), tensor({2, 1}, {5, 6})}},
            {{"axis", int64_t(1)}}),
      tensor({2, 3}, {1, 2, 5, 3, 4, 6}), 0);
  checkTensor(runOp(Op::Slice, {{f32({2, 3}), tensor({2, 3}, {1, 2, 5, 3, 4, 6})}},
                    {{"axis", int64_t(1)}, {"start", int64_t(1)}, {"size", int64_t(2)}}),
              tensor({2, 2}, {2, 5, 4, 6}), 0);
  // Axis 0 of unbatched operands.
  checkTensor(
      runOp(Op::Concat,
            {{f32({1, 2}), tensor({1, 2}, {1, 2})}, {f32({2, 2}), tensor({2, 2}, {3, 4, 5, 6})}},
            {{"axis", int64_t(0)}}),
      tensor({3, 2}, {1, 2, 3, 4, 5, 6}), 0);
}

TEST_CASE("interpreter: every op in ops.def has a test in this file", "[interp]") {
  const std::set<Op> tested = {Op::Input,
                               Op::Constant,
                               Op::ConstTensor,
                               Op::Param,
                               Op::RandomMask,
                               Op::Reshape,
                               Op::Transpose,
                               Op::Broadcast,
                               Op::FlatPack,
                               Op::Concat,
                               Op::Slice,
                               Op::Add,
                               Op::Sub,
                               Op::Mul,
                               Op::Div,
                               Op::Pow,
                               Op::Max,
                               Op::Min,
                               Op::Greater,
                               Op::Select,
                               Op::Neg,
                               Op::Exp,
                               Op::Log,
                               Op::Sqrt,
                               Op::Square,
                               Op::Relu,
                               Op::Tanh,
                               Op::Sigmoid,
                               Op::Cast,
                               Op::BatchSize,
                               Op::ReduceSum,
                               Op::ReduceMax,
                               Op::ReduceMean,
                               Op::ArgMax,
                               Op::MatMul,
                               Op::SoftMax,
                               Op::LogSoftMax,
                               Op::OneHot,
                               Op::NllLoss,
                               Op::Conv2d,
                               Op::Conv2dGradInput,
                               Op::Conv2dGradWeight,
                               Op::MaxPool2d,
                               Op::MaxPool2dGrad,
                               Op::AvgPool2d,
                               Op::AvgPool2dGrad};
  std::vector<std::string> missing;
  for (int i = 0; i < kNumOps; ++i)
    if (!tested.count(Op(i)))
      missing.push_back(std::string(opName(Op(i))));
  INFO("ops without an interpreter test: " << Catch::Detail::stringify(missing));
  CHECK(missing.empty());
}

// ---------------------------------------------------------------------------
// The seed MLP, traced from the C++ API.

namespace {

nn::ModelSpec seedSpec() { return test::seedMlp(); }

const frontend::Traced &seedTraced() {
  static const frontend::Traced t = [] {
    auto r = frontend::trace(seedSpec(), {1, 32, 32});
    if (!r)
      FAIL("trace failed: " << r.diag().str());
    return std::move(*r);
  }();
  return t;
}

const frontend::ParamInfo &paramNamed(const frontend::Traced &t, const std::string &name) {
  for (auto &p : t.params)
    if (p.name == name)
      return p;
  FAIL("no parameter " << name);
  return t.params.front();
}

/// y[n][o] = b[o] + sum_i x[n][i] * W[o][i], W and b read from the flat buffer.
std::vector<double> linear(const std::vector<double> &x, int64_t B, int64_t in,
                           const std::vector<float> &flat, const frontend::ParamInfo &w,
                           const frontend::ParamInfo &b) {
  REQUIRE(w.shape == Shape{b.shape[0], in});
  int64_t out = b.shape[0];
  std::vector<double> y(size_t(B * out));
  for (int64_t n = 0; n < B; ++n)
    for (int64_t o = 0; o < out; ++o) {
      const float *row = flat.data() + w.offset + o * in;
      const double *xr = x.data() + n * in;
      double s = 0;
      for (int64_t i = 0; i < in; ++i)
        s += double(row[i]) * xr[i];
      y[size_t(n * out + o)] = s + double(flat[size_t(b.offset + o)]);
    }
  return y;
}

} // namespace

TEST_CASE("interpreter: seed MLP parameter layout and initialisation", "[interp]") {
  const frontend::Traced &t = seedTraced();
  struct Want {
    std::string name;
    Shape shape;
    int64_t fanIn;
  };
  const Want want[] = {{"1.weight", {1000, 1024}, 1024}, {"1.bias", {1000}, 1024},
                       {"3.weight", {1000, 1000}, 1000}, {"3.bias", {1000}, 1000},
                       {"5.weight", {10, 1000}, 1000},   {"5.bias", {10}, 1000}};
  REQUIRE(t.params.size() == 6);
  int64_t offset = 0;
  for (size_t i = 0; i < 6; ++i) {
    const auto &p = t.params[i];
    CAPTURE(i, p.name, p.shape, p.offset, p.initBound);
    CHECK(p.name == want[i].name);
    CHECK(p.shape == want[i].shape);
    CHECK(p.offset == offset); // contiguous, in state_dict order
    CHECK(p.initBound == Approx(1.0 / std::sqrt(double(want[i].fanIn))).epsilon(1e-15));
    offset += product(want[i].shape);
  }
  CHECK(t.numParams == offset);
  CHECK(t.numParams == 1024 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 * 10 + 10);
  CHECK(t.classes == 10);
  CHECK(t.sample == Shape{1, 32, 32});

  std::vector<float> flat = frontend::initParams(t.params, 1234);
  REQUIRE(int64_t(flat.size()) == t.numParams);
  for (const auto &p : t.params) {
    CAPTURE(p.name, p.initBound);
    float bound = float(p.initBound);
    int64_t outside = 0, upper = 0;
    double mean = 0, maxAbs = 0;
    for (int64_t i = 0; i < p.numel(); ++i) {
      float v = flat[size_t(p.offset + i)];
      outside += !(std::abs(v) <= bound);
      upper += v > 0;
      mean += v;
      maxAbs = std::max(maxAbs, double(std::abs(v)));
    }
    mean /= double(p.numel());
    CAPTURE(outside, mean, maxAbs, upper);
    CHECK(outside == 0);
    // Uniform over the whole interval, not a corner of it.
    if (p.numel() >= 1000) {
      CHECK(maxAbs > 0.95 * p.initBound);
      CHECK(std::abs(mean) < 0.1 * p.initBound);
      CHECK(std::abs(double(upper) / double(p.numel()) - 0.5) < 0.05);
    }
  }
  // Deterministic per seed; another seed gives other values.
  CHECK(frontend::initParams(t.params, 1234) == flat);
  std::vector<float> other = frontend::initParams(t.params, 1235);
  int64_t same = 0;
  for (size_t i = 0; i < flat.size(); ++i)
    same += flat[i] == other[i];
  CHECK(same < int64_t(flat.size()) / 100);
  // Tensors are not copies of one another: 3.weight does not start like 1.weight.
  const auto &w1 = paramNamed(t, "1.weight"), &w3 = paramNamed(t, "3.weight");
  int64_t equal = 0;
  for (int64_t i = 0; i < 1000; ++i)
    equal += flat[size_t(w1.offset + i)] * float(w3.initBound) ==
             flat[size_t(w3.offset + i)] * float(w1.initBound);
  CHECK(equal < 10);
}

TEST_CASE("interpreter: seed MLP forward and loss against plain loops", "[interp]") {
  const frontend::Traced &t = seedTraced();
  const Graph &g = t.graph;
  REQUIRE(g.output("output") >= 0);
  REQUIRE(g.output("loss") >= 0);
  std::vector<float> flat = frontend::initParams(t.params, 77);
  Tensor params({t.numParams});
  for (size_t i = 0; i < flat.size(); ++i)
    params.data[i] = double(flat[i]);

  Rng rng(16);
  for (int64_t B : {int64_t(3), int64_t(96)}) {
    CAPTURE(B);
    Tensor x = rng.tensor({B, 1, 32, 32}, 0, 1);
    Tensor labels({B});
    for (double &l : labels.data)
      l = double(rng.integer(0, 9));
    INFO("x = " << show(x) << "\nlabels = " << show(labels));
    auto r = run(g, {{"x", x}, {"labels", labels}, {"params", params}});
    if (!r)
      FAIL("interpreter error: " << r.diag().message);

    // Independent forward pass.
    auto relu = [](std::vector<double> v) {
      for (double &e : v)
        e = e > 0 ? e : 0;
      return v;
    };
    std::vector<double> h1 =
        relu(linear(x.data, B, 1024, flat, paramNamed(t, "1.weight"), paramNamed(t, "1.bias")));
    std::vector<double> h2 =
        relu(linear(h1, B, 1000, flat, paramNamed(t, "3.weight"), paramNamed(t, "3.bias")));
    std::vector<double> z =
        linear(h2, B, 1000, flat, paramNamed(t, "5.weight"), paramNamed(t, "5.bias"));
    Tensor logp({B, 10});
    double loss = 0;
    for (int64_t n = 0; n < B; ++n) {
      double sum = 0;
      for (int64_t c = 0; c < 10; ++c)
        sum += std::exp(z[size_t(n * 10 + c)]);
      for (int64_t c = 0; c < 10; ++c)
        logp.data[size_t(n * 10 + c)] = z[size_t(n * 10 + c)] - std::log(sum);
      loss -= logp.data[size_t(n * 10 + int64_t(labels.data[size_t(n)]))];
    }
    loss /= double(B);

    checkTensor(r->at("output"), logp, 1e-9);
    INFO("loss: interpreter " << r->at("loss").data.at(0) << ", expected " << loss);
    REQUIRE(r->at("loss").shape.empty());
    CHECK(std::abs(r->at("loss").data[0] - loss) <= 1e-9 * std::abs(loss));
    // With Torch7's initialisation the untrained loss is near log(10).
    CHECK(std::abs(loss - std::log(10.0)) < 0.5);
  }
}

TEST_CASE("interpreter: errors are reported, not crashed on", "[interp]") {
  const frontend::Traced &t = seedTraced();
  const Graph &g = t.graph;
  std::vector<float> flat = frontend::initParams(t.params, 5);
  Tensor params({t.numParams});
  for (size_t i = 0; i < flat.size(); ++i)
    params.data[i] = double(flat[i]);
  Tensor x({3, 1, 32, 32}, 0.5);
  Tensor labels = tensor({3}, {0, 9, 4});
  REQUIRE(run(g, {{"x", x}, {"labels", labels}, {"params", params}}));

  auto expectError = [&](const Bindings &b, std::vector<std::string> parts) {
    auto r = run(g, b);
    REQUIRE_FALSE(r);
    INFO("message: " << r.diag().message);
    for (auto &p : parts) {
      CAPTURE(p);
      CHECK(r.diag().message.find(p) != std::string::npos);
    }
  };
  SECTION("missing input") {
    expectError({{"x", x}, {"params", params}}, {"no value for input 'labels'"});
    expectError({{"x", x}, {"labels", labels}}, {"'params'"});
  }
  SECTION("wrong input shape") {
    expectError({{"x", Tensor({3, 1, 32, 31})}, {"labels", labels}, {"params", params}},
                {"input 'x'", "[3,1,32,31]", "[N,1,32,32]"});
    expectError({{"x", Tensor({3, 1024})}, {"labels", labels}, {"params", params}},
                {"input 'x'", "[3,1024]"});
    expectError({{"x", x}, {"labels", labels}, {"params", Tensor({100})}},
                {"input 'params'", "[100]"});
  }
  SECTION("batched input given as a scalar") {
    expectError({{"x", x}, {"labels", Tensor({}, 1.0)}, {"params", params}},
                {"'labels'", "batched"});
  }
  SECTION("inconsistent batch sizes") {
    expectError({{"x", x}, {"labels", tensor({4}, {0, 1, 2, 3})}, {"params", params}},
                {"batch size 4", "3"});
  }
  SECTION("label out of range") {
    expectError({{"x", x}, {"labels", tensor({3}, {0, 10, 1})}, {"params", params}},
                {"label 10", "[0, 10)"});
    expectError({{"x", x}, {"labels", tensor({3}, {0, 1, -1})}, {"params", params}},
                {"label -1", "[0, 10)"});
  }
  SECTION("one_hot label out of range") {
    Graph h;
    ValueId l = h.input("labels", i32({N}));
    h.addOutput("y", h.add(Op::OneHot, {l}, {{"classes", int64_t(3)}}));
    auto r = run(h, {{"labels", tensor({2}, {1, 3})}});
    REQUIRE_FALSE(r);
    INFO(r.diag().message);
    CHECK(r.diag().message.find("label 3") != std::string::npos);
  }
}
