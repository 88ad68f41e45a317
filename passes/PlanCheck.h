// passes/PlanCheck.h - an independent check of a memory plan.
//
// The planner's liveness and placement are subtle enough to be wrong at
// batch sizes nobody tried (a buffer rounded up into the next live one), and
// a wrong plan does not fail: it computes wrong gradients. This checker
// shares no code with passes/MemoryPlan.cpp. It replays the fused graph as
// the backends run it, one kernel group (or flat-pack copy) per step, notes
// the step each buffer's bytes are first written and last read, and checks:
//   - no two arena buffers live at the same step share a byte (a kernel
//     reads all its operands while it writes its results, so a buffer read
//     by a kernel and one written by it are both live at that step);
//   - every arena buffer lies inside the arena and starts on 64 bytes;
//   - memory is shared only by views (Param, Reshape, a gradient's slot in
//     its FlatPack): no kernel computes in place over its own operand;
//   - every value read across a kernel boundary has memory.
//
// It runs after the memplan pass in tests and debug builds, and in release
// builds with `--verify-plan`.
#pragma once

#include "passes/MemoryPlan.h"

#include <string>
#include <vector>

namespace graphc::passes {

/// Every problem of `plan` for `g`, one message each (empty: the plan is
/// sound). Messages name the values, their byte ranges and live ranges.
std::vector<std::string> planProblems(const ir::Graph &g, const MemoryPlan &plan);

/// Success, or the first problem (and how many there are in all).
Status checkPlan(const ir::Graph &g, const MemoryPlan &plan);

/// Whether plans are checked as they are made: on in debug builds; tests and
/// `--verify-plan` turn it on.
bool planChecksEnabled();
void enablePlanChecks(bool on);

/// When plan checks are enabled, checkPlan; a failure is an internal error.
/// The pipeline's verification calls it after memplan.
void requireSoundPlan(const ir::Graph &g, const MemoryPlan &plan);

} // namespace graphc::passes
