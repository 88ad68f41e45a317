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
#include "passes/MemoryPlan.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace graphc::codegen::cpu {

/// One graph compiled: its plan, its kernels, and the run function.
struct Program {
  ir::Graph graph;
  passes::MemoryPlan plan;
  std::vector<bool> stored;
  std::vector<KernelInfo> kernels;
  /// void run(void **io, int64_t n, void *arena, grt_pool *pool), once compiled
  void (*run)(void **io, int64_t n, void *arena, void *pool) = nullptr;
};

/// The host's vector unit, from the features LLVM detects.
VectorTarget hostVectorTarget();

/// A JIT session that owns the compiled code of one model.
class JitModule {
public:
  ~JitModule();
  /// Emits, optimises and JIT-compiles `programs`, setting their run
  /// functions. `compileMs` receives the time it took.
  static Expected<std::unique_ptr<JitModule>>
  compile(std::vector<Program *> programs, const std::vector<std::string> &prefixes,
          double *compileMs);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class EmitKind { LlvmIr, Assembly, Object };

/// The optimised LLVM IR, host assembly or an object file of `programs`
/// (kernels, micro-kernel and run functions; names prefixed as given, the
/// micro-kernel called `<microName>`).
/// `extra` may add more to the module before it is optimised.
Expected<std::string> emitCode(std::vector<Program *> programs,
                               const std::vector<std::string> &prefixes, EmitKind kind,
                               const std::string &microName = "graphc_micro",
                               const std::function<void(llvm::Module &)> &extra = {});

} // namespace graphc::codegen::cpu
