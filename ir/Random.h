// ir/Random.h - the counter-based random numbers every part of graphc
// shares (ir/graphc_random.h, in C for the runtime), in graphc::ir.
#pragma once

#include "ir/graphc_random.h"

#include <cstdint>

namespace graphc::ir {

inline uint64_t mix64(uint64_t z) { return graphc_mix64(z); }

/// Uniform in [0, 1) with 24 random bits, exactly representable in float.
inline float uniform01(uint64_t seed, uint64_t salt, uint64_t i) {
  return graphc_uniform01(seed, salt, i);
}

/// Dropout's keep-mask value: 0 with probability p, else 1/(1-p).
inline float dropoutMask(uint64_t seed, uint64_t salt, uint64_t i, float p) {
  return uniform01(seed, salt, i) < p ? 0.0f : 1.0f / (1.0f - p);
}

} // namespace graphc::ir
