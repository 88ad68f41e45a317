// runtime/cpu/CpuExecutable.h - the cpu target's executable: the model's
// step and evaluation pass JIT-compiled by LLVM (codegen/cpu) for one vector
// ISA, run on graphc's thread pool.
#pragma once

#include "runtime/CompiledModel.h"

namespace graphc::runtime::cpu {

/// Compiles both programs (only the evaluation pass for a model compiled
/// for evaluation) for options.cpu, or GRAPHC_CPU, or the host's best ISA.
Expected<std::unique_ptr<Executable>> makeCpuExecutable(CompiledModel model,
                                                        const ExecutableOptions &options);

} // namespace graphc::runtime::cpu
