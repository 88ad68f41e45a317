// ir/Parser.h - textual IR back to a graph.
//
// Accepts exactly what ir/Printer.h writes, so tests can start in the middle
// of the pipeline from IR text. Every node's written type is checked against
// the inferred one; errors carry `file:line:col`.
#pragma once

#include "ir/Graph.h"

#include <string>
#include <string_view>

namespace graphc::ir {

/// Parses one `graph @name { ... }`; `file` names the source in diagnostics.
Expected<Graph> parseGraph(std::string_view text, const std::string &file = "<ir>");

} // namespace graphc::ir
