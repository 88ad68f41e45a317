/* bench/conv_layout.c - the blocked layout graphc did not choose, measured.
 *
 * Issue 14 asks for the layout that is fastest inside a convolution's
 * kernel group: NCHW, or a blocked NCHW16c. graphc keeps NCHW and runs a
 * convolution as an implicit GEMM (its packed micro-kernel, the im2col
 * gather in the packing). This is the other choice, as oneDNN makes it: a
 * direct convolution over NCHW16c (16 channels innermost, the vector
 * width of AVX-512), each output vector of 16 channels of one pixel a
 * register, 16 pixels at a time, every input value broadcast into the
 * fused multiply-adds straight from the reordered input, no packing. The
 * model's tensors are NCHW, so the input is reordered into NCHW16c (zero
 * padded) and the output written back as NCHW through 16 x 16 transposes,
 * as a kernel group would have to at its edges.
 *
 * One thread, 3x3 kernel, pad 1, stride 1 (VGG's layers); C and O
 * multiples of 16, W a multiple of 16 or a divisor of it. Prints one JSON
 * line: the median of `reps` runs of the reorder and the convolution, and
 * the largest error against a double-precision loop at 500 outputs.
 * bench/conv_layout.sh runs it next to graphc's own convolutions.
 *
 *   conv_layout N C HW O [reps]     (built with -O3 -mavx512f)
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { V = 16, K = 3, PAD = 1 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* r[j] lane i = r[i] lane j. */
static void transpose_16x16(__m512 r[V]) {
  __m512 t[V];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    r[4 * k] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    r[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    r[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    r[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < 4; ++i) {
      t[8 * k + i] = _mm512_shuffle_f32x4(r[8 * k + i], r[8 * k + 4 + i], 0x88);
      t[8 * k + 4 + i] = _mm512_shuffle_f32x4(r[8 * k + i], r[8 * k + 4 + i], 0xDD);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
  }
}

static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: conv_layout N C HW O [reps]\n");
    return 2;
  }
  const int64_t n = atoll(argv[1]), c = atoll(argv[2]), h = atoll(argv[3]), o = atoll(argv[4]);
  const int reps = argc > 5 ? atoi(argv[5]) : 5;
  const int64_t w = h, hp = h + 2 * PAD, wp = w + 2 * PAD, cb = c / V, ob = o / V;
  /* Output pixels per register block: 16 along a row, or whole rows. */
  const int64_t rw = w < V ? w : V, rows = V / rw;
  if (n < 1 || c % V || o % V || (w % V && V % w) || h % rows || reps < 1 || reps > 99) {
    fprintf(stderr, "conv_layout: C and O multiples of 16, HW a multiple or divisor of 16\n");
    return 2;
  }
  float *x = aligned_alloc(64, (size_t)(n * c * h * w) * 4);
  float *wt = aligned_alloc(64, (size_t)(o * c * K * K) * 4);
  float *y = aligned_alloc(64, (size_t)(n * o * h * w) * 4);
  float *xb = aligned_alloc(64, (size_t)(n * cb * hp * wp * V) * 4);
  float *wb = aligned_alloc(64, (size_t)(o * c * K * K) * 4);
  if (!x || !wt || !y || !xb || !wb) {
    fprintf(stderr, "conv_layout: out of memory\n");
    return 1;
  }
  for (int64_t i = 0; i < n * c * h * w; ++i)
    x[i] = (float)((uint64_t)i * 2654435761u % 1000) / 1000.0f - 0.5f;
  for (int64_t i = 0; i < o * c * K * K; ++i)
    wt[i] = (float)((uint64_t)i * 40503u % 1000) / 1000.0f - 0.5f;
  int64_t off[V]; /* register i's pixel in the block, in NCHW16c floats */
  for (int i = 0; i < V; ++i)
    off[i] = (i / rw * wp + i % rw) * V;
  double reorder[99], conv[99];
  for (int rep = 0; rep < reps; ++rep) {
    const double t0 = now();
    /* NCHW -> N, C/16, H+2, W+2, 16, zero padded; the weights as
     * [O/16][C/16][kh][kw][c 16][o 16]. */
    memset(xb, 0, (size_t)(n * cb * hp * wp * V) * 4);
    for (int64_t img = 0; img < n; ++img)
      for (int64_t b = 0; b < cb; ++b)
        for (int64_t row = 0; row < h; ++row) {
          float *d = xb + (((img * cb + b) * hp + row + PAD) * wp + PAD) * V;
          const float *s = x + ((img * c + b * V) * h + row) * w;
          for (int64_t col = 0; col < w; ++col)
            for (int64_t ch = 0; ch < V; ++ch)
              d[col * V + ch] = s[ch * h * w + col];
        }
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t ic = 0; ic < c; ++ic)
        for (int64_t t = 0; t < K * K; ++t)
          wb[(((oc / V * cb + ic / V) * K * K + t) * V + ic % V) * V + oc % V] =
              wt[(oc * c + ic) * K * K + t];
    const double t1 = now();
    for (int64_t img = 0; img < n; ++img)
      for (int64_t q = 0; q < ob; ++q)
        for (int64_t oy = 0; oy < h; oy += rows)
          for (int64_t ox = 0; ox < w; ox += rw) {
            __m512 acc[V];
            for (int i = 0; i < V; ++i)
              acc[i] = _mm512_setzero_ps();
            for (int64_t b = 0; b < cb; ++b)
              for (int64_t ky = 0; ky < K; ++ky) {
                const float *in = xb + (((img * cb + b) * hp + oy + ky) * wp + ox) * V;
                const float *f = wb + ((q * cb + b) * K + ky) * K * V * V;
                for (int64_t kx = 0; kx < K; ++kx)
                  for (int64_t ch = 0; ch < V; ++ch) {
                    const __m512 fv = _mm512_load_ps(f + (kx * V + ch) * V);
                    const float *at = in + kx * V + ch;
                    for (int i = 0; i < V; ++i)
                      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(at[off[i]]), fv, acc[i]);
                  }
              }
            transpose_16x16(acc); /* acc[k]: channel q*16 + k at the block's 16 pixels */
            for (int k = 0; k < V; ++k)
              _mm512_storeu_ps(y + ((img * o + q * V + k) * h + oy) * w + ox, acc[k]);
          }
    const double t2 = now();
    reorder[rep] = (t1 - t0) * 1e3;
    conv[rep] = (t2 - t1) * 1e3;
  }
  double worst = 0;
  srand(1);
  for (int s = 0; s < 500; ++s) {
    const int64_t img = rand() % n, oc = rand() % o, oy = rand() % h, ox = rand() % w;
    double want = 0, scale = 0;
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t ky = 0; ky < K; ++ky)
        for (int64_t kx = 0; kx < K; ++kx) {
          const int64_t iy = oy + ky - PAD, ix = ox + kx - PAD;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w)
            continue;
          const double p = (double)x[((img * c + ic) * h + iy) * w + ix] *
                           wt[(oc * c + ic) * K * K + ky * K + kx];
          want += p;
          scale += fabs(p);
        }
    const double err = fabs(y[((img * o + oc) * h + oy) * w + ox] - want) / (scale + 1e-30);
    worst = err > worst ? err : worst;
  }
  qsort(reorder, (size_t)reps, sizeof(double), cmp);
  qsort(conv, (size_t)reps, sizeof(double), cmp);
  const double flops = 2.0 * (double)(n * o * h * w * c * K * K);
  const double r = reorder[reps / 2], t = conv[reps / 2];
  printf("{\"layout\": \"NCHW16c direct\", \"n\": %lld, \"c\": %lld, \"hw\": %lld, \"o\": %lld, "
         "\"reorder_ms\": %.2f, \"conv_ms\": %.2f, \"total_ms\": %.2f, \"conv_gflops\": %.1f, "
         "\"max_rel_err\": %.2g}\n",
         (long long)n, (long long)c, (long long)h, (long long)o, r, t, r + t, flops / t / 1e6,
         worst);
  return worst < 1e-4 ? 0 : 1;
}
