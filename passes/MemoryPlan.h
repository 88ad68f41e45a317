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

#include <string>
#include <vector>

namespace graphc::passes {

struct MemoryPlan {
  int64_t batch = 0;
  /// Per value: byte offset in the arena, or -1 when the value is not an
  /// arena buffer (kept in registers, a caller's buffer, or a view).
  std::vector<int64_t> offset;
  /// Per value: the value whose buffer it views (itself when it owns one).
  std::vector<ir::ValueId> aliasOf;
  /// Per value: byte offset inside the buffer of aliasOf.
  std::vector<int64_t> aliasOffset;
  int64_t arenaBytes = 0;  ///< the arena with reuse
  int64_t totalBytes = 0;  ///< all stored intermediates without reuse
  int64_t peakBytes = 0;   ///< most intermediate bytes live at one time
  int64_t externalBytes = 0; ///< graph inputs and outputs

  std::string summary() const;
};

/// How arena buffers are placed.
enum class Placement {
  Reuse,    ///< buffers whose lifetimes are disjoint may share bytes
  Separate, ///< every buffer its own bytes: the reference a plan is tested against
};

/// Plans the fused graph `g` for batches up to `batch`.
MemoryPlan planMemory(const ir::Graph &g, int64_t batch,
                      Placement placement = Placement::Reuse);

} // namespace graphc::passes
