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

#include <memory>
#include <string>
#include <vector>

namespace graphc::codegen::cpu {

/// One graph's kernels and the data the host needs to run them.
struct Program {
  ir::Graph graph;
  passes::MemoryPlan plan;
  std::vector<bool> stored;
  std::vector<KernelInfo> kernels;
  std::vector<void *> fns, epilogues, colsums; ///< resolved, per kernel
};

/// The host's vector unit, from the features LLVM detects.
VectorTarget hostVectorTarget();

/// A JIT session that owns the compiled code of one model.
class JitModule {
public:
  ~JitModule();
  /// Emits, optimises and JIT-compiles the kernels of `programs`, filling in
  /// their function pointers. `compileMs` receives the time it took.
  static Expected<std::unique_ptr<JitModule>>
  compile(std::vector<Program *> programs, const std::vector<std::string> &prefixes,
          VectorTarget &target, double *compileMs);
  void *microKernel() const { return micro_; }

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void *micro_ = nullptr;
};

/// The optimised LLVM IR (`asm` false) or host assembly (`asm` true) of the
/// kernels of `programs`.
Expected<std::string> emitText(std::vector<Program *> programs,
                               const std::vector<std::string> &prefixes, bool assembly);

} // namespace graphc::codegen::cpu
