// codegen/cpu/GatherOps.h - ops computed as "output element i gathers its
// inputs": convolutions and their gradients, pooling, general reductions,
// transposes, concatenation and slices, argmax. Each is its own kernel
// group, run over its elements in parallel like an elementwise kernel.
#pragma once

#include "ir/Graph.h"

namespace llvm {
class Value;
}

namespace graphc::codegen::cpu {

class Emitter;

/// The value of element `i` of node `v` (as a float).
llvm::Value *emitGather(Emitter &e, ir::ValueId v, llvm::Value *i);

} // namespace graphc::codegen::cpu
