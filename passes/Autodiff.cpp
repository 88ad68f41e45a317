// passes/Autodiff.cpp - the VJP table and the reverse walk.
#include "passes/Autodiff.h"

#include <fmt/format.h>

#include <numeric>

namespace graphc::passes {
namespace {

using namespace ir;

/// Builds gradient expressions; small helpers keep the rules one-liners.
struct Builder {
  Graph &g;

  ValueId add(ValueId a, ValueId b) { return g.add(Op::Add, {a, b}); }
  ValueId sub(ValueId a, ValueId b) { return g.add(Op::Sub, {a, b}); }
  ValueId mul(ValueId a, ValueId b) { return g.add(Op::Mul, {a, b}); }
  ValueId div(ValueId a, ValueId b) { return g.add(Op::Div, {a, b}); }
  ValueId neg(ValueId a) { return g.add(Op::Neg, {a}); }
  ValueId c(double v) { return g.constant(v); }
  ValueId gt(ValueId a, ValueId b) { return g.add(Op::Greater, {a, b}); }
  ValueId select(ValueId m, ValueId a, ValueId b) { return g.add(Op::Select, {m, a, b}); }
  ValueId sumLast(ValueId a) {
    return g.add(Op::ReduceSum, {a}, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", true}});
  }
  ValueId matmul(ValueId a, ValueId b, bool ta, bool tb) {
    Attrs at;
    if (ta)
      at.set("transA", true);
    if (tb)
      at.set("transB", true);
    return g.add(Op::MatMul, {a, b}, at);
  }

  /// Sums `grad` over the axes along which `shape` was broadcast.
  ValueId unbroadcast(ValueId grad, const Shape shape) {
    const Shape gs = g.type(grad).shape;
    if (gs == shape)
      return grad;
    size_t lead = gs.size() - shape.size();
    std::vector<int64_t> axes;
    for (size_t i = 0; i < gs.size(); ++i)
      if (i < lead || (shape[i - lead] == 1 && gs[i] != 1))
        axes.push_back(int64_t(i));
    ValueId s = g.add(Op::ReduceSum, {grad}, {{"axes", axes}});
    if (g.type(s).shape == shape)
      return s;
    return g.add(Op::Reshape, {s}, {{"shape", shape}});
  }

  /// `grad` of a reduction's result, broadcast back to the operand's shape.
  ValueId unreduce(ValueId grad, const Node &red, const Shape in) {
    Shape kept = in;
    auto axes = red.attrs.ints("axes");
    for (size_t i = 0; i < kept.size(); ++i) {
      bool reduced = axes.empty();
      for (int64_t a : axes)
        reduced |= (a < 0 ? a + int64_t(in.size()) : a) == int64_t(i);
      if (reduced)
        kept[i] = 1;
    }
    ValueId r = g.type(grad).shape == kept ? grad : g.add(Op::Reshape, {grad}, {{"shape", kept}});
    return g.add(Op::Broadcast, {r}, {{"shape", in}});
  }
};

/// The gradient of each operand of node `v` given the gradient `gy` of its
/// result; -1 where an operand gets none.
std::vector<ValueId> vjp(Builder &b, ValueId v, ValueId gy) {
  Graph &g = b.g;
  const Node n = g.node(v); // copy: the graph grows below
  auto in = [&](size_t i) { return n.inputs[i]; };
  switch (n.op) {
  case Op::Param: // the view's gradient, in place in a zero flat buffer
    return {g.add(Op::FlatPack, {gy},
                  {{"offsets", std::vector<int64_t>{n.attrs.i("offset")}},
                   {"size", g.type(in(0)).shape[0]}})};
  case Op::Reshape: return {g.add(Op::Reshape, {gy}, {{"shape", g.type(in(0)).shape}})};
  case Op::Transpose: {
    auto perm = n.attrs.ints("perm");
    std::vector<int64_t> inv(perm.size());
    for (size_t i = 0; i < perm.size(); ++i)
      inv[size_t(perm[i])] = int64_t(i);
    return {g.add(Op::Transpose, {gy}, {{"perm", inv}})};
  }
  case Op::Concat: { // each operand's range of the gradient
    int64_t axis = n.attrs.i("axis"), start = 0;
    std::vector<ValueId> out;
    for (ValueId x : n.inputs) {
      int64_t size = g.type(x).shape[size_t(axis)];
      out.push_back(g.add(Op::Slice, {gy}, {{"axis", axis}, {"start", start}, {"size", size}}));
      start += size;
    }
    return out;
  }
  case Op::Slice: { // the range's gradient between zeros
    const Shape in = g.type(n.inputs[0]).shape;
    int64_t axis = n.attrs.i("axis"), start = n.attrs.i("start"), size = n.attrs.i("size");
    auto zeros = [&](int64_t count) {
      Shape s = in;
      s[size_t(axis)] = count;
      return g.add(Op::Broadcast, {b.c(0)}, {{"shape", s}});
    };
    std::vector<ValueId> parts;
    if (start > 0)
      parts.push_back(zeros(start));
    parts.push_back(gy);
    if (int64_t rest = in[size_t(axis)] - start - size; rest > 0)
      parts.push_back(zeros(rest));
    if (parts.size() == 1)
      return {gy};
    return {g.add(Op::Concat, parts, {{"axis", axis}})};
  }
  case Op::Broadcast: return {gy};
  case Op::Add: return {gy, gy};
  case Op::Sub: return {gy, b.neg(gy)};
  case Op::Mul: return {b.mul(gy, in(1)), b.mul(gy, in(0))};
  case Op::Div: return {b.div(gy, in(1)), b.neg(b.div(b.mul(gy, v), in(1)))};
  case Op::Max:
  case Op::Min: {
    ValueId first = n.op == Op::Max ? b.gt(in(0), in(1)) : b.gt(in(1), in(0));
    ValueId zero = b.c(0);
    return {b.select(first, gy, zero), b.select(first, zero, gy)};
  }
  case Op::Select: {
    ValueId zero = b.c(0);
    return {-1, b.select(in(0), gy, zero), b.select(in(0), zero, gy)};
  }
  case Op::Pow: { // b a^(b-1), and a^b log a (none for a constant exponent)
    ValueId da = b.mul(gy, b.mul(in(1), g.add(Op::Pow, {in(0), b.sub(in(1), b.c(1))})));
    if (g.node(in(1)).op == Op::Constant)
      return {da, -1};
    return {da, b.mul(gy, b.mul(v, g.add(Op::Log, {in(0)})))};
  }
  case Op::Neg: return {b.neg(gy)};
  case Op::Exp: return {b.mul(gy, v)};
  case Op::Log: return {b.div(gy, in(0))};
  case Op::Sqrt: return {b.div(b.mul(gy, b.c(0.5)), v)};
  case Op::Square: return {b.mul(gy, b.mul(in(0), b.c(2)))};
  case Op::Relu: // the mask of the result: the input itself can be freed
    return {b.select(b.gt(v, b.c(0)), gy, b.c(0))};
  case Op::Tanh: return {b.mul(gy, b.sub(b.c(1), g.add(Op::Square, {v})))};
  case Op::Sigmoid: return {b.mul(gy, b.mul(v, b.sub(b.c(1), v)))};
  case Op::ReduceSum: return {b.unreduce(gy, n, g.type(in(0)).shape)};
  case Op::ReduceMean: {
    const Type t = g.type(in(0));
    ValueId count = b.c(double(t.rowNumel()) / double(g.type(v).rowNumel()));
    // With N reduced away the count depends on the run-time batch size.
    if (t.batched() && !g.type(v).batched())
      count = b.mul(count, g.add(Op::BatchSize, {in(0)}));
    return {b.unreduce(b.div(gy, count), n, t.shape)};
  }
  case Op::ReduceMax: {
    const Shape s = g.type(in(0)).shape;
    ValueId gb = b.unreduce(gy, n, s);
    ValueId mb = b.unreduce(v, n, s);
    ValueId notMax = b.gt(mb, in(0));
    return {b.select(notMax, b.c(0), gb)};
  }
  case Op::MatMul: {
    bool ta = n.attrs.b("transA"), tb = n.attrs.b("transB");
    ValueId a = in(0), w = in(1);
    if (!ta && !tb)
      return {b.matmul(gy, w, false, true), b.matmul(a, gy, true, false)};
    if (!ta && tb)
      return {b.matmul(gy, w, false, false), b.matmul(gy, a, true, false)};
    if (ta && !tb)
      return {b.matmul(w, gy, false, true), b.matmul(a, gy, false, false)};
    return {b.matmul(w, gy, true, true), b.matmul(gy, a, true, true)};
  }
  case Op::SoftMax: return {b.mul(v, b.sub(gy, b.sumLast(b.mul(gy, v))))};
  case Op::LogSoftMax: return {b.sub(gy, b.mul(g.add(Op::Exp, {v}), b.sumLast(gy)))};
  case Op::NllLoss: {
    // d/dlogp of -mean(logp[i, label_i]) = -onehot * gy / N
    int64_t classes = g.type(in(0)).shape[1];
    ValueId onehot = g.add(Op::OneHot, {in(1)}, {{"classes", classes}});
    ValueId scale = b.div(b.neg(gy), g.add(Op::BatchSize, {in(0)}));
    return {b.mul(onehot, scale), -1};
  }
  case Op::Conv2d: {
    const Shape xs = g.type(in(0)).shape, ws = g.type(in(1)).shape;
    Attrs common{{"stride", n.attrs.ints("stride", {1, 1})}, {"pad", n.attrs.ints("pad", {0, 0})}};
    Attrs ai = common, aw = common;
    ai.set("in_shape", Shape{xs[1], xs[2], xs[3]});
    aw.set("kernel", Shape{ws[2], ws[3]});
    return {g.add(Op::Conv2dGradInput, {gy, in(1)}, ai),
            g.add(Op::Conv2dGradWeight, {in(0), gy}, aw)};
  }
  case Op::MaxPool2d: return {g.add(Op::MaxPool2dGrad, {in(0), gy}, n.attrs)};
  case Op::AvgPool2d: {
    const Shape xs = g.type(in(0)).shape;
    Attrs at = n.attrs;
    at.set("in_shape", Shape{xs[1], xs[2], xs[3]});
    return {g.add(Op::AvgPool2dGrad, {gy}, at)};
  }
  default: break;
  }
  GRAPHC_CHECK(!opDifferentiable(n.op), "no VJP rule for {}", opName(n.op));
  return std::vector<ValueId>(n.inputs.size(), -1);
}

} // namespace

std::vector<ValueId> gradients(Graph &g, ValueId loss, const std::vector<ValueId> &wrt) {
  GRAPHC_CHECK(g.type(loss).shape.empty(), "the loss must be a scalar, is {}", str(g.type(loss)));
  int count = g.size();
  // 1. Which values lie on a path from a requested input to the loss.
  std::vector<bool> fromWrt(size_t(count), false), toLoss(size_t(count), false);
  for (ValueId w : wrt)
    fromWrt[size_t(w)] = true;
  for (ValueId v = 0; v < count; ++v)
    for (ValueId i : g.node(v).inputs)
      if (fromWrt[size_t(i)] && opDifferentiable(g.node(v).op))
        fromWrt[size_t(v)] = true;
  toLoss[size_t(loss)] = true;
  for (ValueId v = count - 1; v >= 0; --v)
    if (toLoss[size_t(v)])
      for (ValueId i : g.node(v).inputs)
        toLoss[size_t(i)] = true;

  // 2. Reverse walk: each node's gradient is complete when it is visited.
  Builder b{g};
  std::vector<ValueId> grad(size_t(count), -1);
  std::vector<bool> target(size_t(count), false);
  for (ValueId w : wrt)
    target[size_t(w)] = true;
  grad[size_t(loss)] = g.constant(1.0);
  for (ValueId v = loss; v >= 0; --v) {
    if (grad[size_t(v)] < 0 || !fromWrt[size_t(v)] || target[size_t(v)])
      continue;
    const Node &n = g.node(v);
    if (n.inputs.empty())
      continue;
    std::vector<ValueId> ins = n.inputs;
    auto gin = vjp(b, v, grad[size_t(v)]);
    GRAPHC_CHECK(gin.size() == ins.size(), "VJP of {} returned {} gradients", opName(g.node(v).op),
                 gin.size());
    for (size_t i = 0; i < ins.size(); ++i) {
      ValueId x = ins[i];
      if (gin[i] < 0 || !fromWrt[size_t(x)] || !toLoss[size_t(x)])
        continue;
      // 3. Generic un-broadcasting and accumulation.
      ValueId gx = b.unbroadcast(gin[i], g.type(x).shape);
      grad[size_t(x)] = grad[size_t(x)] < 0 ? gx : b.add(grad[size_t(x)], gx);
    }
  }
  std::vector<ValueId> out;
  for (ValueId w : wrt)
    out.push_back(grad[size_t(w)]);
  return out;
}

Graph autodiff(const Graph &forward) {
  Graph g = forward;
  ValueId loss = g.output("loss");
  GRAPHC_CHECK(loss >= 0, "autodiff needs a `loss` output");
  ValueId flat = g.findInput("params");
  GRAPHC_CHECK(flat >= 0, "autodiff needs the `params` input");
  std::vector<ValueId> views;
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op == Op::Param)
      views.push_back(v);
  auto grads = gradients(g, loss, views);
  std::vector<ValueId> parts;
  std::vector<int64_t> offsets;
  for (size_t i = 0; i < views.size(); ++i) {
    // A parameter the loss does not reach keeps a zero gradient.
    ValueId gi = grads[i] >= 0
                     ? grads[i]
                     : g.add(Op::Broadcast, {g.constant(0.0)}, {{"shape", g.type(views[i]).shape}});
    parts.push_back(gi);
    offsets.push_back(g.node(views[i]).attrs.i("offset"));
  }
  ValueId packed =
      g.add(Op::FlatPack, parts, {{"offsets", offsets}, {"size", g.type(flat).shape[0]}});
  g.addOutput("grad", packed);
  return g;
}

} // namespace graphc::passes
