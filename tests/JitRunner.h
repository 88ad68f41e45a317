// tests/JitRunner.h - JIT-compiled programs of any graph, run by name:
// the tests' way to run a graph that is not a model's step (a model's
// step runs in the C runtime's context, runtime/cpu/CpuExecutable.cpp).
//
// Owns the JIT module, the C runtime's thread pool and one arena per
// program; `run` lays the caller's named buffers out in the order the
// generated run function expects (inputs, then outputs) and calls it.
#pragma once

#include "codegen/cpu/Jit.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

struct grt_pool;

namespace graphc::test {

using codegen::cpu::JitCache;
using codegen::cpu::JitModule;
using codegen::cpu::Program;
using codegen::cpu::VectorTarget;

class JitRunner {
public:
  /// `threads` 0: one per core.
  explicit JitRunner(int threads);
  ~JitRunner();
  JitRunner(const JitRunner &) = delete;
  JitRunner &operator=(const JitRunner &) = delete;

  /// Compiles `programs` (graph and plan set) into one JIT module for the
  /// vector ISA `isa` (chooseVectorTarget: "" is GRAPHC_CPU or the host's
  /// best) and gives each an arena.
  Status compile(std::vector<Program *> programs, const std::vector<std::string> &prefixes,
                 const std::string &isa = "", const std::string &cacheDir = "");

  /// Runs `p` on batch size n. `io` maps every input name, and "out:NAME"
  /// for every output, to memory.
  void run(Program &p, const std::map<std::string, void *> &io, int64_t n);
  /// Runs only kernels [begin, end) of `p` (consecutive ranges make a
  /// run); `table` receives every value's buffer (p.graph.size() pointers).
  void runKernels(Program &p, const std::map<std::string, void *> &io, int64_t n, int64_t begin,
                  int64_t end, std::vector<void *> &table);

  double compileMs() const { return compileMs_; }
  /// What the compile cache did (dir empty: not used).
  const JitCache &cache() const { return cache_; }
  /// The ISA the programs were compiled for.
  const VectorTarget &isa() const { return isa_; }

private:
  /// The caller's buffers in the run functions' order: inputs, then outputs.
  static std::vector<void *> ioSlots(const Program &p, const std::map<std::string, void *> &io);

  grt_pool *pool_;
  std::unique_ptr<JitModule> jit_;
  double compileMs_ = 0;
  JitCache cache_;
  VectorTarget isa_;
  std::map<const Program *, std::unique_ptr<char, void (*)(void *)>> arenas_;
};

} // namespace graphc::test
