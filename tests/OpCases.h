// tests/OpCases.h - every differentiable op as a small graph: the op on
// its operands, then the gradient of sum(op * w) for each of them, so that
// the backward ops (masks, pooling and convolution gradients, slices) run
// too. Every backend checks every case against the reference interpreter:
// the CPU's in cpu_backend_test.cpp, the GPU's in cuda_runtime_test.cpp.
#pragma once

#include "TestUtil.h"
#include "ir/Graph.h"
#include "ir/Interpreter.h"
#include "passes/Autodiff.h"

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace graphc::test {

struct OpCase {
  const char *name;
  std::vector<ir::Type> args;
  std::function<ir::ValueId(ir::Graph &, const std::vector<ir::ValueId> &)> build;
  double lo = -1, hi = 1; ///< the operands' range
};

inline std::vector<OpCase> everyOpCase() {
  using namespace ir;
  auto f32 = [](Shape s) { return Type{DType::F32, std::move(s)}; };
  const Type x{DType::F32, {kBatch, 6}};
  auto unary = [](Op op) {
    return [op](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0]}); };
  };
  auto binary = [](Op op) {
    return [op](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0], a[1]}); };
  };
  auto attrs = [](Op op, Attrs at) {
    return [op, at](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0]}, at); };
  };
  return {
      {"add bias", {x, f32({6})}, binary(Op::Add)},
      {"sub column", {x, f32({kBatch, 1})}, binary(Op::Sub)},
      {"mul", {x, x}, binary(Op::Mul)},
      {"div", {x, x}, binary(Op::Div), 0.5, 2},
      {"max", {x, x}, binary(Op::Max)},
      {"min", {x, f32({})}, binary(Op::Min)},
      {"exp", {x}, unary(Op::Exp)},
      {"log", {x}, unary(Op::Log), 0.5, 2},
      {"sqrt", {x}, unary(Op::Sqrt), 0.5, 2},
      {"square", {x}, unary(Op::Square)},
      {"neg", {x}, unary(Op::Neg)},
      {"relu", {x}, unary(Op::Relu)},
      {"tanh", {x}, unary(Op::Tanh)},
      {"sigmoid", {x}, unary(Op::Sigmoid)},
      {"softmax", {x}, unary(Op::SoftMax)},
      {"log_softmax", {x}, unary(Op::LogSoftMax)},
      {"transpose",
       {f32({kBatch, 2, 3})},
       attrs(Op::Transpose, {{"perm", std::vector<int64_t>{0, 2, 1}}})},
      {"broadcast", {f32({3, 1})}, attrs(Op::Broadcast, {{"shape", Shape{kBatch, 3, 4}}})},
      {"reduce_sum axes 0,2",
       {f32({kBatch, 3, 2})},
       attrs(Op::ReduceSum, {{"axes", std::vector<int64_t>{0, 2}}})},
      // A bias gradient: the contiguous 63 of each plane read as 32 + 3 x 8 + 7.
      {"reduce_sum axes 0,2,3",
       {f32({kBatch, 3, 7, 9})},
       attrs(Op::ReduceSum, {{"axes", std::vector<int64_t>{0, 2, 3}}})},
      {"reduce_mean all of N x 75",
       {f32({kBatch, 75})},
       attrs(Op::ReduceMean, {{"axes", std::vector<int64_t>{}}})},
      {"reduce_sum axis 1, strided",
       {f32({kBatch, 45, 2})},
       attrs(Op::ReduceSum, {{"axes", std::vector<int64_t>{1}}})},
      {"reduce_max axes 0,2,3",
       {f32({kBatch, 3, 7, 9})},
       attrs(Op::ReduceMax, {{"axes", std::vector<int64_t>{0, 2, 3}}})},
      {"reduce_mean all", {x}, attrs(Op::ReduceMean, {{"axes", std::vector<int64_t>{}}})},
      // A mean along rows is a row reduction: the row kernel divides.
      {"reduce_mean rows", {x}, attrs(Op::ReduceMean, {{"axes", std::vector<int64_t>{1}}})},
      {"reduce_mean rows keepdims",
       {x},
       attrs(Op::ReduceMean, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", true}})},
      {"reduce_max rows", {x}, attrs(Op::ReduceMax, {{"axes", std::vector<int64_t>{1}}})},
      {"reduce_sum keepdims",
       {x},
       attrs(Op::ReduceSum, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", true}})},
      {"matmul", {x, f32({6, 5})}, binary(Op::MatMul)},
      {"matmul transB",
       {x, f32({5, 6})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::MatMul, {a[0], a[1]}, {{"transB", true}});
       }},
      {"matmul transA over N",
       {x, f32({kBatch, 4})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::MatMul, {a[0], a[1]}, {{"transA", true}});
       }},
      {"matmul + bias + relu",
       {f32({kBatch, 37}), f32({37, 45}), f32({45})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Relu, {g.add(Op::Add, {g.add(Op::MatMul, {a[0], a[1]}), a[2]})});
       }},
      // Linear's weight as stored ([out, in], transB): cuBLASLt's bias+ReLU epilogue.
      {"linear + relu",
       {f32({kBatch, 24}), f32({16, 24}), f32({16})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(
             Op::Relu,
             {g.add(Op::Add, {g.add(Op::MatMul, {a[0], a[1]}, {{"transB", true}}), a[2]})});
       }},
      {"conv2d stride 2 pad 1",
       {f32({kBatch, 2, 5, 6}), f32({3, 2, 3, 2})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(
             Op::Conv2d, {a[0], a[1]},
             {{"stride", std::vector<int64_t>{2, 1}}, {"pad", std::vector<int64_t>{1, 1}}});
       }},
      // Pads and strides that differ between H and W (a swap shows), and a
      // bias and ReLU in the convolution's epilogue.
      {"conv2d 3x2 stride 1x2 pad 2x0",
       {f32({kBatch, 3, 6, 7}), f32({2, 3, 3, 2})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(
             Op::Conv2d, {a[0], a[1]},
             {{"stride", std::vector<int64_t>{1, 2}}, {"pad", std::vector<int64_t>{2, 0}}});
       }},
      {"conv2d + bias + relu",
       {f32({kBatch, 2, 6, 5}), f32({4, 2, 3, 3}), f32({4, 1, 1})},
       [](Graph &g, const std::vector<ValueId> &a) {
         ValueId c = g.add(Op::Conv2d, {a[0], a[1]}, {{"pad", std::vector<int64_t>{1, 1}}});
         return g.add(Op::Relu, {g.add(Op::Add, {c, a[2]})});
       }},
      {"avgpool2d 3x2 stride 2 pad 1",
       {f32({kBatch, 2, 5, 4})},
       attrs(Op::AvgPool2d, {{"kernel", std::vector<int64_t>{3, 2}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad", std::vector<int64_t>{1, 1}}})},
      // Its gradient slices the incoming one back into the operands.
      {"concat along channels, an operand twice",
       {f32({kBatch, 2, 3, 2}), f32({kBatch, 1, 3, 2})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Concat, {a[0], a[1], a[0]}, {{"axis", int64_t(1)}});
       }},
      {"concat along the last axis",
       {f32({kBatch, 3, 2}), f32({kBatch, 3, 5})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Concat, {a[0], a[1]}, {{"axis", int64_t(2)}});
       }},
      {"maxpool2d 3x2 stride 2 pad 1",
       {f32({kBatch, 2, 5, 4})},
       attrs(Op::MaxPool2d, {{"kernel", std::vector<int64_t>{3, 2}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad", std::vector<int64_t>{1, 1}}})},
      // Windows that tile the input: the gradient's fast path, with the last
      // row and column of an odd size in no window.
      {"maxpool2d 2x2 stride 2 on 5x7",
       {f32({kBatch, 2, 5, 7})},
       attrs(Op::MaxPool2d,
             {{"kernel", std::vector<int64_t>{2, 2}}, {"stride", std::vector<int64_t>{2, 2}}})},
      // Torch7's ceil mode (pad_end): the gradient's fast path with the last
      // row and column in a clipped window of their own.
      {"maxpool2d 2x2 stride 2 on 5x7, ceil mode",
       {f32({kBatch, 2, 5, 7})},
       attrs(Op::MaxPool2d, {{"kernel", std::vector<int64_t>{2, 2}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad_end", std::vector<int64_t>{1, 1}}})},
      {"maxpool2d 3x3 stride 2 pad 1 on 6x8, ceil mode",
       {f32({kBatch, 2, 6, 8})},
       attrs(Op::MaxPool2d, {{"kernel", std::vector<int64_t>{3, 3}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad", std::vector<int64_t>{1, 1}},
                             {"pad_end", std::vector<int64_t>{1, 1}}})},
      // Average pooling divides its clipped last windows by fewer taps.
      {"avgpool2d 3x3 stride 2 on 6x8, ceil mode",
       {f32({kBatch, 2, 6, 8})},
       attrs(Op::AvgPool2d, {{"kernel", std::vector<int64_t>{3, 3}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad_end", std::vector<int64_t>{1, 1}}})},
      {"avgpool2d 3x4 stride 2 pad 1 on 6x7, ceil mode",
       {f32({kBatch, 2, 6, 7})},
       attrs(Op::AvgPool2d, {{"kernel", std::vector<int64_t>{3, 4}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad", std::vector<int64_t>{1, 1}},
                             {"pad_end", std::vector<int64_t>{1, 1}}})},
  };
}

/// Case c's graph: outputs "y" (the op), "loss" (sum(y * w)) and "g<i>",
/// the gradient for operand i; inputs "a<i>" and "w".
inline ir::Graph opCaseGraph(const OpCase &c) {
  using namespace ir;
  Graph g;
  std::vector<ValueId> ins;
  for (size_t i = 0; i < c.args.size(); ++i)
    ins.push_back(g.input("a" + std::to_string(i), c.args[i]));
  ValueId y = c.build(g, ins);
  ValueId w = g.input("w", g.type(y));
  ValueId loss = g.add(Op::ReduceSum, {g.add(Op::Mul, {y, w})}, {{"axes", std::vector<int64_t>{}}});
  auto grads = passes::gradients(g, loss, ins);
  g.addOutput("y", y);
  g.addOutput("loss", loss);
  for (size_t i = 0; i < grads.size(); ++i)
    if (grads[i] >= 0)
      g.addOutput("g" + std::to_string(i), grads[i]);
  return g;
}

/// Random inputs for case c's graph `g` at `batch`.
inline ir::Bindings opCaseInputs(const OpCase &c, const ir::Graph &g, int64_t batch,
                                 std::mt19937 &rng) {
  ir::Bindings b;
  for (size_t i = 0; i < c.args.size(); ++i)
    b["a" + std::to_string(i)] =
        randomTensor(ir::concrete(c.args[i].shape, batch), rng, c.lo, c.hi);
  for (const ir::Output &o : g.outputs())
    if (o.name == "y")
      b["w"] = randomTensor(ir::concrete(g.type(o.value).shape, batch), rng);
  return b;
}

} // namespace graphc::test
