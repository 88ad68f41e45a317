// passes/MemoryPlan.h - liveness-based buffer reuse for the fused step.
//
// Values that cross a kernel boundary are stored; values inside a kernel
// live in registers. Graph inputs and outputs are the caller's buffers.
// Views (parameter views, reshapes, each gradient's slot in the flat
// gradient) alias the buffer they view. Every other stored value gets an
// offset in one arena, reusing space whose previous value is dead
// (greedy, largest first); every buffer starts on a 64-byte boundary.
// Sizes depend on the batch, so a plan is made for the largest batch the
// executable will see. passes/PlanCheck.h checks a plan independently.
#pragma once

#include "ir/Graph.h"
#include "ir/MemoryPlan.h"

namespace graphc::passes {

/// The plan itself is data beside the graph (ir/MemoryPlan.h).
using ir::MemoryPlan;

/// How arena buffers are placed.
enum class Placement {
  Reuse,    ///< buffers whose lifetimes are disjoint may share bytes
  Separate, ///< every buffer its own bytes: the reference a plan is tested against
};

/// Plans the fused graph `g` for batches up to `batch`.
MemoryPlan planMemory(const ir::Graph &g, int64_t batch, Placement placement = Placement::Reuse);

} // namespace graphc::passes
