// tests/shape_inference_test.cpp - typing rules of every op in ir/ops.def,
// including the symbolic batch dimension N and the rejections.
#include "ir/ShapeInference.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>

using namespace graphc;
using namespace graphc::ir;

namespace {

using Ints = std::vector<int64_t>;
constexpr int64_t N = kBatch;

Type f32(Shape s) { return {DType::F32, std::move(s)}; }
Type i32(Shape s) { return {DType::I32, std::move(s)}; }

std::string typesStr(const std::vector<Type> &in) {
  std::string s;
  for (auto &t : in)
    s += (s.empty() ? "" : ", ") + str(t);
  return "(" + s + ")";
}

/// inferType(op, in, attrs) == want.
void expectType(Op op, const std::vector<Type> &in, const Attrs &attrs, const Type &want) {
  INFO(opName(op) << " " << typesStr(in) << " " << str(attrs));
  auto t = inferType(op, in, attrs);
  if (!t)
    FAIL("rejected: " << t.diag().message << "\nexpected " << str(want));
  INFO("inferred " << str(*t) << ", expected " << str(want));
  CHECK(*t == want);
}

/// inferType(op, in, attrs) fails with a message naming the op and containing
/// every one of `parts`.
void expectReject(Op op, const std::vector<Type> &in, const Attrs &attrs,
                  std::vector<std::string> parts) {
  INFO(opName(op) << " " << typesStr(in) << " " << str(attrs));
  auto t = inferType(op, in, attrs);
  if (t)
    FAIL("accepted as " << str(*t));
  const std::string &msg = t.diag().message;
  INFO("message: " << msg);
  CHECK(msg.rfind(std::string(opName(op)) + ": ", 0) == 0);
  for (auto &p : parts) {
    CAPTURE(p);
    CHECK(msg.find(p) != std::string::npos);
  }
}

/// floor((in + 2 pad - k) / s) + 1 in floating point, or 0 when the window
/// does not fit at all.
int64_t windowFormula(int64_t in, int64_t k, int64_t s, int64_t p) {
  double q = std::floor(double(in + 2 * p - k) / double(s));
  return std::max<int64_t>(int64_t(q) + 1, 0);
}

} // namespace

TEST_CASE("shape inference: one accepted case per op", "[shape]") {
  struct Case {
    Op op;
    std::vector<Type> in;
    Attrs attrs;
    Type want;
  };
  Type x = f32({N, 10});
  std::vector<Case> cases = {
      {Op::Param, {f32({100})}, {{"offset", int64_t(10)}, {"shape", Ints{3, 30}}}, f32({3, 30})},
      {Op::RandomMask,
       {i32({})},
       {{"p", 0.5}, {"salt", int64_t(3)}, {"shape", Ints{N, 10}}},
       f32({N, 10})},
      {Op::Reshape, {f32({N, 1, 32, 32})}, {{"shape", Ints{N, 1024}}}, f32({N, 1024})},
      {Op::Transpose, {f32({2, 3, 4})}, {{"perm", Ints{2, 0, 1}}}, f32({4, 2, 3})},
      {Op::Broadcast, {f32({10})}, {{"shape", Ints{N, 10}}}, x},
      {Op::FlatPack,
       {f32({3, 4}), f32({3})},
       {{"offsets", Ints{0, 12}}, {"size", int64_t(20)}},
       f32({20})},
      {Op::Concat,
       {f32({N, 3, 4, 4}), f32({N, 5, 4, 4})},
       {{"axis", int64_t(1)}},
       f32({N, 8, 4, 4})},
      {Op::Slice,
       {f32({N, 8, 4, 4})},
       {{"axis", int64_t(1)}, {"start", int64_t(3)}, {"size", int64_t(5)}},
       f32({N, 5, 4, 4})},
      {Op::Add, {x, f32({10})}, {}, x},
      {Op::Sub, {f32({N, 1}), x}, {}, x},
      {Op::Mul, {x, f32({})}, {}, x},
      {Op::Div, {f32({N, 1}), f32({1, 7})}, {}, f32({N, 7})},
      {Op::Pow, {x, f32({10})}, {}, x},
      {Op::ConstTensor,
       {},
       {{"shape", Ints{2, 2}}, {"values", std::vector<double>{1, 2, 3, 4}}},
       f32({2, 2})},
      {Op::Max, {x, x}, {}, x},
      {Op::Min, {f32({1}), x}, {}, x},
      {Op::Greater, {x, f32({N, 1})}, {}, x},
      {Op::Select, {f32({N, 1}), x, f32({10})}, {}, x},
      {Op::Neg, {x}, {}, x},
      {Op::Exp, {x}, {}, x},
      {Op::Log, {x}, {}, x},
      {Op::Sqrt, {x}, {}, x},
      {Op::Square, {x}, {}, x},
      {Op::Relu, {x}, {}, x},
      {Op::Tanh, {x}, {}, x},
      {Op::Sigmoid, {x}, {}, x},
      {Op::Cast, {x}, {{"to", std::string("i32")}}, i32({N, 10})},
      {Op::BatchSize, {x}, {}, f32({})},
      {Op::ReduceSum, {x}, {{"axes", Ints{1}}}, f32({N})},
      {Op::ReduceMax, {x}, {{"axes", Ints{1}}, {"keepdims", true}}, f32({N, 1})},
      {Op::ReduceMean, {x}, {{"axes", Ints{0}}}, f32({10})},
      {Op::ArgMax, {x}, {}, i32({N})},
      {Op::MatMul, {x, f32({10, 20})}, {}, f32({N, 20})},
      {Op::SoftMax, {x}, {}, x},
      {Op::LogSoftMax, {x}, {}, x},
      {Op::OneHot, {i32({N})}, {{"classes", int64_t(10)}}, x},
      {Op::NllLoss, {x, i32({N})}, {}, f32({})},
      {Op::Conv2d, {f32({N, 3, 32, 32}), f32({16, 3, 5, 5})}, {}, f32({N, 16, 28, 28})},
      {Op::Conv2dGradInput,
       {f32({N, 16, 28, 28}), f32({16, 3, 5, 5})},
       {{"in_shape", Ints{3, 32, 32}}},
       f32({N, 3, 32, 32})},
      {Op::Conv2dGradWeight,
       {f32({N, 3, 32, 32}), f32({N, 16, 28, 28})},
       {{"kernel", Ints{5, 5}}},
       f32({16, 3, 5, 5})},
      {Op::MaxPool2d,
       {f32({N, 16, 28, 28})},
       {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}},
       f32({N, 16, 14, 14})},
      {Op::MaxPool2dGrad,
       {f32({N, 16, 28, 28}), f32({N, 16, 14, 14})},
       {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}},
       f32({N, 16, 28, 28})},
      {Op::AvgPool2d,
       {f32({N, 16, 28, 28})},
       {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"pad", Ints{1, 1}}},
       f32({N, 16, 14, 14})},
      {Op::AvgPool2dGrad,
       {f32({N, 16, 14, 14})},
       {{"kernel", Ints{3, 3}},
        {"stride", Ints{2, 2}},
        {"pad", Ints{1, 1}},
        {"in_shape", Ints{16, 28, 28}}},
       f32({N, 16, 28, 28})},
  };
  std::set<Op> covered = {Op::Input, Op::Constant}; // typed explicitly, below
  for (auto &c : cases) {
    expectType(c.op, c.in, c.attrs, c.want);
    covered.insert(c.op);
  }
  std::vector<std::string> missing;
  for (int i = 0; i < kNumOps; ++i)
    if (!covered.count(Op(i)))
      missing.push_back(std::string(opName(Op(i))));
  INFO("ops without a case: " << Catch::Detail::stringify(missing));
  CHECK(missing.empty());

  // Sources have no typing rule: the graph gives them their type.
  expectReject(Op::Input, {}, {{"name", std::string("x")}}, {"typed explicitly"});
  expectReject(Op::Constant, {}, {{"value", 1.0}}, {"typed explicitly"});
}

TEST_CASE("shape inference: operand counts are checked for every fixed-arity op", "[shape]") {
  for (int i = 0; i < kNumOps; ++i) {
    Op op = Op(i);
    int arity = opArity(op);
    if (arity < 0)
      continue;
    std::vector<Type> in(size_t(arity) + 1, f32({N, 4}));
    expectReject(
        op, in, {},
        {"takes " + std::to_string(arity) + " operands, got " + std::to_string(arity + 1)});
  }
}

TEST_CASE("shape inference: broadcasting", "[shape]") {
  expectType(Op::Add, {f32({N, 10}), f32({10})}, {}, f32({N, 10}));
  expectType(Op::Add, {f32({10}), f32({N, 10})}, {}, f32({N, 10}));
  expectType(Op::Add, {f32({N, 1}), f32({N, 10})}, {}, f32({N, 10}));
  expectType(Op::Mul, {f32({N, 1}), f32({7})}, {}, f32({N, 7}));
  expectType(Op::Mul, {f32({N, 1}), f32({1, 7})}, {}, f32({N, 7}));
  expectType(Op::Sub, {f32({1, 10}), f32({N, 10})}, {}, f32({N, 10}));
  expectType(Op::Sub, {f32({}), f32({N, 3, 4})}, {}, f32({N, 3, 4}));
  expectType(Op::Max, {f32({2, 1, 4}), f32({3, 1})}, {}, f32({2, 3, 4}));
  expectType(Op::Div, {f32({N, 3, 1, 5}), f32({4, 1})}, {}, f32({N, 3, 4, 5}));
  expectType(Op::Add, {f32({N}), f32({N})}, {}, f32({N}));
  expectType(Op::Add, {f32({N}), f32({1})}, {}, f32({N}));
  // Unbatched with unbatched stays unbatched.
  expectType(Op::Add, {f32({3, 1}), f32({1, 4})}, {}, f32({3, 4}));

  CHECK(*broadcastShapes({N, 1}, {1, 10}) == Shape{N, 10});
  CHECK(*broadcastShapes({5, 1, 1}, {3, 2}) == Shape{5, 3, 2});

  expectReject(Op::Add, {f32({N, 10}), f32({9})}, {}, {"[N,10]", "[9]", "do not broadcast"});
  expectReject(Op::Mul, {f32({N, 10}), f32({5, 10})}, {}, {"[N,10]", "[5,10]"});
  expectReject(Op::Sub, {f32({2, 3}), f32({3, 2})}, {}, {"[2,3]", "[3,2]"});
  // N would end up in the second position.
  expectReject(Op::Add, {f32({N}), f32({5, 1})}, {}, {"N not leading"});
  expectReject(Op::Max, {f32({N, 4}), f32({3, 1, 4})}, {}, {"N not leading"});
  expectReject(Op::Select, {f32({N, 10}), f32({N, 10}), f32({4})}, {}, {"do not broadcast"});
  // Elementwise arithmetic is on f32.
  expectReject(Op::Add, {f32({N, 10}), i32({N, 10})}, {}, {"operand 1 must be f32"});
  expectReject(Op::Relu, {i32({N})}, {}, {"operand 0 must be f32"});
  // Operands with N out of the leading position are invalid to begin with.
  expectReject(Op::Relu, {f32({3, N})}, {}, {"invalid operand shape", "[3,N]"});
}

TEST_CASE("shape inference: reductions", "[shape]") {
  struct Case {
    Shape in;
    Ints axes;
    bool keep;
    Shape want;
  };
  std::vector<Case> cases = {
      {{N, 10}, {1}, false, {N}},
      {{N, 10}, {1}, true, {N, 1}},
      {{N, 10}, {-1}, false, {N}},
      {{N, 10}, {0}, false, {10}},
      {{N, 10}, {0}, true, {1, 10}},
      {{N, 10}, {}, false, {}},
      {{N, 10}, {}, true, {1, 1}},
      {{N, 10}, {0, 1}, false, {}},
      {{N, 3, 4, 5}, {1, 3}, true, {N, 1, 4, 1}},
      {{N, 3, 4, 5}, {1, 3}, false, {N, 4}},
      {{N, 3, 4, 5}, {3, 1}, false, {N, 4}},
      {{N, 3, 4, 5}, {-3, -1}, false, {N, 4}},
      {{2, 3, 4}, {1}, false, {2, 4}},
      {{2, 3, 4}, {2, 0}, true, {1, 3, 1}},
      {{7}, {0}, false, {}},
      {{}, {}, false, {}},
  };
  for (Op op : {Op::ReduceSum, Op::ReduceMax, Op::ReduceMean})
    for (auto &c : cases)
      expectType(op, {f32(c.in)}, {{"axes", c.axes}, {"keepdims", c.keep}}, f32(c.want));

  expectReject(Op::ReduceSum, {f32({N, 10})}, {{"axes", Ints{2}}},
               {"axes out of range", "f32[N,10]"});
  expectReject(Op::ReduceMean, {f32({N, 10})}, {{"axes", Ints{-3}}}, {"axes out of range"});
  expectReject(Op::ReduceMax, {i32({N, 10})}, {{"axes", Ints{1}}}, {"must be f32"});
}

TEST_CASE("shape inference: matmul with transposes", "[shape]") {
  expectType(Op::MatMul, {f32({N, 4}), f32({4, 3})}, {}, f32({N, 3}));
  expectType(Op::MatMul, {f32({N, 1024}), f32({1000, 1024})}, {{"transB", true}}, f32({N, 1000}));
  // Weight gradient: contraction over N.
  expectType(Op::MatMul, {f32({N, 10}), f32({N, 20})}, {{"transA", true}}, f32({10, 20}));
  // Input gradient.
  expectType(Op::MatMul, {f32({N, 10}), f32({10, 1000})}, {{"transA", false}}, f32({N, 1000}));
  expectType(Op::MatMul, {f32({5, 7}), f32({3, 5})}, {{"transA", true}, {"transB", true}},
             f32({7, 3}));
  expectType(Op::MatMul, {f32({2, 3}), f32({3, 4})}, {{"transA", false}, {"transB", false}},
             f32({2, 4}));

  expectReject(Op::MatMul, {f32({N, 4}), f32({5, 3})}, {},
               {"inner dimensions differ", "f32[N,4]", "f32[5,3]"});
  expectReject(Op::MatMul, {f32({N, 4}), f32({4, 3})}, {{"transB", true}},
               {"inner dimensions differ", "f32[4,3]^T"});
  expectReject(Op::MatMul, {f32({N, 4}), f32({4, 3})}, {{"transA", true}},
               {"inner dimensions differ", "f32[N,4]^T"});
  // N as the second dimension of the result.
  expectReject(Op::MatMul, {f32({5, 10}), f32({N, 10})}, {{"transB", true}}, {"batch dimension N"});
  expectReject(Op::MatMul, {f32({N, 4, 1}), f32({4, 3})}, {}, {"rank 2"});
  expectReject(Op::MatMul, {f32({N, 4}), f32({4})}, {}, {"operand 1", "rank 2"});
  expectReject(Op::MatMul, {i32({N, 4}), f32({4, 3})}, {}, {"must be f32"});
}

TEST_CASE("shape inference: pooling's pad_end (Torch7's ceil mode)", "[shape]") {
  // 3x3 stride 2 over 6: 2 windows in floor mode, 3 in ceil mode (PyTorch's
  // max_pool2d(ceil_mode=True) gives 3 too); pad_end 1 gives the third.
  Attrs a{{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}, {"pad_end", Ints{1, 0}}};
  expectType(Op::MaxPool2d, {f32({N, 2, 6, 6})}, a, f32({N, 2, 3, 2}));
  expectType(Op::MaxPool2dGrad, {f32({N, 2, 6, 6}), f32({N, 2, 3, 2})}, a, f32({N, 2, 6, 6}));
  expectType(Op::AvgPool2d, {f32({N, 2, 6, 6})}, a, f32({N, 2, 3, 2}));
  Attrs ga = a;
  ga.set("in_shape", Ints{2, 6, 6});
  expectType(Op::AvgPool2dGrad, {f32({N, 2, 3, 2})}, ga, f32({N, 2, 6, 6}));
  // GoogLeNet's 3x3 stride 2 pad 1 over 14: 8 windows.
  expectType(Op::MaxPool2d, {f32({N, 1, 14, 14})},
             {{"kernel", Ints{3, 3}},
              {"stride", Ints{2, 2}},
              {"pad", Ints{1, 1}},
              {"pad_end", Ints{1, 1}}},
             f32({N, 1, 8, 8}));
  CHECK(windowOut(6, 3, 2, 0, 1) == 3);
  // A window that would start past the input (Torch7 drops it), a negative
  // or short pad_end, and pad_end on a convolution are refused.
  expectReject(Op::MaxPool2d, {f32({N, 1, 4, 4})},
               {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"pad_end", Ints{2, 0}}},
               {"starts past the input"});
  expectReject(Op::AvgPool2d, {f32({N, 1, 5, 5})},
               {{"kernel", Ints{2, 2}},
                {"stride", Ints{2, 2}},
                {"pad", Ints{1, 1}},
                {"pad_end", Ints{0, 2}}},
               {"starts past the input"});
  expectReject(Op::MaxPool2d, {f32({N, 1, 6, 6})},
               {{"kernel", Ints{3, 3}}, {"pad_end", Ints{-1, 0}}}, {"not negative"});
  expectReject(Op::MaxPool2d, {f32({N, 1, 6, 6})}, {{"kernel", Ints{3, 3}}, {"pad_end", Ints{1}}},
               {"two values"});
  expectReject(Op::Conv2d, {f32({N, 1, 6, 6}), f32({1, 1, 3, 3})}, {{"pad_end", Ints{1, 1}}},
               {"pooling only"});
}

TEST_CASE("shape inference: conv2d and maxpool output sizes", "[shape]") {
  int accepted = 0, rejected = 0;
  for (int64_t h : {1, 2, 5, 7, 28, 32})
    for (int64_t k : {1, 2, 3, 5})
      for (int64_t s : {1, 2, 3})
        for (int64_t p : {0, 1, 2}) {
          int64_t w = h + 3; // a different width, same formula
          int64_t kw = k == 1 ? 1 : k - 1;
          int64_t ho = windowFormula(h, k, s, p);
          int64_t wo = windowFormula(w, kw, s, p);
          CAPTURE(h, w, k, kw, s, p, ho, wo);
          Attrs window{{"stride", Ints{s, s}}, {"pad", Ints{p, p}}};
          Type x = f32({N, 3, h, w});
          Type wt = f32({8, 3, k, kw});
          if (ho >= 1 && wo >= 1) {
            ++accepted;
            expectType(Op::Conv2d, {x, wt}, window, f32({N, 8, ho, wo}));
            Attrs gi = window;
            gi.set("in_shape", Ints{3, h, w});
            expectType(Op::Conv2dGradInput, {f32({N, 8, ho, wo}), wt}, gi, x);
            Attrs gw = window;
            gw.set("kernel", Ints{k, kw});
            expectType(Op::Conv2dGradWeight, {x, f32({N, 8, ho, wo})}, gw, wt);
          } else {
            ++rejected;
            expectReject(Op::Conv2d, {x, wt}, window, {"does not fit"});
          }
          // Pooling pads at most half the window (PyTorch's rule).
          if (2 * p > std::min(k, kw))
            continue;
          Attrs pool = window;
          pool.set("kernel", Ints{k, kw});
          if (ho >= 1 && wo >= 1) {
            expectType(Op::MaxPool2d, {x}, pool, f32({N, 3, ho, wo}));
            expectType(Op::MaxPool2dGrad, {x, f32({N, 3, ho, wo})}, pool, x);
          } else {
            expectReject(Op::MaxPool2d, {x}, pool, {"does not fit"});
          }
        }
  CHECK(accepted > 100);
  CHECK(rejected > 10);

  // Stride and padding default to 1 and 0.
  expectType(Op::Conv2d, {f32({N, 1, 32, 32}), f32({6, 1, 5, 5})}, {}, f32({N, 6, 28, 28}));
  // Asymmetric: stride {2,1}, pad {0,2}, kernel 3x5 on 9x11.
  expectType(Op::Conv2d, {f32({N, 2, 9, 11}), f32({4, 2, 3, 5})},
             {{"stride", Ints{2, 1}}, {"pad", Ints{0, 2}}},
             f32({N, 4, windowFormula(9, 3, 2, 0), windowFormula(11, 5, 1, 2)}));
  expectType(Op::MaxPool2d, {f32({N, 2, 9, 11})},
             {{"kernel", Ints{3, 2}}, {"stride", Ints{2, 3}}, {"pad", Ints{1, 0}}},
             f32({N, 2, windowFormula(9, 3, 2, 1), windowFormula(11, 2, 3, 0)}));

  // The kernel is larger than the padded input by less than one stride:
  // floor((2 - 3) / 2) + 1 = 0, no output row.
  expectReject(Op::Conv2d, {f32({N, 1, 2, 2}), f32({1, 1, 3, 3})}, {{"stride", Ints{2, 2}}},
               {"does not fit"});
  expectReject(Op::MaxPool2d, {f32({N, 1, 2, 2})}, {{"kernel", Ints{3, 3}}, {"stride", Ints{2, 2}}},
               {"does not fit"});
  CHECK(windowOut(2, 3, 2, 0) < 1);
  CHECK(windowOut(28, 5, 1, 0) == 24);
  CHECK(windowOut(32, 3, 2, 1) == 16);

  expectReject(Op::Conv2d, {f32({N, 3, 8, 8}), f32({4, 2, 3, 3})}, {}, {"3 channels", "expects 2"});
  expectReject(Op::Conv2d, {f32({N, 3, 8}), f32({4, 3, 3, 3})}, {}, {"rank 4"});
  expectReject(Op::Conv2d, {f32({N, 3, 8, 8}), f32({4, 3, 3, 3})}, {{"stride", Ints{0, 1}}},
               {"positive"});
  expectReject(Op::Conv2d, {f32({N, 3, 8, 8}), f32({4, 3, 3, 3})}, {{"pad", Ints{-1, 0}}},
               {"not negative"});
  expectReject(Op::Conv2d, {f32({N, 3, 8, 8}), f32({4, 3, 3, 3})}, {{"stride", Ints{1}}},
               {"two values"});
  expectReject(Op::MaxPool2d, {f32({N, 3, 8, 8})}, {}, {"two values"});
  // A pad over half the window would make windows of padding only.
  expectReject(Op::MaxPool2d, {f32({N, 1, 4, 4})}, {{"kernel", Ints{2, 2}}, {"pad", Ints{2, 2}}},
               {"pad"});
  expectReject(Op::Conv2dGradInput, {f32({N, 8, 5, 5}), f32({8, 3, 5, 5})},
               {{"in_shape", Ints{3, 32, 32}}}, {"does not match"});
  expectReject(Op::Conv2dGradInput, {f32({N, 8, 28, 28}), f32({8, 3, 5, 5})},
               {{"in_shape", Ints{2, 32, 32}}}, {"in_shape"});
  expectReject(Op::Conv2dGradWeight, {f32({N, 3, 32, 32}), f32({N, 8, 27, 28})},
               {{"kernel", Ints{5, 5}}}, {"does not match"});
  expectReject(Op::MaxPool2dGrad, {f32({N, 3, 8, 8}), f32({N, 3, 3, 4})},
               {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}}, {"does not match"});
}

TEST_CASE("shape inference: reshape and transpose keep N leading", "[shape]") {
  expectType(Op::Reshape, {f32({N, 1, 32, 32})}, {{"shape", Ints{N, 1024}}}, f32({N, 1024}));
  expectType(Op::Reshape, {f32({N, 6})}, {{"shape", Ints{N, 2, 3}}}, f32({N, 2, 3}));
  expectType(Op::Reshape, {f32({6})}, {{"shape", Ints{2, 3}}}, f32({2, 3}));
  expectType(Op::Reshape, {f32({16})}, {{"shape", Ints{16, 1, 1}}}, f32({16, 1, 1}));
  expectType(Op::Reshape, {i32({N})}, {{"shape", Ints{N, 1}}}, i32({N, 1}));

  expectReject(Op::Reshape, {f32({N, 6})}, {{"shape", Ints{N, 5}}},
               {"cannot reshape", "f32[N,6]", "[N,5]"});
  expectReject(Op::Reshape, {f32({N, 6})}, {{"shape", Ints{6}}}, {"cannot reshape"});
  expectReject(Op::Reshape, {f32({4})}, {{"shape", Ints{N, 4}}}, {"cannot reshape"});
  expectReject(Op::Reshape, {f32({N, 6})}, {{"shape", Ints{6, N}}},
               {"invalid target shape", "[6,N]"});
  expectReject(Op::Reshape, {f32({N, 6})}, {{"shape", Ints{N, -2}}}, {"invalid target shape"});

  expectType(Op::Transpose, {f32({N, 3, 4})}, {{"perm", Ints{0, 2, 1}}}, f32({N, 4, 3}));
  expectType(Op::Transpose, {f32({3, 4})}, {{"perm", Ints{1, 0}}}, f32({4, 3}));
  expectType(Op::Transpose, {f32({N, 2, 3, 4})}, {{"perm", Ints{0, 3, 1, 2}}}, f32({N, 4, 2, 3}));
  expectType(Op::Transpose, {i32({2, 5})}, {{"perm", Ints{1, 0}}}, i32({5, 2}));

  expectReject(Op::Transpose, {f32({N, 3})}, {{"perm", Ints{1, 0}}}, {"N must stay leading"});
  expectReject(Op::Transpose, {f32({3, 4})}, {{"perm", Ints{0, 0}}}, {"every axis once"});
  expectReject(Op::Transpose, {f32({3, 4})}, {{"perm", Ints{0}}}, {"every axis once"});
  expectReject(Op::Transpose, {f32({3, 4})}, {{"perm", Ints{0, 2}}}, {"every axis once"});

  expectReject(Op::AvgPool2d, {f32({N, 1, 4, 4})}, {{"kernel", Ints{2, 2}}, {"pad", Ints{2, 0}}},
               {"more than half the window"});
  expectReject(Op::AvgPool2dGrad, {f32({N, 1, 2, 2})},
               {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"in_shape", Ints{2, 4, 4}}},
               {"in_shape must be [C,H,W]"});
  expectReject(Op::AvgPool2dGrad, {f32({N, 1, 3, 2})},
               {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}, {"in_shape", Ints{1, 4, 4}}},
               {"does not match output"});
  expectType(Op::Concat, {f32({N, 2})}, {{"axis", int64_t(1)}}, f32({N, 2}));
  expectType(Op::Concat, {f32({2, 3}), f32({1, 3}), f32({4, 3})}, {{"axis", int64_t(0)}},
             f32({7, 3}));
  expectType(Op::Concat, {f32({N, 2, 3}), f32({N, 2, 1})}, {{"axis", int64_t(2)}}, f32({N, 2, 4}));
  expectReject(Op::Concat, {}, {{"axis", int64_t(0)}}, {"at least one operand"});
  expectReject(Op::Concat, {f32({N, 2}), f32({N, 2})}, {{"axis", int64_t(0)}},
               {"axis 0 is not a static dimension"});
  expectReject(Op::Concat, {f32({N, 2})}, {{"axis", int64_t(2)}}, {"axis 2 is not"});
  expectReject(Op::Concat, {f32({N, 2})}, {}, {"axis -1 is not"});
  expectReject(Op::Concat, {f32({N, 2, 3}), f32({N, 3, 3})}, {{"axis", int64_t(2)}},
               {"operand 1 f32[N,3,3] does not match f32[N,2,3] but along axis 2"});
  expectReject(Op::Concat, {f32({N, 2}), f32({N, 2, 1})}, {{"axis", int64_t(1)}},
               {"does not match"});
  expectReject(Op::Concat, {f32({N, 2}), i32({N, 2})}, {{"axis", int64_t(1)}}, {"must be f32"});
  expectType(Op::Slice, {f32({N, 6})},
             {{"axis", int64_t(1)}, {"start", int64_t(0)}, {"size", int64_t(6)}}, f32({N, 6}));
  expectReject(Op::Slice, {f32({N, 6})},
               {{"axis", int64_t(1)}, {"start", int64_t(2)}, {"size", int64_t(5)}},
               {"range [2, 7) is outside axis 1"});
  expectReject(Op::Slice, {f32({N, 6})},
               {{"axis", int64_t(0)}, {"start", int64_t(0)}, {"size", int64_t(1)}},
               {"not a static dimension"});
  expectReject(Op::Slice, {f32({N, 6})},
               {{"axis", int64_t(1)}, {"start", int64_t(-1)}, {"size", int64_t(2)}},
               {"outside axis 1"});
  expectReject(Op::Slice, {f32({N, 6})},
               {{"axis", int64_t(1)}, {"start", int64_t(1)}, {"size", int64_t(0)}},
               {"outside axis 1"});

  expectType(Op::Broadcast, {f32({N, 1})}, {{"shape", Ints{N, 5}}}, f32({N, 5}));
  expectType(Op::Broadcast, {f32({})}, {{"shape", Ints{2, 3}}}, f32({2, 3}));
  expectReject(Op::Broadcast, {f32({N, 5})}, {{"shape", Ints{1, 5}}}, {"does not broadcast to"});
  expectReject(Op::Broadcast, {f32({4})}, {{"shape", Ints{N, 5}}}, {"broadcast"});
}

TEST_CASE("shape inference: sources, losses and the other ops", "[shape]") {
  // param
  expectType(Op::Param, {f32({100})}, {{"offset", int64_t(0)}, {"shape", Ints{100}}}, f32({100}));
  expectReject(Op::Param, {f32({100})}, {{"offset", int64_t(90)}, {"shape", Ints{3, 4}}},
               {"[90, 102)", "f32[100]"});
  expectReject(Op::Param, {f32({100})}, {{"shape", Ints{3}}}, {"outside"}); // no offset
  expectReject(Op::Param, {f32({100})}, {{"offset", int64_t(0)}, {"shape", Ints{N, 3}}},
               {"static shape"});
  expectReject(Op::Param, {f32({10, 10})}, {{"offset", int64_t(0)}, {"shape", Ints{3}}},
               {"rank 1"});
  // random_mask
  expectReject(Op::RandomMask, {i32({})}, {{"p", 1.0}, {"shape", Ints{3}}}, {"0 <= p < 1"});
  expectReject(Op::RandomMask, {i32({})}, {{"p", -0.1}, {"shape", Ints{3}}}, {"0 <= p < 1"});
  expectReject(Op::RandomMask, {f32({})}, {{"p", 0.5}, {"shape", Ints{3}}}, {"seed must be i32[]"});
  expectReject(Op::RandomMask, {i32({1})}, {{"p", 0.5}, {"shape", Ints{3}}},
               {"seed must be i32[]"});
  expectReject(Op::RandomMask, {i32({}), f32({})}, {{"p", 0.5}, {"shape", Ints{N, 3}}},
               {"sample offset must be i32[]"});
  expectReject(Op::RandomMask, {i32({}), i32({})}, {{"p", 0.5}, {"shape", Ints{3}}},
               {"needs a mask of shape [N, ...]"});
  expectReject(Op::RandomMask, {i32({}), i32({}), i32({})}, {{"p", 0.5}, {"shape", Ints{N, 3}}},
               {"optional sample offset"});
  // flat_pack
  expectType(Op::FlatPack, {f32({2}), f32({3}), f32({4, 1})},
             {{"offsets", Ints{7, 0, 3}}, {"size", int64_t(9)}}, f32({9}));
  expectReject(Op::FlatPack, {f32({3, 4}), f32({3})},
               {{"offsets", Ints{0, 10}}, {"size", int64_t(12)}},
               {"operand 1", "does not fit at offset 10"});
  expectReject(Op::FlatPack, {f32({N, 4})}, {{"offsets", Ints{0}}, {"size", int64_t(12)}},
               {"operand 0"});
  expectReject(Op::FlatPack, {f32({4}), f32({4})}, {{"offsets", Ints{0}}, {"size", int64_t(12)}},
               {"one offset per operand"});
  // cast, batch_size, argmax
  expectType(Op::Cast, {i32({N})}, {{"to", std::string("f32")}}, f32({N}));
  expectReject(Op::Cast, {f32({N})}, {{"to", std::string("f64")}}, {"'to'"});
  expectReject(Op::BatchSize, {f32({3, 4})}, {}, {"no batch dimension", "f32[3,4]"});
  expectType(Op::ArgMax, {f32({2, 3, 4})}, {}, i32({2, 3}));
  expectReject(Op::ArgMax, {f32({})}, {}, {"rank >= 1"});
  // softmax
  expectType(Op::SoftMax, {f32({N, 3, 5})}, {}, f32({N, 3, 5}));
  expectReject(Op::LogSoftMax, {f32({})}, {}, {"rank >= 1"});
  // one_hot
  expectType(Op::OneHot, {i32({4})}, {{"classes", int64_t(3)}}, f32({4, 3}));
  expectReject(Op::OneHot, {f32({N})}, {{"classes", int64_t(3)}}, {"i32 labels"});
  expectReject(Op::OneHot, {i32({N})}, {}, {"classes >= 1"});
  // nll_loss
  expectType(Op::NllLoss, {f32({5, 3}), i32({5})}, {}, f32({}));
  expectReject(Op::NllLoss, {f32({N, 10}), i32({5})}, {},
               {"labels i32[5] do not match", "f32[N,10]"});
  expectReject(Op::NllLoss, {f32({N, 10}), f32({N})}, {}, {"do not match"});
  expectReject(Op::NllLoss, {f32({N, 10}), i32({N, 1})}, {}, {"do not match"});
  expectReject(Op::NllLoss, {f32({N}), i32({N})}, {}, {"rank 2"});
}
