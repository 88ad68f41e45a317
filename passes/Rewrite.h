// passes/Rewrite.h - the driver for local rewrites.
//
// A pass is a table of (op -> rule). The driver rebuilds the graph in
// topological order, keeping only nodes the outputs need (dead code goes)
// and letting node creation deduplicate (common subexpressions go). Each
// node, with its operands already rewritten, is offered to the rule for its
// op; a rule returns a replacement value or nothing. The driver repeats until
// the graph stops changing.
#pragma once

#include "ir/Graph.h"

#include <functional>
#include <map>
#include <optional>

namespace graphc::passes {

/// Offered a node whose operands live in `out`; returns a value of `out`
/// that replaces it, or nullopt to keep the node.
using Rule = std::function<std::optional<ir::ValueId>(ir::Graph &out, const ir::Node &node)>;
using RuleTable = std::map<ir::Op, Rule>;

/// One rebuild of `g` through `rules`, without dead nodes. Inputs are kept
/// unless `dropUnusedInputs`.
ir::Graph rebuild(const ir::Graph &g, const RuleTable &rules, bool dropUnusedInputs = false);

/// Rebuilds until the graph stops changing (at most `maxRounds` times).
ir::Graph rewriteToFixedPoint(const ir::Graph &g, const RuleTable &rules, int maxRounds = 16);

} // namespace graphc::passes
