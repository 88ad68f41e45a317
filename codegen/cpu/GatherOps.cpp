// codegen/cpu/GatherOps.cpp - loop nests for the non-pointwise ops.
#include "codegen/cpu/GatherOps.h"

#include "codegen/cpu/Emitter.h"

namespace graphc::codegen::cpu {
namespace {

using namespace ir;
using llvm::Value;

struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
  bool padEnd; // ceil mode's extra windows: average pooling's divisor varies
};

Window window(const Attrs &a, int64_t kh, int64_t kw) {
  auto st = a.ints("stride", {1, 1}), pad = a.ints("pad", {0, 0});
  auto end = a.ints("pad_end", {0, 0});
  return {kh, kw, st[0], st[1], pad[0], pad[1], end[0] > 0 || end[1] > 0};
}

/// Average pooling's divisor for window (oy, ox), as a float: its size
/// clipped to the input plus its padding (THNN's count_include_pad).
Value *windowSize(Emitter &e, const Window &w, const Shape &xs, Value *oy, Value *ox) {
  auto &b = e.b;
  auto span = [&](Value *o, int64_t s, int64_t p, int64_t k, int64_t size) {
    Value *start = b.CreateSub(b.CreateMul(o, e.i64(s)), e.i64(p));
    Value *end = b.CreateAdd(start, e.i64(k));
    Value *limit = e.i64(size + p);
    return b.CreateSub(b.CreateSelect(b.CreateICmpSLT(end, limit), end, limit), start);
  };
  Value *n = b.CreateMul(span(oy, w.sh, w.ph, w.kh, xs[2]), span(ox, w.sw, w.pw, w.kw, xs[3]));
  return b.CreateSIToFP(n, b.getFloatTy());
}

/// Accumulates into a float slot: init, then body(acc) may update it.
Value *accumulate(Emitter &e, double init, const std::function<void(Value *)> &body) {
  Value *acc = e.slot(e.b.getFloatTy(), "acc");
  e.b.CreateStore(e.f32(init), acc);
  body(acc);
  return e.b.CreateLoad(e.b.getFloatTy(), acc);
}

void addTo(Emitter &e, Value *acc, Value *x) {
  e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.b.getFloatTy(), acc), x), acc);
}

Value *inRange(Emitter &e, Value *x, Value *hi) {
  return e.b.CreateAnd(e.b.CreateICmpSGE(x, e.i64(0)), e.b.CreateICmpSLT(x, hi));
}

/// For input coordinate `in` and kernel tap `k`: is there an output
/// position o with o*s - p + k == in, and which.
std::pair<Value *, Value *> tapSource(Emitter &e, Value *in, Value *k, int64_t s, int64_t p,
                                      Value *outSize) {
  auto &b = e.b;
  Value *t = b.CreateSub(b.CreateAdd(in, e.i64(p)), k);
  Value *o = b.CreateSDiv(t, e.i64(s));
  Value *ok = b.CreateAnd(b.CreateICmpSGE(t, e.i64(0)),
                          b.CreateICmpEQ(b.CreateSRem(t, e.i64(s)), e.i64(0)));
  return {b.CreateAnd(ok, b.CreateICmpSLT(o, outSize)), o};
}

/// Index (in x) of the first maximum of pooling window (oy, ox) of plane (bi, c).
Value *poolArgmax(Emitter &e, ValueId x, const Shape &xs, const Window &w, Value *bi, Value *c,
                  Value *oy, Value *ox) {
  auto &b = e.b;
  Value *best = e.slot(b.getInt64Ty(), "best"), *bv = e.slot(b.getFloatTy(), "bv");
  b.CreateStore(e.i64(-1), best);
  b.CreateStore(e.f32(-INFINITY), bv);
  e.loop(e.i64(0), e.i64(w.kh), [&](Value *ky) {
    Value *iy = b.CreateAdd(b.CreateSub(b.CreateMul(oy, e.i64(w.sh)), e.i64(w.ph)), ky);
    e.ifThen(inRange(e, iy, e.i64(xs[2])), [&] {
      e.loop(e.i64(0), e.i64(w.kw), [&](Value *kx) {
        Value *ix = b.CreateAdd(b.CreateSub(b.CreateMul(ox, e.i64(w.sw)), e.i64(w.pw)), kx);
        e.ifThen(inRange(e, ix, e.i64(xs[3])), [&] {
          Value *at = e.ravel(xs, {bi, c, iy, ix});
          Value *v = e.load(x, at);
          Value *was = b.CreateLoad(b.getInt64Ty(), best);
          Value *wasV = b.CreateLoad(b.getFloatTy(), bv);
          Value *better = b.CreateOr(b.CreateICmpSLT(was, e.i64(0)), b.CreateFCmpOGT(v, wasV));
          // Selects, not a branch: which element wins is data, and a
          // mispredicted branch per tap cost more than the comparison.
          b.CreateStore(b.CreateSelect(better, at, was), best);
          b.CreateStore(b.CreateSelect(better, v, wasV), bv);
        });
      });
    });
  });
  return b.CreateLoad(b.getInt64Ty(), best);
}

Value *maxPool(Emitter &e, const Node &n, Value *i) {
  const Shape &xs = e.g.type(n.inputs[0]).shape, &ys = n.type.shape;
  auto k = n.attrs.ints("kernel");
  Window w = window(n.attrs, k[0], k[1]);
  auto idx = e.unravel(ys, i);
  if (w.ph == 0 && w.pw == 0 && (ys[2] - 1) * w.sh + w.kh <= xs[2] &&
      (ys[3] - 1) * w.sw + w.kw <= xs[3]) {
    // Every window inside the input: its taps at constant offsets from its
    // corner, without bounds checks, the first maximum kept (a later tap
    // wins only when greater, as poolArgmax decides).
    auto &b = e.b;
    Value *corner = e.ravel(
        xs, {idx[0], idx[1], b.CreateMul(idx[2], e.i64(w.sh)), b.CreateMul(idx[3], e.i64(w.sw))});
    Value *best = nullptr;
    for (int64_t ky = 0; ky < w.kh; ++ky)
      for (int64_t kx = 0; kx < w.kw; ++kx) {
        Value *v = e.load(n.inputs[0], b.CreateAdd(corner, e.i64(ky * xs[3] + kx)));
        best = best ? b.CreateSelect(b.CreateFCmpOGT(v, best), v, best) : v;
      }
    return best;
  }
  Value *at = poolArgmax(e, n.inputs[0], xs, w, idx[0], idx[1], idx[2], idx[3]);
  return e.load(n.inputs[0], at);
}

Value *maxPoolGrad(Emitter &e, const Node &n, Value *i) {
  auto &b = e.b;
  const Shape &xs = e.g.type(n.inputs[0]).shape, &gs = e.g.type(n.inputs[1]).shape;
  auto k = n.attrs.ints("kernel");
  Window w = window(n.attrs, k[0], k[1]);
  auto idx = e.unravel(xs, i); // b, c, iy, ix
  if (w.sh == w.kh && w.sw == w.kw && w.ph == 0 && w.pw == 0) {
    // Windows that tile the input (LeNet's, VGG's): the one window that
    // holds (iy, ix) is (iy / kh, ix / kw), when it exists (floor mode
    // leaves the last rows and columns of an odd size in none; ceil mode's
    // pad_end adds the window that holds them, clipped by poolArgmax).
    Value *oy = b.CreateUDiv(idx[2], e.i64(w.kh)), *ox = b.CreateUDiv(idx[3], e.i64(w.kw));
    Value *inside =
        b.CreateAnd(b.CreateICmpULT(oy, e.i64(gs[2])), b.CreateICmpULT(ox, e.i64(gs[3])));
    return accumulate(e, 0, [&](Value *acc) {
      e.ifThen(inside, [&] {
        Value *at = poolArgmax(e, n.inputs[0], xs, w, idx[0], idx[1], oy, ox);
        e.ifThen(b.CreateICmpEQ(at, i), [&] {
          addTo(e, acc, e.load(n.inputs[1], e.ravel(gs, {idx[0], idx[1], oy, ox})));
        });
      });
    });
  }
  return accumulate(e, 0, [&](Value *acc) {
    e.loop(e.i64(0), e.i64(w.kh), [&](Value *ky) {
      auto [okY, oy] = tapSource(e, idx[2], ky, w.sh, w.ph, e.i64(gs[2]));
      e.ifThen(okY, [&, oy = oy] {
        e.loop(e.i64(0), e.i64(w.kw), [&](Value *kx) {
          auto [okX, ox] = tapSource(e, idx[3], kx, w.sw, w.pw, e.i64(gs[3]));
          e.ifThen(okX, [&, ox = ox] {
            Value *at = poolArgmax(e, n.inputs[0], xs, w, idx[0], idx[1], oy, ox);
            e.ifThen(b.CreateICmpEQ(at, i), [&] {
              addTo(e, acc, e.load(n.inputs[1], e.ravel(gs, {idx[0], idx[1], oy, ox})));
            });
          });
        });
      });
    });
  });
}

/// Torch7's average pooling (count_include_pad): the window's sum / (kh kw).
Value *avgPool(Emitter &e, const Node &n, Value *i) {
  auto &b = e.b;
  const Shape &xs = e.g.type(n.inputs[0]).shape;
  auto k = n.attrs.ints("kernel");
  Window w = window(n.attrs, k[0], k[1]);
  auto idx = e.unravel(n.type.shape, i); // b, c, oy, ox
  Value *sum = accumulate(e, 0, [&](Value *acc) {
    e.loop(e.i64(0), e.i64(w.kh), [&](Value *ky) {
      Value *iy = b.CreateAdd(b.CreateSub(b.CreateMul(idx[2], e.i64(w.sh)), e.i64(w.ph)), ky);
      e.ifThen(inRange(e, iy, e.i64(xs[2])), [&] {
        e.loop(e.i64(0), e.i64(w.kw), [&](Value *kx) {
          Value *ix = b.CreateAdd(b.CreateSub(b.CreateMul(idx[3], e.i64(w.sw)), e.i64(w.pw)), kx);
          e.ifThen(inRange(e, ix, e.i64(xs[3])), [&] {
            addTo(e, acc, e.load(n.inputs[0], e.ravel(xs, {idx[0], idx[1], iy, ix})));
          });
        });
      });
    });
  });
  if (w.padEnd)
    return b.CreateFDiv(sum, windowSize(e, w, xs, idx[2], idx[3]));
  return b.CreateFMul(sum, e.f32(1.0 / double(k[0] * k[1])));
}

/// Each input element: the gradients of the windows that hold it, each
/// divided by its window's size (kh kw but in ceil mode's extra windows).
Value *avgPoolGrad(Emitter &e, const Node &n, Value *i) {
  auto &b = e.b;
  const Shape &gs = e.g.type(n.inputs[0]).shape, &xs = n.type.shape;
  auto k = n.attrs.ints("kernel");
  Window w = window(n.attrs, k[0], k[1]);
  auto idx = e.unravel(n.type.shape, i); // b, c, iy, ix
  Value *sum = accumulate(e, 0, [&](Value *acc) {
    e.loop(e.i64(0), e.i64(w.kh), [&](Value *ky) {
      auto [okY, oy] = tapSource(e, idx[2], ky, w.sh, w.ph, e.i64(gs[2]));
      e.ifThen(okY, [&, oy = oy] {
        e.loop(e.i64(0), e.i64(w.kw), [&](Value *kx) {
          auto [okX, ox] = tapSource(e, idx[3], kx, w.sw, w.pw, e.i64(gs[3]));
          e.ifThen(okX, [&, ox = ox] {
            Value *g = e.load(n.inputs[0], e.ravel(gs, {idx[0], idx[1], oy, ox}));
            addTo(e, acc, w.padEnd ? b.CreateFDiv(g, windowSize(e, w, xs, oy, ox)) : g);
          });
        });
      });
    });
  });
  return w.padEnd ? sum : b.CreateFMul(sum, e.f32(1.0 / double(k[0] * k[1])));
}

/// Reductions over any axes: output element i loops over the reduced
/// space as nested loops over runs of consecutive reduced dimensions, so that
/// no element costs a division. A sum whose innermost run is contiguous
/// (a bias gradient: axes [0,2,3] of [N,C,H,W]) reads it 32 and then 8
/// floats at a time into as many partial sums.
Value *reduce(Emitter &e, const Node &n, Value *i) {
  auto &b = e.b;
  const ValueId src = n.inputs[0];
  const Shape &in = e.g.type(src).shape;
  const auto axes = n.attrs.ints("axes");
  const int rank = int(in.size());
  bool lastSummed = axes.empty();
  Shape reducedShape;
  {
    std::vector<bool> red(size_t(rank), axes.empty());
    for (int64_t a : axes)
      red[size_t(a < 0 ? a + rank : a)] = true;
    for (int d = 0; d < rank; ++d)
      if (red[size_t(d)])
        reducedShape.push_back(in[size_t(d)]);
    lastSummed |= rank > 0 && red[size_t(rank) - 1];
  }
  const bool isMax = n.op == Op::ReduceMax;
  const bool wide =
      !isMax && lastSummed && e.g.type(src).dtype == DType::F32 && e.stored[size_t(src)];
  Value *acc = e.slot(b.getFloatTy(), "acc");
  b.CreateStore(e.f32(isMax ? -INFINITY : 0.0), acc);
  // Partial sums of 32 and 8 lanes (LLVM splits them into the ISA's registers).
  llvm::Type *v32 = llvm::FixedVectorType::get(b.getFloatTy(), 32);
  llvm::Type *v8 = llvm::FixedVectorType::get(b.getFloatTy(), 8);
  Value *acc32 = wide ? e.slot(v32, "acc32") : nullptr;
  Value *acc8 = wide ? e.slot(v8, "acc8") : nullptr;
  if (wide) {
    b.CreateStore(llvm::Constant::getNullValue(v32), acc32);
    b.CreateStore(llvm::Constant::getNullValue(v8), acc8);
  }
  walkSum(
      e, in, axes, i, wide,
      [&](Value *at, int lanes) {
        Value *slotPtr = lanes == 32 ? acc32 : acc8;
        llvm::Type *vt = lanes == 32 ? v32 : v8;
        Value *p = b.CreateInBoundsGEP(b.getFloatTy(), e.buffer(src), at);
        Value *x = b.CreateAlignedLoad(vt, p, llvm::Align(4));
        b.CreateStore(b.CreateFAdd(b.CreateLoad(vt, slotPtr), x), slotPtr);
      },
      [&](Value *at) {
        Value *x = e.load(src, at);
        Value *a = b.CreateLoad(b.getFloatTy(), acc);
        b.CreateStore(isMax ? e.maxf(x, a) : b.CreateFAdd(a, x), acc);
      });
  Value *r = b.CreateLoad(b.getFloatTy(), acc);
  if (wide) {
    r = b.CreateFAddReduce(r, b.CreateLoad(v32, acc32));
    r = b.CreateFAddReduce(r, b.CreateLoad(v8, acc8));
  }
  if (n.op == Op::ReduceMean)
    r = b.CreateFDiv(r, b.CreateSIToFP(e.numel(reducedShape), b.getFloatTy()));
  return r;
}

Value *transpose(Emitter &e, const Node &n, Value *i) {
  const Shape &in = e.g.type(n.inputs[0]).shape;
  auto perm = n.attrs.ints("perm");
  auto idx = e.unravel(n.type.shape, i);
  std::vector<Value *> src(in.size());
  for (size_t d = 0; d < perm.size(); ++d)
    src[size_t(perm[d])] = idx[d];
  return e.load(n.inputs[0], e.ravel(in, src));
}

/// Element i of a concat: the operand whose range of the axis holds it.
Value *concat(Emitter &e, const Node &n, Value *i) {
  auto &b = e.b;
  size_t axis = size_t(n.attrs.i("axis"));
  auto idx = e.unravel(n.type.shape, i);
  Value *out = e.slot(b.getFloatTy(), "cat");
  b.CreateStore(e.f32(0), out);
  int64_t start = 0;
  for (ValueId x : n.inputs) {
    const Shape &xs = e.g.type(x).shape;
    int64_t size = xs[axis];
    Value *a = b.CreateSub(idx[axis], e.i64(start));
    e.ifThen(b.CreateICmpULT(a, e.i64(size)), [&] {
      std::vector<Value *> src = idx;
      src[axis] = a;
      b.CreateStore(e.external(x, xs, e.ravel(xs, src)), out);
    });
    start += size;
  }
  return b.CreateLoad(b.getFloatTy(), out);
}

Value *slice(Emitter &e, const Node &n, Value *i) {
  const Shape &xs = e.g.type(n.inputs[0]).shape;
  size_t axis = size_t(n.attrs.i("axis"));
  auto idx = e.unravel(n.type.shape, i);
  idx[axis] = e.b.CreateAdd(idx[axis], e.i64(n.attrs.i("start")));
  return e.external(n.inputs[0], xs, e.ravel(xs, idx));
}

Value *argMax(Emitter &e, const Node &n, Value *i) {
  auto &b = e.b;
  int64_t c = e.g.type(n.inputs[0]).shape.back();
  Value *best = e.slot(b.getInt64Ty(), "best"), *bv = e.slot(b.getFloatTy(), "bv");
  b.CreateStore(e.i64(0), best);
  b.CreateStore(e.f32(-INFINITY), bv);
  e.loop(e.i64(0), e.i64(c), [&](Value *j) {
    Value *v = e.load(n.inputs[0], b.CreateAdd(b.CreateMul(i, e.i64(c)), j));
    e.ifThen(b.CreateFCmpOGT(v, b.CreateLoad(b.getFloatTy(), bv)), [&] {
      b.CreateStore(j, best);
      b.CreateStore(v, bv);
    });
  });
  return b.CreateSIToFP(b.CreateLoad(b.getInt64Ty(), best), b.getFloatTy());
}

} // namespace

void walkSum(Emitter &e, const Shape &in, const std::vector<int64_t> &axes, Value *i, bool wide,
             const std::function<void(Value *, int)> &lanes,
             const std::function<void(Value *)> &one, const std::function<void(Value *)> &run) {
  auto &b = e.b;
  const int rank = int(in.size());
  std::vector<bool> red(size_t(rank), axes.empty());
  for (int64_t a : axes)
    red[size_t(a < 0 ? a + rank : a)] = true;
  // Strides are constants: only dimension 0 may be N, and no stride holds it.
  std::vector<int64_t> stride(size_t(rank), 1);
  for (int d = rank - 2; d >= 0; --d)
    stride[size_t(d)] = stride[size_t(d) + 1] * in[size_t(d) + 1];
  Shape kept;
  for (int d = 0; d < rank; ++d)
    if (!red[size_t(d)])
      kept.push_back(in[size_t(d)]);
  auto keptIdx = e.unravel(kept, i);
  struct Run {
    Value *size;
    int64_t stride;
  };
  std::vector<Run> runs;
  Value *base = e.i64(0);
  for (int d = 0, k = 0; d < rank;) {
    if (!red[size_t(d)]) {
      base = b.CreateAdd(base, b.CreateMul(keptIdx[size_t(k++)], e.i64(stride[size_t(d)])));
      ++d;
      continue;
    }
    Value *size = e.dim(in[size_t(d)]);
    int last = d;
    while (last + 1 < rank && red[size_t(last) + 1])
      size = b.CreateMul(size, e.dim(in[size_t(++last)]));
    runs.push_back({size, stride[size_t(last)]});
    d = last + 1;
  }
  wide = wide && !runs.empty() && runs.back().stride == 1;
  std::function<void(size_t, Value *)> nest = [&](size_t r, Value *off) {
    const Run &rn = runs[r];
    const bool innermost = r + 1 == runs.size();
    if (innermost && run)
      run(off);
    if (!innermost || !wide) {
      e.loop(e.i64(0), rn.size, [&](Value *j) {
        Value *at = b.CreateAdd(off, b.CreateMul(j, e.i64(rn.stride)));
        if (innermost)
          one(at);
        else
          nest(r + 1, at);
      });
      return;
    }
    Value *n32 = b.CreateLShr(rn.size, 5), *n8 = b.CreateLShr(rn.size, 3);
    e.loop(e.i64(0), n32, [&](Value *j) { lanes(b.CreateAdd(off, b.CreateShl(j, 5)), 32); });
    e.loop(b.CreateShl(n32, 2), n8,
           [&](Value *j) { lanes(b.CreateAdd(off, b.CreateShl(j, 3)), 8); });
    e.loop(b.CreateShl(n8, 3), rn.size, [&](Value *j) { one(b.CreateAdd(off, j)); });
  };
  if (runs.empty()) {
    if (run)
      run(base);
    one(base);
  } else {
    nest(0, base);
  }
}

Value *emitGather(Emitter &e, ValueId v, Value *i) {
  const Node &n = e.g.node(v);
  switch (n.op) {
  case Op::MaxPool2d: return maxPool(e, n, i);
  case Op::MaxPool2dGrad: return maxPoolGrad(e, n, i);
  case Op::AvgPool2d: return avgPool(e, n, i);
  case Op::AvgPool2dGrad: return avgPoolGrad(e, n, i);
  case Op::ReduceSum:
  case Op::ReduceMax:
  case Op::ReduceMean: return reduce(e, n, i);
  case Op::Transpose: return transpose(e, n, i);
  case Op::Concat: return concat(e, n, i);
  case Op::Slice: return slice(e, n, i);
  case Op::ArgMax: return argMax(e, n, i);
  default: break;
  }
  // Convolutions and their gradients run on the packed GEMM (grt_conv).
  GRAPHC_CHECK(false, "the CPU backend cannot emit {} as a gather", opName(n.op));
  return nullptr;
}

} // namespace graphc::codegen::cpu
