// driver/Compile.h - the compiler driver: a model spec traced, both of its
// graphs through the pass pipeline, and an executable for a target.
//
//   trace (training) -> autodiff -> optimizer -> canonicalize -> fusion -> memplan
//   trace (evaluation)            ->            canonicalize -> fusion -> memplan
//
// The training step and the evaluation pass go through the same named
// steps (passes/Pipeline.h), verified after each, printed where asked; the
// memory plans are made there, once, and every backend uses them.
// driver/Targets.h says which targets there are; driver/EmitLibrary.h
// writes what `graphc compile --emit` asks for.
#pragma once

#include "frontend/nn.h"
#include "passes/Pipeline.h"
#include "runtime/CompiledModel.h"

#include <memory>
#include <optional>
#include <string>

namespace graphc::driver {

/// Where and how an executable runs.
/// The compile cache's folder by default: $GRAPHC_CACHE_DIR, else
/// $XDG_CACHE_HOME/graphc, else ~/.cache/graphc ("" when none is known).
std::string defaultCacheDir();

struct BuildOptions : runtime::ExecutableOptions {
  std::string target = "cpu"; ///< a name of driver/Targets.h: cpu, cuda, interp
  std::string arch = "sm_90"; ///< cuda libraries: the GPU architecture of the PTX
  /// Refuse a model whose memory estimate (driver/Memory.h) exceeds this
  /// many bytes; 0: what this process may still allocate.
  uint64_t maxMemory = 0;
  /// Fusion's sums into their chains (passes::FusionOptions::reductions);
  /// unset: the target's choice, on for cpu, off for cuda.
  std::optional<bool> fuseReductions;
};

/// A compiled model and what its two pipelines recorded (printed IR, stats,
/// fusion notes) for `graphc compile` to show.
struct Compilation {
  runtime::CompiledModel model;   ///< empty graphs when stopped after "trace"
  ir::Graph traced;               ///< the traced forward-and-loss graph (step 0)
  passes::Pipeline step, predict; ///< step is empty for evaluation only
};

/// Traces `spec` (which must have a criterion and an optimizer) for samples
/// of shape `sample` and runs both pipelines. "trace" is step 0: it can be
/// printed after and stopped after like the passes.
/// With `split`, the step split in two (gradients and update programs) is
/// compiled too; an error for optim.nag, which has no split form.
Expected<Compilation> compile(const nn::ModelSpec &spec, const ir::Shape &sample,
                              const passes::PipelineOptions &options = {}, bool split = false);

/// Only the evaluation pass: what `graphc eval` needs, with no criterion or
/// optimizer invented. Its executable predicts and refuses to train.
Expected<Compilation> compileForEvaluation(const nn::ModelSpec &spec, const ir::Shape &sample,
                                           const passes::PipelineOptions &options = {});

/// compile(), then the target's executable with Torch7-initialised
/// parameters (options.seed); plans are made for options.maxBatch.
Expected<std::unique_ptr<runtime::Executable>>
build(const nn::ModelSpec &spec, const ir::Shape &sample, const BuildOptions &options);

/// The target's executable of an already compiled model; an error, before
/// anything is allocated, when its memory estimate exceeds the limit.
Expected<std::unique_ptr<runtime::Executable>> buildCompiled(runtime::CompiledModel model,
                                                             const BuildOptions &options);

/// The per-sample input shape of `spec`: the `--input` value when given,
/// else the model file's `input = {...}`, else what the first layer fixes
/// (nn::inferSampleShape).
Expected<ir::Shape> sampleShape(const nn::ModelSpec &spec, const ir::Shape &flag);

/// The sample shape for images of rows x cols: 1 x rows x cols when the
/// model takes it, else padded by 2 on each side (28x28 -> 32x32, the
/// seed's MLP); an error from tracing when neither fits.
Expected<ir::Shape> imageSampleShape(const nn::ModelSpec &spec, int64_t rows, int64_t cols);

/// "11 kernel groups, 8 GEMMs (2 x bias add, then ReLU as GEMM epilogue; ...)".
std::string describeKernels(const ir::Graph &g);

} // namespace graphc::driver
