// codegen/cpu/Jit.h - LLVM for the host: target detection, the optimisation
// pipeline, ORC LLJIT, and the IR/assembly text behind `--emit llvm|asm`.
//
// The module of a model holds the step's and the evaluation pass's kernels
// and one GEMM micro-kernel blocked for the host's vector width; it is
// optimised with the new pass manager's O3 for the host CPU and its features
// and either JIT-compiled or printed.
#pragma once

#include "codegen/cpu/KernelEmitter.h"
#include "ir/Error.h"
#include "ir/MemoryPlan.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace graphc::codegen::cpu {

/// One graph compiled: its plan, its kernels, and the run function.
struct Program {
  ir::Graph graph;
  ir::MemoryPlan plan;
  std::vector<bool> stored;
  std::vector<KernelInfo> kernels;
  /// void run(void **io, int64_t n, void *arena, grt_pool *pool), once compiled
  void (*run)(void **io, int64_t n, void *arena, void *pool) = nullptr;
  /// The JIT's stepwise twin of run: kernels [begin, end) only, the
  /// buffer of every value in `table` (graph.size() pointers).
  void (*runKernels)(void **io, int64_t n, void *arena, void *pool, int64_t begin, int64_t end,
                     void **table) = nullptr;
};

/// Every vector ISA graphc generates code for, best first: avx512
/// (x86-64-v4, 8x32 tile), avx2 (x86-64-v3, 6x16), generic (x86-64 with
/// SSE2, 4x8).
const std::vector<VectorTarget> &vectorTargets();

/// Whether this machine's CPU executes code built for `t`.
bool hostRuns(const VectorTarget &t);

/// The best ISA this CPU executes.
VectorTarget hostVectorTarget();

/// The ISA called `name`, whether this CPU runs it or not (cross-compiling
/// a library); an error for an unknown name.
Expected<VectorTarget> vectorTarget(const std::string &name);

/// The ISA called `name`; with "" the one GRAPHC_CPU names, or else the
/// host's best. An error when the name is unknown or this CPU cannot
/// execute that ISA.
Expected<VectorTarget> chooseVectorTarget(const std::string &name = "");

/// The compile cache of JitModule::compile: object code on disk, keyed by
/// everything it depends on (the generated LLVM IR, the ISA, the host CPU
/// and its features, LLVM's version and this build of the code generator).
struct JitCache {
  std::string dir;     ///< in: the cache folder ("" : no cache)
  bool hit = false;    ///< out: the code came from the cache
  std::string problem; ///< out: why an entry was not used or not written ("" : none)
};

/// A JIT session that owns the compiled code of one model.
class JitModule {
public:
  ~JitModule();
  /// Emits, optimises and JIT-compiles `programs` for `isa`, setting their
  /// run functions. `compileMs` receives the time it took. With a cache,
  /// a valid entry replaces optimisation and code generation, and a miss
  /// writes one (atomically; a failure to write is reported, not an error).
  static Expected<std::unique_ptr<JitModule>> compile(std::vector<Program *> programs,
                                                      const std::vector<std::string> &prefixes,
                                                      const VectorTarget &isa, double *compileMs,
                                                      JitCache *cache = nullptr);
  /// The address of a function of the compiled code (e.g. the micro-kernel,
  /// "graphc_micro"), or an error naming it.
  Expected<void *> lookup(const std::string &name);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class EmitKind { LlvmIr, Assembly, Object };

/// The optimised LLVM IR, assembly or an object file of `programs`
/// (kernels, micro-kernel and run functions; names prefixed as given, the
/// micro-kernel called `<microName>`), for each ISA of `isas`. With one ISA
/// every name is as given; with several, each ISA's names are prefixed
/// again with its name (`<prefix><isa>_run`, `<microName>_<isa>`), and the
/// module's own code (what `extra` adds) is built for the first.
/// `extra` may add more to the module before it is optimised.
Expected<std::string> emitCode(std::vector<Program *> programs,
                               const std::vector<std::string> &prefixes, EmitKind kind,
                               const std::vector<VectorTarget> &isas,
                               const std::string &microName = "graphc_micro",
                               const std::function<void(llvm::Module &)> &extra = {});

} // namespace graphc::codegen::cpu
