// passes/Optimizer.h - the optimizer update lowered into the step graph.
//
// optim.sgd, optim.adagrad, optim.adam, optim.rmsprop, optim.adadelta and
// optim.nag with exactly Torch7's update rules, defaults and config keys
// (DESIGN.md, "Semantics to match"), written as elementwise IR over the flat
// parameter buffer so that fusion makes the whole update one kernel.
// Optimizer state lives in flat buffers of the same size, one per slot
// (`state.v`, ...; named as Torch7's state table names them), and the step
// counter `step` counts updates done.
//
// optim.nag evaluates the gradient at the look-ahead point x + momentum·v,
// as Torch7's does before it calls feval: the step's forward and backward
// read that point, while `params` stays Torch7's x.
#pragma once

#include "ir/Graph.h"

#include <map>
#include <string>
#include <vector>

namespace graphc::passes {

struct OptimizerConfig {
  /// "sgd", "adagrad", "adam", "rmsprop", "adadelta" or "nag"
  std::string name = "adagrad";
  double learningRate = 1e-3; ///< rmsprop 1e-2; adadelta has none (1)
  double learningRateDecay = 0;
  double weightDecay = 0;
  double momentum = 0;  ///< sgd; nag (0.9)
  double dampening = 0; ///< sgd; Torch7's default is the momentum
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8; ///< adam; rmsprop's epsilon
  double alpha = 0.99, initialMean = 0;              ///< rmsprop
  double rho = 0.9, eps = 1e-6;                      ///< adadelta

  /// Torch7's defaults overridden by the config table's entries; an error
  /// names an unknown optimizer or key.
  static Expected<OptimizerConfig> fromTorch(const std::string &name,
                                             const std::map<std::string, double> &config);
  /// The optimizers graphc lowers: "adadelta", "adagrad", ... (Torch7's names).
  static std::vector<std::string> names();
  /// The per-parameter state buffers this optimizer keeps.
  std::vector<std::string> stateSlots() const;
  /// `adagrad {learningRate = 0.001}` with every value in effect.
  std::string str() const;
};

/// The training step: `withGrad` (forward, loss and the flat `grad`) plus the
/// update. Inputs gain `step` f32[] and `state.<slot>` f32[P]; outputs are
/// `loss`, `output`, the updated `params` and `state.<slot>`, and `step` + 1.
ir::Graph lowerOptimizer(const ir::Graph &withGrad, const OptimizerConfig &config);

// The step split in two for data parallelism (DESIGN.md decision 12): each
// process runs `gradients` on its share of the global batch, the flat
// gradient buffers are averaged (one allreduce), then every process runs
// `update`. One gradients call and one update call compute what one step
// computes.

/// The gradients program: `withGrad` (forward, loss, output, the flat
/// `grad`) reading the extra input `offset` i32[] when it has Dropout (the
/// samples of the global batch before this share: masks are drawn per global
/// sample). With buffers (BatchNorm's running statistics) the new buffer
/// values are written into `grad`'s buffer tail, so that the same average
/// combines them; no `buffer.*` output remains. Outputs: loss, output, grad.
ir::Graph gradientsProgram(const ir::Graph &withGrad);

/// The update program of the traced forward graph `forward` (for its
/// parameter count and buffers): inputs params, grad, step, state.<slot>;
/// outputs params (grad's buffer tail copied into the buffers), state.<slot>
/// and step + 1: lowerOptimizer's update, one fused kernel. optim.nag (whose
/// gradient is taken at a look-ahead point) has no split form.
ir::Graph updateProgram(const ir::Graph &forward, const OptimizerConfig &config);

} // namespace graphc::passes
