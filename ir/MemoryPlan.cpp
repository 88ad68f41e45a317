// ir/MemoryPlan.cpp - a plan's one-line summary.
#include "ir/MemoryPlan.h"

#include <fmt/format.h>

namespace graphc::ir {

std::string MemoryPlan::summary() const {
  auto mib = [](int64_t b) { return double(b) / (1024.0 * 1024.0); };
  return fmt::format("memory plan at batch {}: arena {:.2f} MiB (peak live "
                     "{:.2f} MiB, {:.2f} MiB without reuse), inputs and "
                     "outputs {:.2f} MiB",
                     batch, mib(arenaBytes), mib(peakBytes), mib(totalBytes), mib(externalBytes));
}

} // namespace graphc::ir
