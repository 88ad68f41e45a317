// passes/Pipeline.h - forward graph to fused training step, as named steps.
//
//   autodiff -> optimizer -> canonicalize -> fusion -> memplan
//
// Each step can print the IR before or after it ("(unchanged)" when it did
// nothing), be verified, or be the last one run; `--stats` gets node and
// group counts, planned bytes and time per step. Verification after memplan
// includes the plan checker (passes/PlanCheck.h) where plan checks are on.
#pragma once

#include "ir/Graph.h"
#include "passes/MemoryPlan.h"
#include "passes/Optimizer.h"

#include <set>
#include <string>
#include <vector>

namespace graphc::passes {

/// The pipeline's step names, in order.
const std::vector<std::string> &passNames();

struct PipelineOptions {
  std::set<std::string> printBefore; ///< step names, or "all"
  std::set<std::string> printAfter;  ///< step names, or "all"
  std::string stopAfter;             ///< empty: run every step
  bool verify = true;                ///< run the verifier after each step
  int64_t planBatch = 256;           ///< the batch the memory plan is made for
  /// false: the evaluation graph (forward only): no autodiff or optimizer,
  /// and canonicalize drops the inputs nothing reads (labels, seed).
  bool training = true;
  std::string label; ///< printed in the IR headers, e.g. "evaluation"
  /// With training: which program the "optimizer" step makes of the
  /// gradient: the whole step, or one half of it (passes/Optimizer.h's
  /// gradientsProgram, or updateProgram, which skips autodiff).
  enum class Program { Step, Gradients, Update } program = Program::Step;
  /// Fusion's reductions into their chains (FusionOptions): off for cuda.
  bool fuseReductions = true;
  /// Fusion's max pools and their gradients into chains (FusionOptions::pools): off for cuda.
  bool fusePools = true;
};

struct PassStats {
  std::string name;
  int nodesBefore = 0, nodesAfter = 0, groups = 0;
  int64_t plannedBytes = 0;
  double ms = 0;
};

struct Pipeline {
  ir::Graph step;  ///< the training step after the last step run
  MemoryPlan plan; ///< empty unless memplan ran
  std::vector<PassStats> stats;
  std::vector<std::string> fusionNotes;
  std::string printed; ///< what printBefore/printAfter asked for
};

/// Runs the steps on the traced forward-and-loss graph (or, with
/// options.training false, on the traced evaluation graph).
Expected<Pipeline> runPipeline(const ir::Graph &forward, const OptimizerConfig &opt,
                               const PipelineOptions &options);

/// Checks that every name in `names` is a step (or "all").
Status checkPassNames(const std::set<std::string> &names, const std::string &flag);

/// `--stats` as a table.
std::string formatStats(const Pipeline &p);

} // namespace graphc::passes
