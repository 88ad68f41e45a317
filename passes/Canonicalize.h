// passes/Canonicalize.h - CSE, DCE, constant folding and free-layout cleanup.
//
// Run after autodiff and optimizer lowering, which build expressions
// mechanically: scalar constant expressions fold, identities (x*1, x+0,
// --x) disappear, transposes feeding a matmul become its transA/transB
// flags, and reshapes that do nothing or follow another reshape collapse.
#pragma once

#include "ir/Graph.h"

namespace graphc::passes {

/// The canonical form of `g`; computes the same outputs.
ir::Graph canonicalize(const ir::Graph &g);

} // namespace graphc::passes
