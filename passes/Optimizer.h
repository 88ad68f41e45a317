// passes/Optimizer.h - the optimizer update lowered into the step graph.
//
// optim.sgd, optim.adagrad and optim.adam with exactly Torch7's update rules
// and defaults (DESIGN.md, "Semantics to match"), written as elementwise IR
// over the flat parameter buffer so that fusion makes the whole update one
// kernel. Optimizer state lives in flat buffers of the same size, one per
// slot (`state.v`, ...), and the step counter `step` counts updates done.
#pragma once

#include "ir/Graph.h"

#include <map>
#include <string>
#include <vector>

namespace graphc::passes {

struct OptimizerConfig {
  std::string name = "adagrad"; ///< "sgd", "adagrad" or "adam"
  double learningRate = 1e-3;
  double learningRateDecay = 0;
  double weightDecay = 0;
  double momentum = 0;  ///< sgd
  double dampening = 0; ///< sgd; Torch7's default is the momentum
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8; ///< adam

  /// Torch7's defaults overridden by the config table's entries; an error
  /// names an unknown optimizer or key.
  static Expected<OptimizerConfig> fromTorch(const std::string &name,
                                             const std::map<std::string, double> &config);
  /// The per-parameter state buffers this optimizer keeps.
  std::vector<std::string> stateSlots() const;
  /// `adagrad {learningRate = 0.001}` with every value in effect.
  std::string str() const;
};

/// The training step: `withGrad` (forward, loss and the flat `grad`) plus the
/// update. Inputs gain `step` f32[] and `state.<slot>` f32[P]; outputs are
/// `loss`, `output`, the updated `params` and `state.<slot>`, and `step` + 1.
ir::Graph lowerOptimizer(const ir::Graph &withGrad, const OptimizerConfig &config);

} // namespace graphc::passes
