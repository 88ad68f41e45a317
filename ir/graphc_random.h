/* ir/graphc_random.h - graphc's counter-based random numbers, written once.
 *
 * Dropout masks and initial weights must be the same in the interpreter, the
 * JIT's CPU code, the CUDA kernels and the C runtime that `--emit lib` ships,
 * so the random value of element i is a pure function of (seed, salt, i):
 * SplitMix64's finaliser over a mixed counter. This header is C (the runtime
 * in runtime/rt/ includes it) and C++ (ir/Random.h wraps it); the LLVM
 * emitter (codegen/cpu/Emitter.cpp) and the CUDA printer
 * (codegen/cuda/CudaSource.cpp) generate the same arithmetic from these
 * constants, and the tests compare every one of them with this code.
 */
#ifndef GRAPHC_IR_RANDOM_H
#define GRAPHC_IR_RANDOM_H

#include <stdint.h>

/* SplitMix64's finaliser: two multipliers. */
#define GRAPHC_MIX64_M1 0xbf58476d1ce4e5b9ULL
#define GRAPHC_MIX64_M2 0x94d049bb133111ebULL
/* The counter: seed * GRAPHC_SEED_MUL + key(salt) + i. */
#define GRAPHC_SEED_MUL 0x9e3779b97f4a7c15ULL
#define GRAPHC_SALT_ADD 0x632be59bd9b4e019ULL

static inline uint64_t graphc_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * GRAPHC_MIX64_M1;
  z = (z ^ (z >> 27)) * GRAPHC_MIX64_M2;
  return z ^ (z >> 31);
}

/* The part of the counter that depends on the salt only (a constant of each
 * generated kernel). */
static inline uint64_t graphc_salt_key(uint64_t salt) {
  return graphc_mix64(salt + GRAPHC_SALT_ADD);
}

/* Uniform in [0, 1) with 24 random bits, exactly representable in float. */
static inline float graphc_uniform01(uint64_t seed, uint64_t salt, uint64_t i) {
  uint64_t h = graphc_mix64(seed * GRAPHC_SEED_MUL + graphc_salt_key(salt) + i);
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/* The per-step seed a training step's Dropout masks are drawn from: a pure
 * function of the run's seed and the step counter, in [0, 2^31). */
static inline int32_t graphc_step_seed(uint64_t seed, int64_t step) {
  return (int32_t)(graphc_mix64(seed * GRAPHC_SEED_MUL + (uint64_t)step) & 0x7fffffff);
}

#endif
