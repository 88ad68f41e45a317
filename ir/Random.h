// ir/Random.h - the counter-based random numbers every part of graphc shares.
//
// Dropout masks must be the same in the interpreter, the CPU code and the
// CUDA kernels, so the random value of element i is a pure function of
// (seed, salt, i): SplitMix64's finaliser over a mixed counter. It is cheap
// to evaluate anywhere, including inside generated kernels.
#pragma once

#include <cstdint>

namespace graphc::ir {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Uniform in [0, 1) with 24 random bits, exactly representable in float.
inline float uniform01(uint64_t seed, uint64_t salt, uint64_t i) {
  uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ULL + mix64(salt + 0x632be59bd9b4e019ULL) + i);
  return float(h >> 40) * (1.0f / 16777216.0f);
}

/// Dropout's keep-mask value: 0 with probability p, else 1/(1-p).
inline float dropoutMask(uint64_t seed, uint64_t salt, uint64_t i, float p) {
  return uniform01(seed, salt, i) < p ? 0.0f : 1.0f / (1.0f - p);
}

} // namespace graphc::ir
