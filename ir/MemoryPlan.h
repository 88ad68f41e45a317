// ir/MemoryPlan.h - where every stored value of a fused graph lives: the
// memplan pass (passes/MemoryPlan.h) makes it, every backend uses it.
//
// Plain data beside the graph it describes, so that executors and code
// generators take a plan without seeing the pass that made it.
#pragma once

#include "ir/Graph.h"

#include <string>
#include <vector>

namespace graphc::ir {

struct MemoryPlan {
  int64_t batch = 0; ///< the largest batch the plan holds
  /// Per value: byte offset in the arena, or -1 when the value is not an
  /// arena buffer (kept in registers, a caller's buffer, or a view).
  std::vector<int64_t> offset;
  /// Per value: the value whose buffer it views (itself when it owns one).
  std::vector<ValueId> aliasOf;
  /// Per value: byte offset inside the buffer of aliasOf.
  std::vector<int64_t> aliasOffset;
  int64_t arenaBytes = 0;    ///< the arena with reuse
  int64_t totalBytes = 0;    ///< all stored intermediates without reuse
  int64_t peakBytes = 0;     ///< most intermediate bytes live at one time
  int64_t externalBytes = 0; ///< graph inputs and outputs

  std::string summary() const;
};

} // namespace graphc::ir
