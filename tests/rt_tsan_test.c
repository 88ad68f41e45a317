/* tests/rt_tsan_test.c - the threaded C runtime (thread pool, parallel ranges,
 * the GEMM driver) under ThreadSanitizer, built with -fsanitize=thread by
 * tests/CMakeLists.txt. A plain C micro-kernel stands in for the generated
 * one, so nothing here needs LLVM: what is checked is the runtime's own
 * synchronisation, with more threads than cores, pools reused across many
 * loops, and every result compared with a double product. TSan's report of
 * a race makes the run fail (halt_on_error), as does a wrong element.
 */
#include "runtime/rt/graphc_rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MR = 4, NR = 8 };
static int64_t copies_of_a = 1; /* the packing the micro-kernel expects */

/* C tile (ldc) = (accumulate ? C : 0) + Ap * Bp, Ap packed copies_of_a times. */
static void micro(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                  int64_t accumulate) {
  for (int64_t r = 0; r < MR; ++r)
    for (int64_t q = 0; q < NR; ++q) {
      float s = 0;
      for (int64_t p = 0; p < kc; ++p)
        s += ap[(p * MR + r) * copies_of_a] * bp[p * NR + q];
      c[r * ldc + q] = (accumulate ? c[r * ldc + q] : 0.0f) + s;
    }
}

/* Adds 1 to every element of its block: each element exactly once. */
static void epilogue(void **ptrs, int64_t n, float *c, int64_t ldc, int64_t i0, int64_t i1,
                     int64_t j0, int64_t j1) {
  (void)ptrs;
  (void)n;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j)
      c[i * ldc + j] += 1.0f;
}

static float uniform(unsigned *state) {
  *state = *state * 1103515245u + 12345u;
  return (float)((*state >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static int check_gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                      unsigned *rng) {
  float *a = malloc(sizeof(float) * (size_t)(m * k + 1));
  float *b = malloc(sizeof(float) * (size_t)(k * n + 1));
  float *c = malloc(sizeof(float) * (size_t)(m * n + 1));
  for (int64_t i = 0; i < m * k; ++i)
    a[i] = uniform(rng);
  for (int64_t i = 0; i < k * n; ++i)
    b[i] = uniform(rng);
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  grt_gemm(pool, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, n, micro, MR, NR, copies_of_a,
           epilogue, NULL, m);
  int bad = 0;
  for (int64_t i = 0; i < m && !bad; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = 1, scale = 1;
      for (int64_t p = 0; p < k; ++p) {
        double x = (double)(trans_a ? a[p * lda + i] : a[i * lda + p]) *
                   (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
        want += x;
        scale += fabs(x);
      }
      if (!(fabs(c[i * n + j] - want) <= 1e-5 * scale)) {
        fprintf(stderr, "FAIL: gemm %lld x %lld x %lld (trans %d %d, A packed %lld times): "
                        "C[%lld][%lld] = %g, want %g\n",
                (long long)m, (long long)n, (long long)k, trans_a, trans_b,
                (long long)copies_of_a, (long long)i, (long long)j, c[i * n + j], want);
        bad = 1;
        break;
      }
    }
  free(a);
  free(b);
  free(c);
  return bad;
}

static void add_one(void **ptrs, int64_t n, int64_t begin, int64_t end) {
  (void)n;
  int32_t *x = ptrs[0];
  for (int64_t i = begin; i < end; ++i)
    x[i] += 1;
}

int main(void) {
  int failures = 0;
  unsigned rng = 7;
  for (int threads = 2; threads <= 4; ++threads) {
    grt_pool *pool = grt_pool_create(threads);
    if (!pool || grt_pool_size(pool) != threads) {
      fprintf(stderr, "FAIL: a pool of %d threads\n", threads);
      return 1;
    }
    /* Shapes with several row and column blocks, edge tiles, more than one
     * depth block (K > 256), and loops back to back on the same pool. */
    const int64_t shapes[][3] = {{200, 264, 70}, {129, 257, 300}, {5, 3, 2}, {64, 1000, 17}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s)
      for (int t = 0; t < 4; ++t) {
        copies_of_a = t % 2 ? 4 : 1;
        failures += check_gemm(pool, shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, &rng);
      }
    /* Many short parallel ranges: the pool's wake-up and completion path. */
    const int64_t total = 100000;
    int32_t *x = calloc((size_t)total, sizeof(int32_t));
    void *ptrs[1] = {x};
    for (int round = 0; round < 200; ++round)
      grt_parallel_range(pool, add_one, ptrs, 0, total);
    for (int64_t i = 0; i < total; ++i)
      if (x[i] != 200) {
        fprintf(stderr, "FAIL: %d threads: element %lld of a parallel range was added %d times, "
                        "not 200\n",
                threads, (long long)i, x[i]);
        ++failures;
        break;
      }
    free(x);
    grt_pool_destroy(pool);
  }
  if (failures)
    return 1;
  printf("ok: pools of 2-4 threads: GEMMs and 200 parallel ranges each, no race reported\n");
  return 0;
}
