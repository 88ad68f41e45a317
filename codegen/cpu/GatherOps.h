// codegen/cpu/GatherOps.h - ops computed as "output element i gathers its
// inputs": pooling and its gradients, general reductions, transposes,
// concatenation and slices, argmax. Each is its own kernel group, run over
// its elements in parallel like an elementwise kernel. (Convolutions and
// their gradients run on the packed GEMM instead: grt_conv.)
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
