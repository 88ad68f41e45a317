// codegen/cpu/StepFunction.cpp - the function that runs a whole program:
//
//   void <prefix>run(void **io, i64 n, ptr arena, ptr pool)
//
// `io` holds the graph's inputs in order, then its outputs in order. The
// function points every stored value at its memory (inputs, outputs, arena
// offsets from the memory plan, views at their offsets) in a table on its
// stack, then launches the kernels in order through the C runtime
// (runtime/rt/graphc_rt.h): range kernels split over the pool, GEMMs and
// convolutions through the packed driver with their epilogue, row kernels
// directly.
// The JIT and the ahead-of-time library run the same function.
//
// The JIT also gets a stepwise twin for finding where a step first went
// non-finite:
//
//   void <prefix>run_kernels(void **io, i64 n, ptr arena, ptr pool,
//                            i64 begin, i64 end, ptr table)
//
// binds the same buffers into the caller's `table` (one pointer per value),
// launches only kernels [begin, end) and copies the outputs when `end`
// reaches the last kernel: calls over consecutive ranges run the step.
#include "codegen/cpu/Emitter.h"
#include "codegen/cpu/KernelEmitter.h"
#include "ir/MemoryPlan.h"
#include "runtime/rt/graphc_rt.h"

#include <fmt/format.h>

namespace graphc::codegen::cpu {

using namespace ir;

namespace {

llvm::FunctionCallee declare(llvm::Module &m, const char *name, llvm::Type *ret,
                             std::vector<llvm::Type *> args) {
  return m.getOrInsertFunction(name, llvm::FunctionType::get(ret, args, false));
}

} // namespace

void emitRunFunction(llvm::Module &m, const Graph &g, const ir::MemoryPlan &plan,
                     const std::vector<bool> &stored, const std::vector<KernelInfo> &kernels,
                     const std::string &prefix, const std::string &micro, const VectorTarget &t,
                     bool stepwise) {
  Emitter e(m, g, stored);
  auto &b = e.b;
  auto *ptr = b.getPtrTy();
  auto *i64 = b.getInt64Ty();
  auto *vd = b.getVoidTy();
  auto parallelRange = declare(m, "grt_parallel_range", vd, {ptr, ptr, ptr, i64, i64, i64});
  auto gemm = declare(m, "grt_gemm", vd, {ptr, i64, i64, i64, ptr, i64, i64, ptr, i64, i64, ptr,
                                          i64, ptr, i64, i64, i64, i64, ptr, ptr, i64, i64});
  auto colsum = declare(m, "grt_colsum", vd, {ptr, i64, i64, ptr});
  auto conv = declare(m, "grt_conv", vd,
                      {ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i64, i64, ptr, ptr, i64, ptr, i64});
  auto memcopy = declare(m, "memmove", ptr, {ptr, ptr, i64});

  // void run(ptr io, i64 n, ptr arena, ptr pool): the Emitter's (ptrs, n)
  // convention with io in the place of ptrs.
  if (stepwise)
    e.begin(prefix + "run_kernels", {ptr, ptr, i64, i64, ptr});
  else
    e.begin(prefix + "run", {ptr, ptr});
  llvm::Value *io = e.arg(0), *n = e.n(), *arena = e.arg(2), *pool = e.arg(3);
  const int count = g.size();
  llvm::Value *table = stepwise ? e.arg(6) : e.slot(ptr, "ptrs", unsigned(std::max(count, 1)));
  llvm::Value *geom = e.slot(i64, "geom", GRT_CONV_GEOM); // grt_conv's geometry
  // Stepwise: whether kernel i is in [begin, end).
  auto inRange = [&](size_t i) {
    return b.CreateAnd(b.CreateICmpSLE(e.arg(4), e.i64(int64_t(i))),
                       b.CreateICmpSGT(e.arg(5), e.i64(int64_t(i))));
  };
  std::vector<llvm::Value *> at(size_t(count), nullptr);
  auto ioSlot = [&](int i) {
    return b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, io, uint64_t(i)));
  };
  auto bytes = [&](ValueId v) { return b.CreateMul(e.numel(g.type(v).shape), e.i64(4)); };

  // 1. Memory of every stored value.
  for (ValueId v = 0; v < count; ++v)
    if (plan.offset[size_t(v)] >= 0)
      at[size_t(v)] =
          b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), arena, uint64_t(plan.offset[size_t(v)]));
  std::vector<ValueId> inputs = g.inputs();
  for (size_t i = 0; i < inputs.size(); ++i)
    at[size_t(inputs[i])] = ioSlot(int(i));
  std::vector<bool> boundToOutput(g.outputs().size(), false);
  for (size_t j = 0; j < g.outputs().size(); ++j) {
    ValueId v = g.outputs()[j].value;
    ValueId owner = plan.aliasOf[size_t(v)];
    if (g.node(owner).op == Op::Input || plan.offset[size_t(owner)] >= 0 ||
        (at[size_t(owner)] && owner != v))
      continue;
    if (at[size_t(owner)] == nullptr) {
      at[size_t(owner)] = ioSlot(int(inputs.size() + j));
      boundToOutput[j] = owner == v;
    }
  }
  for (ValueId v = 0; v < count; ++v) {
    ValueId owner = plan.aliasOf[size_t(v)];
    if (owner != v && at[size_t(owner)])
      at[size_t(v)] = b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), at[size_t(owner)],
                                                   uint64_t(plan.aliasOffset[size_t(v)]));
  }
  for (ValueId v = 0; v < count; ++v) {
    GRAPHC_CHECK(!stored[size_t(v)] || at[size_t(v)], "value %{} has no memory", v);
    if (at[size_t(v)])
      b.CreateStore(at[size_t(v)], b.CreateConstInBoundsGEP1_64(ptr, table, uint64_t(v)));
  }

  // 2. The kernels, in order.
  auto fn = [&](const std::string &name) -> llvm::Value * {
    if (name.empty())
      return llvm::ConstantPointerNull::get(ptr);
    return m.getFunction(name);
  };
  // grt_conv's geometry is always the forward convolution's: x [N,C,H,W],
  // w [O,C,kh,kw], y [N,O,OH,OW]; mode 0 computes y, 1 dx, 2 dw.
  auto launchConv = [&](const KernelInfo &ki) {
    const Node &cv = g.node(ki.plan.conv);
    const Shape &in0 = g.type(cv.inputs[0]).shape, &in1 = g.type(cv.inputs[1]).shape,
                &out = cv.type.shape;
    const int64_t mode = cv.op == Op::Conv2d ? 0 : cv.op == Op::Conv2dGradInput ? 1 : 2;
    const Shape &xs = mode == 1 ? out : in0, &ws = mode == 2 ? out : in1,
                &ys = mode == 0   ? out
                      : mode == 1 ? in0
                                  : in1;
    auto st = cv.attrs.ints("stride", {1, 1}), pad = cv.attrs.ints("pad", {0, 0});
    std::vector<llvm::Value *> vals{e.i64(mode),  e.dim(xs[0]), e.i64(xs[1]),  e.i64(xs[2]),
                                    e.i64(xs[3]), e.i64(ws[0]), e.i64(ws[2]),  e.i64(ws[3]),
                                    e.i64(st[0]), e.i64(st[1]), e.i64(pad[0]), e.i64(pad[1]),
                                    e.i64(ys[2]), e.i64(ys[3])};
    GRAPHC_CHECK(vals.size() == GRT_CONV_GEOM, "grt_conv takes {} geometry values", GRT_CONV_GEOM);
    for (size_t i = 0; i < vals.size(); ++i)
      b.CreateStore(vals[i], b.CreateConstInBoundsGEP1_64(i64, geom, i));
    // A max pool after the epilogue: its function and window height.
    const int64_t poolRows =
        ki.plan.poolAfter >= 0 ? g.node(ki.plan.poolAfter).attrs.ints("kernel")[0] : 0;
    b.CreateCall(conv,
                 {pool, geom, at[size_t(cv.inputs[0])], at[size_t(cv.inputs[1])],
                  at[size_t(ki.plan.c)], fn(micro), e.i64(t.mr), e.i64(t.nr), e.i64(t.aCopies),
                  e.i64(t.level), fn(ki.fn), fn(ki.poolFn), e.i64(poolRows), table, n});
  };
  // The values an element of a range kernel reads: a reduction's count
  // (a BatchNorm's channel sum reads N*H*W), a plane's for a chain and its
  // max pool (run plane by plane), else 1.
  auto cost = [&](const KernelPlan &k) -> llvm::Value * {
    if (k.poolAfter >= 0)
      return e.i64(k.domain.shape[2] * k.domain.shape[3]);
    for (ValueId v : k.members) {
      const Node &r = g.node(v);
      if (isSum(r.op) || r.op == Op::ReduceMax) {
        llvm::Value *outs = e.numel(r.type.shape);
        outs = b.CreateSelect(b.CreateICmpEQ(outs, e.i64(0)), e.i64(1), outs);
        return b.CreateUDiv(e.numel(g.type(r.inputs[0]).shape), outs);
      }
    }
    return e.i64(1);
  };
  auto launch = [&](const KernelInfo &ki) {
    const KernelPlan &k = ki.plan;
    switch (k.kind) {
    case KernelKind::Range:
      if (k.conv >= 0) {
        launchConv(ki);
        break;
      }
      b.CreateCall(parallelRange, {pool, fn(ki.fn), table, n,
                                   e.numel(ki.iterations.value_or(k.domain.shape)), cost(k)});
      break;
    case KernelKind::Rows:
      b.CreateCall(llvm::FunctionType::get(vd, {ptr, i64}, false), fn(ki.fn), {table, n});
      break;
    case KernelKind::Gemm: {
      const Shape &as = g.type(k.a).shape, &bs = g.type(k.b).shape;
      llvm::Value *mm = e.dim(k.transA ? as[1] : as[0]);
      llvm::Value *kk = e.dim(k.transA ? as[0] : as[1]);
      llvm::Value *nn = e.dim(k.transB ? bs[0] : bs[1]);
      // A sum over the batch's samples (a weight gradient, and the bias
      // gradient beside it) is taken by chunks in a fixed tree, so that a
      // data-parallel share sums to the same bits (graphc_rt.h).
      const bool overBatch = (k.transA ? as[0] : as[1]) == ir::kBatch;
      b.CreateCall(gemm, {pool,
                          mm,
                          nn,
                          kk,
                          at[size_t(k.a)],
                          e.dim(as[1]),
                          e.i64(k.transA),
                          at[size_t(k.b)],
                          e.dim(bs[1]),
                          e.i64(k.transB),
                          at[size_t(k.c)],
                          nn,
                          fn(micro),
                          e.i64(t.mr),
                          e.i64(t.nr),
                          e.i64(t.aCopies),
                          e.i64(t.level),
                          fn(ki.fn),
                          table,
                          n,
                          e.i64(overBatch ? GRT_BATCH_CHUNK : 0)});
      if (k.colsum >= 0) {
        const Shape &dy = g.type(g.node(k.colsum).inputs[0]).shape;
        b.CreateCall(colsum, {at[size_t(g.node(k.colsum).inputs[0])], e.dim(dy[0]), e.dim(dy[1]),
                              at[size_t(k.colsum)]});
      }
      break;
    }
    case KernelKind::Pack: {
      const Node &pk = g.node(k.pack);
      auto offsets = pk.attrs.ints("offsets");
      for (size_t i = 0; i < pk.inputs.size(); ++i) {
        ValueId part = pk.inputs[i];
        llvm::Value *dst = b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), at[size_t(k.pack)],
                                                        uint64_t(offsets[i] * 4));
        if (g.node(part).op == Op::Constant) { // no memory of its own: fill its place
          llvm::Value *value = e.f32(g.node(part).attrs.f("value"));
          e.loop(e.i64(0), e.numel(g.type(part).shape), [&](llvm::Value *j) {
            b.CreateStore(value, b.CreateInBoundsGEP(b.getFloatTy(), dst, j));
          });
          continue;
        }
        if (plan.aliasOf[size_t(part)] == plan.aliasOf[size_t(k.pack)])
          continue; // computed in place
        b.CreateCall(memcopy, {dst, at[size_t(part)], bytes(part)});
      }
      break;
    }
    }
  };
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (stepwise)
      e.ifThen(inRange(i), [&] { launch(kernels[i]); });
    else
      launch(kernels[i]);
  }

  // 3. Outputs that live elsewhere (an input, a view, a shared buffer) are
  //    copied to the caller's memory.
  auto copyOutputs = [&] {
    for (size_t j = 0; j < g.outputs().size(); ++j) {
      if (boundToOutput[j])
        continue;
      ValueId v = g.outputs()[j].value;
      llvm::Value *dst = ioSlot(int(inputs.size() + j));
      e.ifThen(b.CreateICmpNE(dst, at[size_t(v)]), [&] {
        b.CreateCall(memcopy, {dst, at[size_t(v)], bytes(v)});
      });
    }
  };
  if (stepwise)
    e.ifThen(b.CreateICmpSGE(e.arg(5), e.i64(int64_t(kernels.size()))), copyOutputs);
  else
    copyOutputs();
  e.finish();
}

} // namespace graphc::codegen::cpu
