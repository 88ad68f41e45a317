// runtime/CompiledModel.h - what the compiler driver hands an executor: the
// fused training step and evaluation graphs with their memory plans, and
// how the executable should run.
//
// The plans are the memplan pass's, made once for the largest batch; every
// executor uses them as they are. A model compiled for evaluation only has
// an empty step graph: its executable predicts and refuses to train.
#pragma once

#include "ir/Graph.h"
#include "ir/MemoryPlan.h"
#include "runtime/Executable.h"

#include <cstdint>
#include <memory>
#include <string>

namespace graphc::runtime {

struct CompiledModel {
  ModelInfo info;
  ir::Graph step;    ///< fused training step (empty: evaluation only)
  ir::Graph predict; ///< fused evaluation pass: x, params -> output
  ir::MemoryPlan stepPlan, predictPlan;
  /// The step split in two for data parallelism (passes/Optimizer.h's
  /// gradientsProgram and updateProgram); empty unless asked for.
  ir::Graph gradients, update;
  ir::MemoryPlan gradientsPlan, updatePlan;

  bool trainable() const { return step.size() > 0; }
  bool split() const { return gradients.size() > 0; }
};

/// How an executable runs, whatever its target.
struct ExecutableOptions {
  int threads = 0;        ///< 0: all cores
  int64_t maxBatch = 256; ///< largest batch the executable accepts
  uint64_t seed = 1;      ///< initial parameters and Dropout masks
  bool tf32 = false;      ///< cuda: matrix products in TF32 (faster, ~1e-3 relative error)
  /// cpu: the vector ISA ("avx512", "avx2", "generic"); "": GRAPHC_CPU or
  /// the host's best.
  std::string cpu = "";
  /// cpu: the compile cache's folder ("" : none; graphc's commands use
  /// codegen::cpu::defaultCacheDir() unless --no-cache).
  std::string cacheDir = "";
  /// Also compile the step split in two (Executable::computeGradients and
  /// applyUpdate, for data-parallel training); off: the ordinary compile.
  bool split = false;
  /// Data parallelism: this process's rank (runtime/Distributed.h); the
  /// cuda target runs on GPU rank % the GPUs this process sees.
  int rank = 0;
};

/// The reference interpreter as an executable (slow; for tests and checks).
std::unique_ptr<Executable> makeInterpExecutable(CompiledModel model, int64_t maxBatch);

/// The Dropout seed of one step: the same in every backend.
int32_t stepSeed(uint64_t seed, int64_t step);

} // namespace graphc::runtime
