// passes/Autodiff.h - reverse-mode automatic differentiation as a graph pass.
//
// One VJP rule per op (passes/Autodiff.cpp holds the table), applied in
// reverse topological order from the loss. Gradient accumulation (sum over a
// value's uses) and un-broadcasting (summing a gradient back to an operand's
// shape) are done once, generically, so each rule only states its math.
// Only values on a path from a requested input to the loss get gradients.
#pragma once

#include "ir/Graph.h"

#include <vector>

namespace graphc::passes {

/// Appends to `g` the gradient of the scalar `loss` with respect to each of
/// `wrt`; -1 for a value the loss does not depend on.
std::vector<ir::ValueId> gradients(ir::Graph &g, ir::ValueId loss,
                                   const std::vector<ir::ValueId> &wrt);

/// The training graph's backward pass: a copy of the forward-and-loss graph
/// plus `grad` f32[P], the gradient of `loss` for the whole flat parameter
/// buffer (each `param` view's gradient packed at its offset).
ir::Graph autodiff(const ir::Graph &forward);

} // namespace graphc::passes
