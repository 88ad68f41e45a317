// driver/Memory.h - what a compiled model will need in memory, known before
// anything is allocated, and the check that refuses a model that cannot fit.
//
// A model file can ask for more than any machine has (nn.Linear(1024, 1e8)
// is 400 GB of parameters); allocating first would end in std::bad_alloc or
// the kernel's OOM killer. The compiled model knows every size up front: the
// flat parameter buffer, one state buffer per optimizer slot, the memory
// plans' arenas at the largest batch, the output buffer and the initial
// values. The check compares their sum with what this process may still
// allocate (the machine's available memory, an address-space rlimit, a
// cgroup limit) or with `--max-memory`.
#pragma once

#include "ir/Error.h"
#include "runtime/CompiledModel.h"

#include <cstdint>
#include <string>

namespace graphc::driver {

/// Bytes a compiled model needs on the host, by kind.
struct MemoryEstimate {
  int64_t batch = 0;           ///< the batch the arenas are planned for
  uint64_t params = 0;         ///< the flat parameter buffer
  uint64_t optimizerState = 0; ///< one buffer per optimizer slot
  int slots = 0;               ///< optimizer state slots
  uint64_t stepArena = 0;      ///< the training step's intermediates (gradients included)
  uint64_t predictArena = 0;   ///< the evaluation pass's intermediates
  uint64_t other = 0;          ///< the output buffer and the initial values, copied in

  uint64_t total() const;
  /// "1.2 GiB: parameters 381.5 MiB, optimizer state 381.5 MiB (1 slot), ...".
  std::string str() const;
};

/// What `model` needs with its plans (made for the largest batch).
MemoryEstimate estimateMemory(const runtime::CompiledModel &model);

/// The memory limit that applies, in bytes, and where it comes from: `maxMemory`
/// (`--max-memory`) when not 0, else the least of the machine's available
/// memory (MemAvailable), the address-space rlimit left and the cgroup's
/// memory.max left. 0 when none is known.
struct MemoryLimit {
  uint64_t bytes = 0;
  std::string source; ///< "--max-memory", "the memory available on this machine", ...
};
MemoryLimit memoryLimit(uint64_t maxMemory);

/// An error, with the estimate's parts, when the estimate exceeds the limit.
Status checkMemory(const MemoryEstimate &estimate, const MemoryLimit &limit);

/// "381.5 MiB", "1.2 GiB", "512 bytes".
std::string formatBytes(uint64_t bytes);

} // namespace graphc::driver
