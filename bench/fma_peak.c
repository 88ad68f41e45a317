/* bench/fma_peak.c - the machine's measured single-precision FMA peak, the
 * ceiling graphc's GEMM figures are quoted against.
 *
 *   fma_peak [THREADS]      (default: one per core)
 *
 * For each vector width this CPU executes (AVX-512: 16 floats, AVX2 with
 * FMA: 8, and SSE2's separate multiply and add: 4), every thread runs a loop of independent fused multiply-adds on
 * 12 accumulators (enough to cover the FMA latency on two pipes); the best
 * of several runs is reported. Prints one JSON line per width:
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

__attribute__((target("avx512f"))) static void fma512(void) {
  __m512 acc[ACC], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < ACC; ++i)
    acc[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < ITERS; ++it)
    for (int i = 0; i < ACC; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  float s = 0;
  for (int i = 0; i < ACC; ++i)
    s += _mm512_reduce_add_ps(acc[i]);
  sink = s;
}

__attribute__((target("avx2,fma"))) static void fma256(void) {
  __m256 acc[ACC], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < ACC; ++i)
    acc[i] = _mm256_set1_ps((float)i);
  for (long it = 0; it < ITERS; ++it)
    for (int i = 0; i < ACC; ++i)
      acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float lanes[8], s = 0;
  for (int i = 0; i < ACC; ++i) {
    _mm256_storeu_ps(lanes, acc[i]);
    for (int l = 0; l < 8; ++l)
      s += lanes[l];
  }
  sink = s;
}

/* x86-64's baseline (graphc's generic ISA): SSE2, a multiply and an add. */
static void muladd128(void) {
  __m128 acc[ACC], a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (int i = 0; i < ACC; ++i)
    acc[i] = _mm_set1_ps((float)i);
  for (long it = 0; it < ITERS; ++it)
    for (int i = 0; i < ACC; ++i)
      acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  float lanes[4], s = 0;
  for (int i = 0; i < ACC; ++i) {
    _mm_storeu_ps(lanes, acc[i]);
    for (int l = 0; l < 4; ++l)
      s += lanes[l];
  }
  sink = s;
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
    printf("{\"isa\": \"avx2\", \"threads\": %d, \"gflops\": %.1f, \"per_core\": %.1f}\n",
           threads, g, g / threads);
  }
  double g = measure(muladd128, 4, threads);
  printf("{\"isa\": \"generic\", \"threads\": %d, \"gflops\": %.1f, \"per_core\": %.1f}\n",
         threads, g, g / threads);
  return 0;
}
