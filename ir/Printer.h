// ir/Printer.h - the textual IR.
//
//   graph @mlp {
//     %x = input {name = "x"} : f32[N,1,32,32]
//     %3 = matmul %2, %1 {transB = true} : f32[N,1000]
//     kernel @k0 gemm "bias and ReLU as GEMM epilogues" {
//       ...
//     }
//     return loss = %12, output = %11
//   }
//
// Inputs are printed by name, every other value by its node index. The text
// parses back (ir/Parser.h) to a graph that prints identically.
#pragma once

#include "ir/Graph.h"

#include <string>

namespace graphc::ir {

/// The whole graph in the textual IR.
std::string print(const Graph &g);
/// How a value is spelled in the textual IR (`%x`, `%12`).
std::string valueName(const Graph &g, ValueId v);
/// One node as its line of textual IR, without indentation.
std::string printNode(const Graph &g, ValueId v);

} // namespace graphc::ir
