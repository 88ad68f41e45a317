// codegen/cpu/Runner.h - runs JIT-compiled programs: binds buffers and
// launches kernels.
//
// Every stored value of a program gets a pointer before a call: the
// caller's arrays for inputs and outputs (by name; outputs as "out:NAME"),
// arena offsets from the memory plan (valid for any batch up to the one it
// was planned for), and views at their offsets. Kernels then run in order:
// range kernels split over the thread pool, GEMMs through the packed driver
// with their epilogues, row kernels in one pass.
#pragma once

#include "codegen/cpu/Jit.h"
#include "runtime/ThreadPool.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace graphc::codegen::cpu {

class Runner {
public:
  /// `threads` 0: one per core.
  explicit Runner(int threads) : pool_(threads) {}
  ~Runner();

  /// Compiles `programs` (graph and plan set) into one JIT module and gives
  /// each an arena.
  Status compile(std::vector<Program *> programs, const std::vector<std::string> &prefixes);

  /// Runs `p` on batch size n; `io` maps input names and "out:NAME" outputs
  /// to memory. Outputs without an entry stay in the arena.
  void run(Program &p, const std::map<std::string, void *> &io, int64_t n);

  double compileMs() const { return compileMs_; }
  const VectorTarget &target() const { return target_; }
  runtime::ThreadPool &pool() { return pool_; }
  /// Where output `name` of `p` went in the last run that left it in the arena.
  const void *outputPointer(const Program &p, const std::string &name) const;

private:
  std::vector<void *> bind(Program &p, const std::map<std::string, void *> &io);
  /// Outputs that are views or inputs land in their "out:" buffers by copy.
  void copyOutputs(Program &p, const std::map<std::string, void *> &io, int64_t n);
  void gemm(const KernelInfo &k, Program &p, void **table, int64_t n, size_t index);

  runtime::ThreadPool pool_;
  std::unique_ptr<JitModule> jit_;
  VectorTarget target_;
  double compileMs_ = 0;
  std::map<const Program *, std::unique_ptr<float, void (*)(void *)>> arenas_;
  std::map<const Program *, std::vector<void *>> lastPtrs_;
};

} // namespace graphc::codegen::cpu
