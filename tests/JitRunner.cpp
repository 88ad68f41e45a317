// tests/JitRunner.cpp - arenas, the io array, the call.
#include "JitRunner.h"

#include "runtime/rt/graphc_rt.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

namespace graphc::test {

using namespace ir;

JitRunner::JitRunner(int threads) : pool_(grt_pool_create(threads)) {
  GRAPHC_CHECK(pool_, "cannot start the thread pool");
}

JitRunner::~JitRunner() { grt_pool_destroy(pool_); }

Status JitRunner::compile(std::vector<Program *> programs, const std::vector<std::string> &prefixes,
                       const std::string &isa, const std::string &cacheDir) {
  auto chosen = codegen::cpu::chooseVectorTarget(isa);
  if (!chosen)
    return chosen.diag();
  isa_ = *chosen;
  cache_ = JitCache();
  cache_.dir = cacheDir;
  auto jit = JitModule::compile(programs, prefixes, isa_, &compileMs_, &cache_);
  if (!jit)
    return jit.diag();
  jit_ = std::move(*jit);
  for (Program *p : programs) {
    size_t bytes = size_t(std::max<int64_t>(p->plan.arenaBytes, 64) + 63) / 64 * 64;
    auto *mem = static_cast<char *>(std::aligned_alloc(64, bytes));
    if (!mem)
      return error(fmt::format("out of memory: cannot allocate the {}-byte arena of the "
                               "intermediates (use a smaller batch)",
                               bytes));
    std::memset(mem, 0, bytes);
    arenas_.emplace(p, std::unique_ptr<char, void (*)(void *)>(mem, std::free));
  }
  return {};
}

std::vector<void *> JitRunner::ioSlots(const Program &p, const std::map<std::string, void *> &io) {
  std::vector<void *> slots;
  auto need = [&](const std::string &name) {
    auto it = io.find(name);
    GRAPHC_CHECK(it != io.end() && it->second, "no buffer for {}", name);
    slots.push_back(it->second);
  };
  for (ValueId v : p.graph.inputs())
    need(p.graph.node(v).attrs.s("name"));
  for (const Output &o : p.graph.outputs())
    need("out:" + o.name);
  return slots;
}

void JitRunner::run(Program &p, const std::map<std::string, void *> &io, int64_t n) {
  std::vector<void *> slots = ioSlots(p, io);
  p.run(slots.data(), n, arenas_.at(&p).get(), pool_);
}

void JitRunner::runKernels(Program &p, const std::map<std::string, void *> &io, int64_t n,
                        int64_t begin, int64_t end, std::vector<void *> &table) {
  GRAPHC_CHECK(p.runKernels, "no stepwise run function for {}", p.graph.name());
  std::vector<void *> slots = ioSlots(p, io);
  table.assign(size_t(std::max(p.graph.size(), 1)), nullptr);
  p.runKernels(slots.data(), n, arenas_.at(&p).get(), pool_, begin, end, table.data());
}

} // namespace graphc::test
