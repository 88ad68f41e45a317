// codegen/cpu/Runner.cpp - pointer tables and kernel launches.
#include "codegen/cpu/Runner.h"

#include "runtime/Gemm.h"

#include <cstdlib>
#include <cstring>

namespace graphc::codegen::cpu {

using namespace ir;

namespace {
using RangeFn = void (*)(void **, int64_t, int64_t, int64_t);
using RowsFn = void (*)(void **, int64_t);
} // namespace

Runner::~Runner() = default;

Status Runner::compile(std::vector<Program *> programs,
                       const std::vector<std::string> &prefixes) {
  auto jit = JitModule::compile(programs, prefixes, target_, &compileMs_);
  if (!jit)
    return jit.diag();
  jit_ = std::move(*jit);
  for (Program *p : programs) {
    size_t bytes = size_t(std::max<int64_t>(p->plan.arenaBytes, 64) + 63) / 64 * 64;
    auto *mem = static_cast<float *>(std::aligned_alloc(64, bytes));
    std::memset(mem, 0, bytes);
    arenas_.emplace(p, std::unique_ptr<float, void (*)(void *)>(mem, std::free));
  }
  return {};
}

std::vector<void *> Runner::bind(Program &p, const std::map<std::string, void *> &io) {
  const Graph &g = p.graph;
  const passes::MemoryPlan &plan = p.plan;
  std::vector<void *> ptrs(size_t(g.size()), nullptr);
  char *arena = reinterpret_cast<char *>(arenas_.at(&p).get());
  for (ValueId v = 0; v < g.size(); ++v)
    if (plan.offset[size_t(v)] >= 0)
      ptrs[size_t(v)] = arena + plan.offset[size_t(v)];
  for (ValueId v : g.inputs()) {
    auto it = io.find(g.node(v).attrs.s("name"));
    GRAPHC_CHECK(it != io.end(), "no buffer for input {}", g.node(v).attrs.s("name"));
    ptrs[size_t(v)] = it->second;
  }
  for (const Output &o : g.outputs()) {
    ValueId owner = plan.aliasOf[size_t(o.value)];
    auto it = io.find("out:" + o.name);
    if (it != io.end() && g.node(owner).op != Op::Input)
      ptrs[size_t(owner)] = it->second;
  }
  for (ValueId v = 0; v < g.size(); ++v) {
    ValueId owner = plan.aliasOf[size_t(v)];
    if (owner != v && ptrs[size_t(owner)])
      ptrs[size_t(v)] = static_cast<char *>(ptrs[size_t(owner)]) + plan.aliasOffset[size_t(v)];
  }
  for (ValueId v = 0; v < g.size(); ++v)
    GRAPHC_CHECK(!p.stored[size_t(v)] || ptrs[size_t(v)], "value %{} has no memory", v);
  return ptrs;
}

void Runner::run(Program &p, const std::map<std::string, void *> &io, int64_t n) {
  std::vector<void *> &ptrs = lastPtrs_[&p];
  ptrs = bind(p, io);
  void **table = ptrs.data();
  const Graph &g = p.graph;
  for (size_t k = 0; k < p.kernels.size(); ++k) {
    const KernelInfo &ki = p.kernels[k];
    switch (ki.kind) {
    case KernelKind::Range: {
      auto fn = reinterpret_cast<RangeFn>(p.fns[k]);
      int64_t total = ki.domain.numel(n);
      const int64_t chunk = 16384;
      int64_t tasks = (total + chunk - 1) / chunk;
      if (tasks <= 1) {
        fn(table, n, 0, total);
        break;
      }
      int64_t per = (total + tasks - 1) / tasks;
      pool_.run(tasks, [&](int64_t t, int) {
        fn(table, n, t * per, std::min(total, (t + 1) * per));
      });
      break;
    }
    case KernelKind::Rows:
      reinterpret_cast<RowsFn>(p.fns[k])(table, n);
      break;
    case KernelKind::Gemm:
      gemm(ki, p, table, n, k);
      break;
    case KernelKind::Pack: {
      const Node &pk = g.node(ki.pack);
      auto offsets = pk.attrs.ints("offsets");
      for (size_t i = 0; i < pk.inputs.size(); ++i) {
        ValueId part = pk.inputs[i];
        if (p.plan.aliasOf[size_t(part)] == p.plan.aliasOf[size_t(ki.pack)])
          continue; // computed in place
        std::memcpy(static_cast<float *>(table[ki.pack]) + offsets[i], table[part],
                    size_t(g.type(part).numel(n)) * sizeof(float));
      }
      break;
    }
    }
  }
  copyOutputs(p, io, n);
}

void Runner::copyOutputs(Program &p, const std::map<std::string, void *> &io, int64_t n) {
  const std::vector<void *> &ptrs = lastPtrs_[&p];
  for (const Output &o : p.graph.outputs()) {
    auto it = io.find("out:" + o.name);
    if (it == io.end() || ptrs[size_t(o.value)] == it->second)
      continue;
    std::memmove(it->second, ptrs[size_t(o.value)],
                 size_t(p.graph.type(o.value).numel(n)) * 4);
  }
}

const void *Runner::outputPointer(const Program &p, const std::string &name) const {
  auto it = lastPtrs_.find(&p);
  ValueId v = p.graph.output(name);
  if (it == lastPtrs_.end() || v < 0)
    return nullptr;
  return it->second[size_t(p.plan.aliasOf[size_t(v)])] == nullptr
             ? nullptr
             : static_cast<const char *>(it->second[size_t(p.plan.aliasOf[size_t(v)])]) +
                   p.plan.aliasOffset[size_t(v)];
}

void Runner::gemm(const KernelInfo &ki, Program &p, void **table, int64_t n, size_t k) {
  const Graph &g = p.graph;
  Shape as = concrete(g.type(ki.a).shape, n), bs = concrete(g.type(ki.b).shape, n);
  runtime::GemmShape s;
  s.transA = ki.transA;
  s.transB = ki.transB;
  s.m = ki.transA ? as[1] : as[0];
  s.k = ki.transA ? as[0] : as[1];
  s.n = ki.transB ? bs[0] : bs[1];
  s.a = static_cast<const float *>(table[ki.a]);
  s.lda = as[1];
  s.b = static_cast<const float *>(table[ki.b]);
  s.ldb = bs[1];
  s.c = static_cast<float *>(table[ki.c]);
  s.ldc = s.n;
  runtime::GemmKernel gk;
  gk.micro = reinterpret_cast<runtime::MicroKernel>(jit_->microKernel());
  gk.mr = target_.mr;
  gk.nr = target_.nr;
  gk.epilogue = reinterpret_cast<runtime::Epilogue>(p.epilogues[k]);
  gk.ptrs = table;
  gk.batch = n;
  runtime::gemm(s, gk, pool_);
  if (p.colsums[k])
    reinterpret_cast<RowsFn>(p.colsums[k])(table, n);
}

} // namespace graphc::codegen::cpu
