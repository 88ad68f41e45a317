// ir/Dot.h - a graph as Graphviz text, for `graphc compile --dot FILE`.
//
// Kernel groups are drawn as clusters labelled with their kind and the reason
// they fused; inputs, parameter views, gradients and optimizer state each
// get their own colour so the training step's structure reads at a glance.
#pragma once

#include "ir/Graph.h"

#include <string>

namespace graphc::ir {

std::string toDot(const Graph &g);

} // namespace graphc::ir
