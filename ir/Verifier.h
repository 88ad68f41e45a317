// ir/Verifier.h - rechecks every invariant of a graph.
//
// Runs after every pass in tests and debug builds: operands defined before
// use, each node's type equal to what its typing rule infers, unique input
// names, valid outputs and kernel groups. A failure names the node.
#pragma once

#include "ir/Graph.h"

namespace graphc::ir {

/// Success, or a message naming the first node that breaks an invariant.
Status verify(const Graph &g);

} // namespace graphc::ir
