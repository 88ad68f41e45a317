/* bench/fma_peak.c - the machine's measured single-precision FMA peak, the
 * ceiling graphc's GEMM figures are quoted against.
 *
 *   fma_peak [THREADS]      (default: one per core)
 *
 * For each vector width this CPU executes (AVX-512: 16 floats, AVX2 with
 * FMA: 8, and SSE2's separate multiply and add: 4), every thread runs a loop of independent fused
 * multiply-adds on 12 accumulators (enough to cover the FMA latency on two pipes); the best of
 * several runs is reported. Prints one JSON line per width:
 * {"isa": "avx512", "threads": 2, "gflops": 197.3, "per_core": 98.6}.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { ACC = 12, ITERS = 20 * 1000 * 1000, RUNS = 5 };

static volatile float sink;

/* Twelve independent accumulators, named so that they stay in registers
 * (an array would go through memory on every FMA). */
#define ACCUMULATE(T, SET1, STEP, ADD)                                                             \
  T c0 = SET1(0), c1 = SET1(1), c2 = SET1(2), c3 = SET1(3), c4 = SET1(4), c5 = SET1(5),            \
    c6 = SET1(6), c7 = SET1(7), c8 = SET1(8), c9 = SET1(9), c10 = SET1(10), c11 = SET1(11);        \
  const T a = SET1(0.999999f), b = SET1(1e-7f);                                                    \
  for (long it = 0; it < ITERS; ++it) {                                                            \
    c0 = STEP(c0, a, b);                                                                           \
    c1 = STEP(c1, a, b);                                                                           \
    c2 = STEP(c2, a, b);                                                                           \
    c3 = STEP(c3, a, b);                                                                           \
    c4 = STEP(c4, a, b);                                                                           \
    c5 = STEP(c5, a, b);                                                                           \
    c6 = STEP(c6, a, b);                                                                           \
    c7 = STEP(c7, a, b);                                                                           \
    c8 = STEP(c8, a, b);                                                                           \
    c9 = STEP(c9, a, b);                                                                           \
    c10 = STEP(c10, a, b);                                                                         \
    c11 = STEP(c11, a, b);                                                                         \
    __asm__ volatile("" ::: "memory");                                                             \
  }                                                                                                \
  T sum = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));                       \
  sum = ADD(sum, ADD(ADD(c8, c9), ADD(c10, c11)))

__attribute__((target("avx512f"))) static void fma512(void) {
  ACCUMULATE(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
  sink = _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) static void fma256(void) {
  ACCUMULATE(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  sink = lanes[0] + lanes[7];
}

/* x86-64's baseline (graphc's generic ISA): SSE2, a multiply and an add. */
#define MULADD128(x, a, b) _mm_add_ps(_mm_mul_ps(x, a), b)
static void muladd128(void) {
  ACCUMULATE(__m128, _mm_set1_ps, MULADD128, _mm_add_ps);
  float lanes[4];
  _mm_storeu_ps(lanes, sum);
  sink = lanes[0] + lanes[3];
}

static void *run(void *fn) {
  ((void (*)(void))fn)();
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* GFLOP/s of `threads` threads each running fn (2 flops per lane per FMA). */
static double measure(void (*fn)(void), int width, int threads) {
  double best = 0;
  for (int r = 0; r < RUNS; ++r) {
    pthread_t t[256];
    double t0 = now();
    for (int i = 0; i < threads; ++i)
      pthread_create(&t[i], NULL, run, (void *)fn);
    for (int i = 0; i < threads; ++i)
      pthread_join(t[i], NULL);
    double gflops = 2.0 * width * ACC * (double)ITERS * threads / (now() - t0) / 1e9;
    if (gflops > best)
      best = gflops;
  }
  return best;
}

int main(int argc, char **argv) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = argc > 1 ? atoi(argv[1]) : (int)(cores > 0 ? cores : 1);
  if (threads < 1 || threads > 256) {
    fprintf(stderr, "usage: fma_peak [THREADS (1-256)]\n");
    return 2;
  }
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    double g = measure(fma512, 16, threads);
    printf("{\"isa\": \"avx512\", \"threads\": %d, \"gflops\": %.1f, \"per_core\": %.1f}\n",
           threads, g, g / threads);
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    double g = measure(fma256, 8, threads);
    printf("{\"isa\": \"avx2\", \"threads\": %d, \"gflops\": %.1f, \"per_core\": %.1f}\n", threads,
           g, g / threads);
  }
  double g = measure(muladd128, 4, threads);
  printf("{\"isa\": \"generic\", \"threads\": %d, \"gflops\": %.1f, \"per_core\": %.1f}\n", threads,
         g, g / threads);
  return 0;
}
