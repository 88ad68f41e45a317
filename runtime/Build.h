// runtime/Build.h - model spec to a ready-to-run Executable for a target.
//
// Traces the training graph (Dropout active) and the evaluation graph
// (Dropout off, no loss), runs the pass pipeline on both, and hands the fused
// graphs to the chosen backend.
#pragma once

#include "codegen/DeviceImage.h"
#include "frontend/nn.h"
#include "passes/Pipeline.h"
#include "runtime/Executable.h"

#include <memory>

namespace graphc::runtime {

struct BuildOptions {
  std::string target = "cpu"; ///< "cpu", "cuda", or "interp" (the reference interpreter)
  int threads = 0;            ///< 0: all cores
  int64_t maxBatch = 256;     ///< largest batch the executable accepts
  uint64_t seed = 1;          ///< initial parameters and Dropout masks
  bool tf32 = false;          ///< cuda: matrix products in TF32 (faster, ~1e-3 relative error)
  /// cpu: the vector ISA ("avx512", "avx2", "generic"). "": the JIT takes
  /// GRAPHC_CPU or the host's best; a library gets avx2 code that switches
  /// to avx512 where the CPU running it has it.
  std::string cpu = "";
};

/// The fused training step and evaluation graphs of a model.
struct CompiledModel {
  ModelInfo info;
  ir::Graph step;    ///< fused training step
  ir::Graph predict; ///< fused evaluation forward pass: x, params -> output
  passes::Pipeline pipeline;
};

/// Traces and runs the passes; `spec` must have a criterion and an optimizer.
Expected<CompiledModel> compileModel(const nn::ModelSpec &spec, const ir::Shape &sample,
                                     const passes::PipelineOptions &options = {});

/// A backend executable with Torch7-initialised parameters.
Expected<std::unique_ptr<Executable>> build(const nn::ModelSpec &spec,
                                            const ir::Shape &sample,
                                            const BuildOptions &options);

/// The executable of an already compiled model for `options.target`.
Expected<std::unique_ptr<Executable>> buildCompiled(CompiledModel model,
                                                    const BuildOptions &options);

/// The reference interpreter as an executable (slow; for tests and checks).
std::unique_ptr<Executable> makeInterpExecutable(CompiledModel model, int64_t maxBatch);

/// What `graphc compile --emit` writes for the CPU target.
enum class CpuOutput { LlvmIr, Assembly, Library };

/// The model's CPU code: the optimised LLVM IR or assembly as text, or, for
/// Library, `<out>.h`, `lib<name>.a` and `<out>.safetensors` (the initial
/// weights) written next to `out`.
Expected<std::string> emitCpu(const CompiledModel &model, const BuildOptions &options,
                              CpuOutput what, const std::string &out = "",
                              const codegen::DeviceImage *device = nullptr);

/// `graphc compile --target cuda --emit lib`: the same header and initial
/// weights as the cpu target's library, and an archive whose step runs on
/// the GPU (kernels compiled to PTX for `arch`, e.g. "sm_90"). Where the
/// toolkit's ptxas is installed every PTX module is assembled first;
/// `assembled` receives how many (-1: no ptxas, none checked).
Status emitCudaLibrary(const CompiledModel &model, const BuildOptions &options,
                       const std::string &arch, const std::string &out,
                       int *assembled = nullptr);

/// The Dropout seed of one step: the same in every backend.
int32_t stepSeed(uint64_t seed, int64_t step);

} // namespace graphc::runtime
