// ir/ShapeInference.cpp - typing rules for every op.
#include "ir/ShapeInference.h"

#include <fmt/format.h>

namespace graphc::ir {
namespace {

Diag fail(Op op, std::string msg) { return error(fmt::format("{}: {}", opName(op), msg)); }

bool validShape(const Shape &s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] < 0 && !(i == 0 && s[i] == kBatch))
      return false;
  return withinMaxElements(s);
}

/// Normalises negative axes and checks range; returns false when out of range.
bool normaliseAxes(std::vector<int64_t> &axes, int rank) {
  for (int64_t &a : axes) {
    if (a < 0)
      a += rank;
    if (a < 0 || a >= rank)
      return false;
  }
  return true;
}

Expected<Type> inferReduce(Op op, const Type &in, const Attrs &attrs) {
  std::vector<int64_t> axes = attrs.ints("axes");
  if (!normaliseAxes(axes, in.rank()))
    return fail(op, fmt::format("axes out of range for {}", str(in)));
  bool keep = attrs.b("keepdims");
  Shape out;
  for (int i = 0; i < in.rank(); ++i) {
    bool reduced = axes.empty();
    for (int64_t a : axes)
      reduced |= a == i;
    if (!reduced)
      out.push_back(in.shape[size_t(i)]);
    else if (keep)
      out.push_back(1);
  }
  if (!validShape(out))
    return fail(op, "the batch dimension N can only stay leading");
  return Type{DType::F32, out};
}

Expected<Type> inferWindow(Op op, const Type &x, int64_t channels_out, std::vector<int64_t> kernel,
                           const Attrs &attrs) {
  auto stride = attrs.ints("stride", {1, 1});
  auto pad = attrs.ints("pad", {0, 0});
  if (stride.size() != 2 || pad.size() != 2 || kernel.size() != 2)
    return fail(op, "stride, pad and kernel take two values each");
  if (stride[0] < 1 || stride[1] < 1 || pad[0] < 0 || pad[1] < 0 || kernel[0] < 1 || kernel[1] < 1)
    return fail(op, "window sizes and strides must be positive, pads not negative");
  // Pooling's pad_end: Torch7's ceil mode, extra windows at the bottom and
  // right that reach past the input.
  const bool pool = op == Op::MaxPool2d || op == Op::MaxPool2dGrad || op == Op::AvgPool2d ||
                    op == Op::AvgPool2dGrad;
  if (!pool && attrs.has("pad_end"))
    return fail(op, "pad_end is for pooling only");
  auto padEnd = attrs.ints("pad_end", {0, 0});
  if (padEnd.size() != 2 || padEnd[0] < 0 || padEnd[1] < 0)
    return fail(op, "pad_end takes two values, not negative");
  int64_t h = windowOut(x.shape[2], kernel[0], stride[0], pad[0], padEnd[0]);
  int64_t w = windowOut(x.shape[3], kernel[1], stride[1], pad[1], padEnd[1]);
  if (h < 1 || w < 1)
    return fail(op,
                fmt::format("window {}x{} does not fit input {}", kernel[0], kernel[1], str(x)));
  // As in Torch7, the last window starts inside the input: none is all padding.
  if (pool &&
      ((h - 1) * stride[0] - pad[0] >= x.shape[2] || (w - 1) * stride[1] - pad[1] >= x.shape[3]))
    return fail(op, fmt::format("pad_end [{},{}] makes a window that starts past the input {}",
                                padEnd[0], padEnd[1], str(x)));
  return Type{DType::F32, {x.shape[0], channels_out, h, w}};
}

/// Pooling pads at most half the window, so that no window is all padding.
std::optional<Diag> poolPad(Op op, const Attrs &attrs) {
  auto k = attrs.ints("kernel"), pad = attrs.ints("pad", {0, 0});
  for (size_t i = 0; i < 2 && i < k.size() && i < pad.size(); ++i)
    if (2 * pad[i] > k[i])
      return fail(op, fmt::format("pad {} is more than half the window {}", pad[i], k[i]));
  return std::nullopt;
}

} // namespace

int64_t windowOut(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t padEnd) {
  // floor((in + 2 pad + padEnd - kernel) / stride) + 1; C++ division
  // truncates toward zero, which would give one output for a window that
  // does not fit.
  if (in + 2 * pad + padEnd < kernel)
    return 0;
  return (in + 2 * pad + padEnd - kernel) / stride + 1;
}

Expected<Shape> broadcastShapes(const Shape &a, const Shape &b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1)
      out[i] = da;
    else if (da == 1)
      out[i] = db;
    else
      return error(fmt::format("shapes {} and {} do not broadcast", str(a), str(b)));
  }
  if (!validShape(out))
    return error(fmt::format("shapes {} and {} broadcast with N not leading", str(a), str(b)));
  return out;
}

Expected<Type> inferType(Op op, const std::vector<Type> &in, const Attrs &attrs) {
  int arity = opArity(op);
  if (arity >= 0 && int(in.size()) != arity)
    return fail(op, fmt::format("takes {} operands, got {}", arity, in.size()));
  for (const Type &t : in)
    if (!validShape(t.shape))
      return fail(op, fmt::format("invalid operand shape {}", str(t)));

  auto needF32 = [&](size_t i) -> std::optional<Diag> {
    if (in[i].dtype != DType::F32)
      return fail(op, fmt::format("operand {} must be f32, got {}", i, str(in[i])));
    return std::nullopt;
  };
  auto needRank = [&](size_t i, int rank) -> std::optional<Diag> {
    if (in[i].rank() != rank)
      return fail(op, fmt::format("operand {} must have rank {}, got {}", i, rank, str(in[i])));
    return std::nullopt;
  };
#define TRY(x)                                                                                     \
  if (auto d_ = (x))                                                                               \
  return *d_

  // Float math: the operand's type, or the operands' broadcast shape.
  if (isUnaryMath(op)) {
    TRY(needF32(0));
    return in[0];
  }
  if (isBinaryMath(op)) {
    TRY(needF32(0));
    TRY(needF32(1));
    auto b = broadcastShapes(in[0].shape, in[1].shape);
    if (!b)
      return fail(op, b.diag().message);
    return Type{DType::F32, *b};
  }
  switch (op) {
  case Op::Input:
  case Op::Constant: return fail(op, "sources are typed explicitly");

  case Op::Param: {
    TRY(needF32(0));
    TRY(needRank(0, 1));
    Shape shape = attrs.ints("shape");
    int64_t offset = attrs.i("offset", -1);
    Type t{DType::F32, shape};
    if (!withinMaxElements(shape))
      return fail(op, fmt::format("shape {} has more than 2^40 elements", str(shape)));
    if (!validShape(shape) || (!shape.empty() && shape[0] == kBatch))
      return fail(op, "a parameter has a static shape");
    if (offset < 0 || offset + t.numel() > in[0].shape[0])
      return fail(op, fmt::format("view [{}, {}) outside the flat buffer {}", offset,
                                  offset + t.numel(), str(in[0])));
    return t;
  }
  case Op::RandomMask: {
    Shape shape = attrs.ints("shape");
    double p = attrs.f("p", -1);
    if (!validShape(shape) || !(p >= 0 && p < 1))
      return fail(op, "needs a shape and 0 <= p < 1");
    if (in.empty() || in.size() > 2)
      return fail(op, fmt::format("takes a seed and an optional sample offset, got {} operands",
                                  in.size()));
    if (in[0].dtype != DType::I32 || in[0].rank() != 0)
      return fail(op, "the seed must be i32[]");
    if (in.size() == 2 && (in[1].dtype != DType::I32 || in[1].rank() != 0))
      return fail(op, "the sample offset must be i32[]");
    if (in.size() == 2 && (shape.empty() || shape[0] != kBatch))
      return fail(op, "a sample offset needs a mask of shape [N, ...]");
    return Type{DType::F32, shape};
  }
  case Op::ConstTensor: {
    Shape shape = attrs.ints("shape");
    if (!validShape(shape) || (!shape.empty() && shape[0] == kBatch))
      return fail(op, "needs a static shape");
    Type t{DType::F32, shape};
    if (int64_t(attrs.floats("values").size()) != t.numel())
      return fail(
          op, fmt::format("has {} values for shape {}", attrs.floats("values").size(), str(shape)));
    return t;
  }
  case Op::Reshape: {
    Shape shape = attrs.ints("shape");
    Type out{in[0].dtype, shape};
    if (!validShape(shape))
      return fail(op, fmt::format("invalid target shape {}", str(shape)));
    if (out.batched() != in[0].batched() || out.rowNumel() != in[0].rowNumel())
      return fail(op, fmt::format("cannot reshape {} to {}", str(in[0]), str(shape)));
    return out;
  }
  case Op::Transpose: {
    auto perm = attrs.ints("perm");
    if (int(perm.size()) != in[0].rank())
      return fail(op, "perm must list every axis once");
    Shape out(perm.size());
    std::vector<bool> seen(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) {
      if (perm[i] < 0 || perm[i] >= in[0].rank() || seen[size_t(perm[i])])
        return fail(op, "perm must list every axis once");
      seen[size_t(perm[i])] = true;
      out[i] = in[0].shape[size_t(perm[i])];
    }
    if (!validShape(out))
      return fail(op, "the batch dimension N must stay leading");
    return Type{in[0].dtype, out};
  }
  case Op::Broadcast: {
    Shape shape = attrs.ints("shape");
    auto b = broadcastShapes(in[0].shape, shape);
    if (!b)
      return fail(op, b.diag().message);
    if (*b != shape)
      return fail(op, fmt::format("{} does not broadcast to {}", str(in[0]), str(shape)));
    return Type{in[0].dtype, shape};
  }
  case Op::FlatPack: {
    auto offsets = attrs.ints("offsets");
    int64_t size = attrs.i("size", -1);
    if (offsets.size() != in.size() || size < 0)
      return fail(op, "needs one offset per operand and a size");
    for (size_t i = 0; i < in.size(); ++i) {
      TRY(needF32(i));
      if (in[i].batched() || offsets[i] < 0 || offsets[i] + in[i].numel() > size)
        return fail(
            op, fmt::format("operand {} {} does not fit at offset {}", i, str(in[i]), offsets[i]));
    }
    return Type{DType::F32, {size}};
  }
  case Op::Concat: {
    if (in.empty())
      return fail(op, "needs at least one operand");
    int64_t axis = attrs.i("axis", -1);
    int rank = in[0].rank();
    if (axis < 0 || axis >= rank || (axis == 0 && in[0].batched()))
      return fail(op, fmt::format("axis {} is not a static dimension of {}", axis, str(in[0])));
    Shape out = in[0].shape;
    out[size_t(axis)] = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      TRY(needF32(i));
      bool ok = in[i].rank() == rank;
      for (int d = 0; ok && d < rank; ++d)
        ok = d == axis || in[i].shape[size_t(d)] == in[0].shape[size_t(d)];
      if (!ok)
        return fail(op, fmt::format("operand {} {} does not match {} but along axis {}", i,
                                    str(in[i]), str(in[0]), axis));
      out[size_t(axis)] += in[i].shape[size_t(axis)];
    }
    if (!validShape(out))
      return fail(op, fmt::format("result {} is too large", str(out)));
    return Type{DType::F32, out};
  }
  case Op::Slice: {
    TRY(needF32(0));
    int64_t axis = attrs.i("axis", -1), start = attrs.i("start", -1), size = attrs.i("size", -1);
    if (axis < 0 || axis >= in[0].rank() || (axis == 0 && in[0].batched()))
      return fail(op, fmt::format("axis {} is not a static dimension of {}", axis, str(in[0])));
    int64_t dim = in[0].shape[size_t(axis)];
    if (start < 0 || size < 1 || start > dim || size > dim - start)
      return fail(op, fmt::format("range [{}, {}) is outside axis {} of {}", start, start + size,
                                  axis, str(in[0])));
    Shape out = in[0].shape;
    out[size_t(axis)] = size;
    return Type{DType::F32, out};
  }
  case Op::Select: {
    for (size_t i = 0; i < 3; ++i)
      TRY(needF32(i));
    auto b = broadcastShapes(in[0].shape, in[1].shape);
    if (b)
      b = broadcastShapes(*b, in[2].shape);
    if (!b)
      return fail(op, b.diag().message);
    return Type{DType::F32, *b};
  }
  case Op::Cast: {
    std::string to = attrs.s("to");
    if (to != "f32" && to != "i32")
      return fail(op, "attribute 'to' must be \"f32\" or \"i32\"");
    return Type{to == "f32" ? DType::F32 : DType::I32, in[0].shape};
  }
  case Op::BatchSize:
    if (!in[0].batched())
      return fail(op, fmt::format("operand {} has no batch dimension", str(in[0])));
    return Type{DType::F32, {}};
  case Op::ReduceSum:
  case Op::ReduceMax:
  case Op::ReduceMean: TRY(needF32(0)); return inferReduce(op, in[0], attrs);
  case Op::ArgMax: {
    TRY(needF32(0));
    if (in[0].rank() < 1)
      return fail(op, "needs rank >= 1");
    Shape out(in[0].shape.begin(), in[0].shape.end() - 1);
    return Type{DType::I32, out};
  }
  case Op::MatMul: {
    TRY(needF32(0));
    TRY(needF32(1));
    TRY(needRank(0, 2));
    TRY(needRank(1, 2));
    bool ta = attrs.b("transA"), tb = attrs.b("transB");
    int64_t m = in[0].shape[ta ? 1 : 0], ka = in[0].shape[ta ? 0 : 1];
    int64_t kb = in[1].shape[tb ? 1 : 0], n = in[1].shape[tb ? 0 : 1];
    if (ka != kb)
      return fail(op, fmt::format("inner dimensions differ: {}{} x {}{}", str(in[0]),
                                  ta ? "^T" : "", str(in[1]), tb ? "^T" : ""));
    Shape out{m, n};
    if (!validShape(out))
      return fail(op, "the batch dimension N can only be the leading result dim");
    return Type{DType::F32, out};
  }
  case Op::SoftMax:
  case Op::LogSoftMax:
    TRY(needF32(0));
    if (in[0].rank() < 1)
      return fail(op, "needs rank >= 1");
    return in[0];
  case Op::OneHot: {
    int64_t classes = attrs.i("classes", 0);
    if (in[0].dtype != DType::I32 || classes < 1)
      return fail(op, "needs i32 labels and classes >= 1");
    Shape out = in[0].shape;
    out.push_back(classes);
    return Type{DType::F32, out};
  }
  case Op::NllLoss:
    TRY(needF32(0));
    TRY(needRank(0, 2));
    if (in[1].dtype != DType::I32 || in[1].rank() != 1 || in[1].shape[0] != in[0].shape[0])
      return fail(
          op, fmt::format("labels {} do not match log-probabilities {}", str(in[1]), str(in[0])));
    return Type{DType::F32, {}};
  case Op::Conv2d: {
    TRY(needF32(0));
    TRY(needF32(1));
    TRY(needRank(0, 4));
    TRY(needRank(1, 4));
    if (in[0].shape[1] != in[1].shape[1])
      return fail(op, fmt::format("input {} has {} channels, weight {} expects {}", str(in[0]),
                                  in[0].shape[1], str(in[1]), in[1].shape[1]));
    return inferWindow(op, in[0], in[1].shape[0], {in[1].shape[2], in[1].shape[3]}, attrs);
  }
  case Op::Conv2dGradInput: {
    TRY(needRank(0, 4));
    TRY(needRank(1, 4));
    Shape chw = attrs.ints("in_shape");
    if (chw.size() != 3 || chw[0] != in[1].shape[1])
      return fail(op, "in_shape must be [C,H,W] with the weight's C");
    Type x{DType::F32, {in[0].shape[0], chw[0], chw[1], chw[2]}};
    auto check = inferWindow(op, x, in[1].shape[0], {in[1].shape[2], in[1].shape[3]}, attrs);
    if (!check)
      return check;
    if (check->shape != in[0].shape)
      return fail(op, fmt::format("gradient {} does not match output {}", str(in[0]), str(*check)));
    return x;
  }
  case Op::Conv2dGradWeight: {
    TRY(needRank(0, 4));
    TRY(needRank(1, 4));
    auto k = attrs.ints("kernel");
    if (k.size() != 2)
      return fail(op, "kernel must be [kh,kw]");
    auto check = inferWindow(op, in[0], in[1].shape[1], k, attrs);
    if (!check)
      return check;
    if (check->shape != in[1].shape)
      return fail(op, fmt::format("gradient {} does not match output {}", str(in[1]), str(*check)));
    return Type{DType::F32, {in[1].shape[1], in[0].shape[1], k[0], k[1]}};
  }
  case Op::MaxPool2d:
    TRY(needF32(0));
    TRY(needRank(0, 4));
    TRY(poolPad(op, attrs));
    return inferWindow(op, in[0], in[0].shape[1], attrs.ints("kernel"), attrs);
  case Op::MaxPool2dGrad: {
    TRY(needRank(0, 4));
    TRY(poolPad(op, attrs));
    auto check = inferWindow(op, in[0], in[0].shape[1], attrs.ints("kernel"), attrs);
    if (!check)
      return check;
    if (check->shape != in[1].shape)
      return fail(op, fmt::format("gradient {} does not match output {}", str(in[1]), str(*check)));
    return in[0];
  }
  case Op::AvgPool2d:
    TRY(needF32(0));
    TRY(needRank(0, 4));
    TRY(poolPad(op, attrs));
    return inferWindow(op, in[0], in[0].shape[1], attrs.ints("kernel"), attrs);
  case Op::AvgPool2dGrad: {
    TRY(needF32(0));
    TRY(needRank(0, 4));
    TRY(poolPad(op, attrs));
    Shape chw = attrs.ints("in_shape");
    if (chw.size() != 3 || chw[0] != in[0].shape[1] || chw[1] < 1 || chw[2] < 1)
      return fail(op, "in_shape must be [C,H,W] with the gradient's C");
    Type x{DType::F32, {in[0].shape[0], chw[0], chw[1], chw[2]}};
    auto check = inferWindow(op, x, chw[0], attrs.ints("kernel"), attrs);
    if (!check)
      return check;
    if (check->shape != in[0].shape)
      return fail(op, fmt::format("gradient {} does not match output {}", str(in[0]), str(*check)));
    return x;
  }
  default: // float math is typed above, by class
    break;
  }
#undef TRY
  return fail(op, "no typing rule");
}

} // namespace graphc::ir
