// codegen/cpu/GatherOps.h - ops computed as "output element i gathers its
// inputs": pooling and its gradients, general reductions, transposes,
// concatenation and slices, argmax. Each is its own kernel group, run over
// its elements in parallel like an elementwise kernel. (Convolutions and
// their gradients run on the packed GEMM instead: grt_conv.)
#pragma once

#include "ir/Graph.h"

#include <functional>
#include <vector>

namespace llvm {
class Value;
}

namespace graphc::codegen::cpu {

class Emitter;

/// The value of element `i` of node `v` (as a float).
llvm::Value *emitGather(Emitter &e, ir::ValueId v, llvm::Value *i);

/// The elements of `shape` that output `i` of a sum over `axes` reads, in
/// the order every CPU sum adds them: the kept axes fix a base, the summed
/// ones nest outermost first. With `wide` (the last axis summed), each
/// innermost run goes by lanes(at, 32) chunks, then lanes(at, 8), then
/// one(at) for the rest; else one(at) for every element. run(at) (if set)
/// comes first at the start of each innermost run.
void walkSum(Emitter &e, const ir::Shape &shape, const std::vector<int64_t> &axes, llvm::Value *i,
             bool wide, const std::function<void(llvm::Value *, int)> &lanes,
             const std::function<void(llvm::Value *)> &one,
             const std::function<void(llvm::Value *)> &run = {});

} // namespace graphc::codegen::cpu
