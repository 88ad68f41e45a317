// ir/Dot.h - a graph as Graphviz text, for `graphc compile --dot FILE`.
//
// Kernel groups are drawn as clusters labelled with their kind and the reason
// they fused; inputs, parameter views, gradients and optimizer state each
// get their own colour so the training step's structure reads at a glance.
#pragma once

#include "ir/Graph.h"

#include <string>
#include <utility>
#include <vector>

namespace graphc::ir {

std::string toDot(const Graph &g);

/// Several graphs in one drawing, each in a cluster with its label (the
/// training step and the evaluation pass of `graphc compile --dot`).
std::string toDot(const std::vector<std::pair<std::string, const Graph *>> &graphs);

} // namespace graphc::ir
