/* tests/rt_tsan_test.c - the threaded C runtime (thread pool, parallel ranges,
 * the GEMM and convolution drivers) under ThreadSanitizer, built with -fsanitize=thread by
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
static int64_t level = 1; /* the ISA level grt_gemm and grt_conv are told the micro-kernel has */

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
  grt_gemm(pool, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, n, micro, MR, NR, copies_of_a, level,
           epilogue, NULL, m, (m + n + k) % 2 ? GRT_BATCH_CHUNK : 0);
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
        fprintf(stderr,
                "FAIL: gemm %lld x %lld x %lld (trans %d %d, A packed %lld times): "
                "C[%lld][%lld] = %g, want %g\n",
                (long long)m, (long long)n, (long long)k, trans_a, trans_b, (long long)copies_of_a,
                (long long)i, (long long)j, c[i * n + j], want);
        bad = 1;
        break;
      }
    }
  free(a);
  free(b);
  free(c);
  return bad;
}

/* Compares `got` (n floats) with want + 1 (the epilogue) to 1e-5 of scale. */
static int compare(const char *what, const int64_t *geom, const float *got, const double *want,
                   const double *scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!(fabs(got[i] - (want[i] + 1)) <= 1e-5 * (scale[i] + 1))) {
      fprintf(stderr,
              "FAIL: conv %s, N %lld C %lld %lldx%lld O %lld kernel %lldx%lld: "
              "element %lld = %g, want %g\n",
              what, (long long)geom[1], (long long)geom[2], (long long)geom[3], (long long)geom[4],
              (long long)geom[5], (long long)geom[6], (long long)geom[7], (long long)i, got[i],
              want[i] + 1);
      return 1;
    }
  return 0;
}

/* The max pool of check_conv's pooled forward runs: k x k windows of
 * ptrs[0], the convolution's [n, o, oh, ow] result, into ptrs[1]. */
static int64_t pool_o, pool_oh, pool_ow, pool_k;
static void max_pool(void **ptrs, int64_t n, int64_t image, int64_t r0, int64_t r1) {
  (void)n;
  const float *y = ptrs[0];
  float *pooled = ptrs[1];
  const int64_t ph = pool_oh / pool_k, pw = pool_ow / pool_k;
  for (int64_t q = 0; q < pool_o; ++q)
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < pw; ++c) {
        float best = -INFINITY;
        for (int64_t dy = 0; dy < pool_k; ++dy)
          for (int64_t dx = 0; dx < pool_k; ++dx)
            best = fmaxf(
                best,
                y[((image * pool_o + q) * pool_oh + r * pool_k + dy) * pool_ow + c * pool_k + dx]);
        pooled[((image * pool_o + q) * ph + r) * pw + c] = best;
      }
}

/* grt_conv's forward with a k x k max pool after the epilogue: the result
 * as without it, and every pooled element written once, from it. */
static int check_conv_pool(grt_pool *pool, int64_t *geom, const float *x, const float *wt,
                           float *out, const double *y, const double *sy, int64_t k) {
  const int64_t n = geom[1], o = geom[5], oh = geom[12], ow = geom[13];
  const int64_t ph = oh / k, pw = ow / k, count = n * o * ph * pw;
  if (ph < 1 || pw < 1)
    return 0;
  float *pooled = malloc(sizeof(float) * (size_t)count);
  for (int64_t i = 0; i < count; ++i)
    pooled[i] = NAN;
  pool_o = o, pool_oh = oh, pool_ow = ow, pool_k = k;
  void *ptrs[2] = {out, pooled};
  grt_conv(pool, geom, x, wt, out, micro, MR, NR, copies_of_a, level, epilogue, max_pool, k, ptrs,
           n);
  int bad = compare("forward with a max pool", geom, out, y, sy, n * o * oh * ow);
  for (int64_t i = 0; i < count && !bad; ++i) {
    const int64_t c = i % pw, r = i / pw % ph, plane = i / (pw * ph);
    float want = -INFINITY;
    for (int64_t dy = 0; dy < k; ++dy)
      for (int64_t dx = 0; dx < k; ++dx)
        want = fmaxf(want, out[(plane * oh + r * k + dy) * ow + c * k + dx]);
    if (!(pooled[i] == want)) {
      fprintf(stderr, "FAIL: conv forward, %lldx%lld max pool: element %lld = %g, want %g\n",
              (long long)k, (long long)k, (long long)i, pooled[i], want);
      bad = 1;
    }
  }
  free(pooled);
  return bad;
}

/* grt_conv's three modes against a double loop over every tap. */
static int check_conv(grt_pool *pool, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o,
                      int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                      unsigned *rng) {
  const int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
  const int64_t nx = n * c * h * w, nw = o * c * kh * kw, ny = n * o * oh * ow;
  int64_t geom[GRT_CONV_GEOM] = {0, n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow};
  float *x = malloc(sizeof(float) * (size_t)nx), *wt = malloc(sizeof(float) * (size_t)nw);
  const int64_t most = nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw);
  float *dy = malloc(sizeof(float) * (size_t)ny), *out = malloc(sizeof(float) * (size_t)most);
  double *want = calloc((size_t)(nx + nw + ny), sizeof(double));
  double *scale = calloc((size_t)(nx + nw + ny), sizeof(double));
  double *y = want, *dw = want + ny, *dx = want + ny + nw;
  double *sy = scale, *sdw = scale + ny, *sdx = scale + ny + nw;
  for (int64_t i = 0; i < nx; ++i)
    x[i] = uniform(rng);
  for (int64_t i = 0; i < nw; ++i)
    wt[i] = uniform(rng);
  for (int64_t i = 0; i < ny; ++i)
    dy[i] = uniform(rng);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t q = 0; q < o; ++q)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * sh - ph + ky, ix = ox * sw - pw + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                  continue;
                const int64_t xi = ((b * c + ch) * h + iy) * w + ix;
                const int64_t wi = ((q * c + ch) * kh + ky) * kw + kx;
                const int64_t yi = ((b * o + q) * oh + oy) * ow + ox;
                y[yi] += (double)x[xi] * wt[wi];
                sy[yi] += fabs((double)x[xi] * wt[wi]);
                dx[xi] += (double)dy[yi] * wt[wi];
                sdx[xi] += fabs((double)dy[yi] * wt[wi]);
                dw[wi] += (double)dy[yi] * x[xi];
                sdw[wi] += fabs((double)dy[yi] * x[xi]);
              }
  int bad = 0;
  grt_conv(pool, geom, x, wt, out, micro, MR, NR, copies_of_a, level, epilogue, NULL, 0, NULL, n);
  bad |= compare("forward", geom, out, y, sy, ny);
  for (int64_t k = 2; k <= 3; ++k) /* exact and floor-mode tilings, one or more bands */
    bad |= check_conv_pool(pool, geom, x, wt, out, y, sy, k);
  geom[0] = 1;
  grt_conv(pool, geom, dy, wt, out, micro, MR, NR, copies_of_a, level, epilogue, NULL, 0, NULL, n);
  bad |= compare("input gradient", geom, out, dx, sdx, nx);
  geom[0] = 2;
  grt_conv(pool, geom, x, dy, out, micro, MR, NR, copies_of_a, level, epilogue, NULL, 0, NULL, n);
  bad |= compare("weight gradient", geom, out, dw, sdw, nw);
  free(x);
  free(wt);
  free(dy);
  free(out);
  free(want);
  free(scale);
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
      for (int t = 0; t < 8; ++t) {
        copies_of_a = t % 2 ? 4 : 1;
        level = t < 4 ? 1 : grt_cpu_level(); /* the SSE transposes, then AVX2's where it has them */
        failures +=
            check_gemm(pool, shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1 & 1, &rng);
      }
    /* Convolutions: strides and padding, depths past KC (C*kh*kw 270 and
     * O 260), more images than the weight gradient's chunks, and pixels
     * past a column block (18x18), both packings of A. */
    for (int t = 0; t < 2; ++t) {
      copies_of_a = t ? 4 : 1;
      level = t ? grt_cpu_level() : 1; /* AVX-512's packing where the CPU has it */
      failures += check_conv(pool, 5, 3, 9, 7, 6, 3, 3, 2, 1, 1, 0, &rng);
      failures += check_conv(pool, 9, 30, 6, 6, 10, 3, 3, 1, 1, 1, 1, &rng);
      failures += check_conv(pool, 2, 2, 4, 5, 260, 2, 2, 1, 1, 0, 1, &rng);
      failures += check_conv(pool, 3, 2, 20, 20, 3, 3, 3, 1, 1, 0, 0, &rng);
    }
    /* Many short parallel ranges: the pool's wake-up and completion path. */
    const int64_t total = 100000;
    int32_t *x = calloc((size_t)total, sizeof(int32_t));
    void *ptrs[1] = {x};
    for (int round = 0; round < 200; ++round)
      grt_parallel_range(pool, add_one, ptrs, 0, total, 1);
    for (int64_t i = 0; i < total; ++i)
      if (x[i] != 200) {
        fprintf(stderr,
                "FAIL: %d threads: element %lld of a parallel range was added %d times, "
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
  printf("ok: pools of 2-4 threads: GEMMs, convolutions and 200 parallel ranges each, no race "
         "reported\n");
  return 0;
}
