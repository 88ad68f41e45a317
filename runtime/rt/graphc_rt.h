/* runtime/rt/graphc_rt.h - the small C runtime under every compiled step.
 *
 * Generated code (JIT or ahead-of-time) calls these for what is the same for
 * every model: a pthread pool, parallel loops over a kernel's elements, and
 * the packed, cache-blocked GEMM driver around a generated micro-kernel. It
 * is plain C11 with pthreads, so an ahead-of-time library needs nothing but
 * libc, libm and pthreads; graphc itself links the same file.
 */
#ifndef GRAPHC_RT_H
#define GRAPHC_RT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct grt_pool grt_pool;

/** A pool of `threads` workers in all, the caller included; 0: one per core. */
grt_pool *grt_pool_create(int threads);
void grt_pool_destroy(grt_pool *pool);
int grt_pool_size(const grt_pool *pool);

/** Runs fn(ctx, task, thread) for every task in [0, tasks); returns when done. */
typedef void (*grt_task_fn)(void *ctx, int64_t task, int thread);
void grt_pool_run(grt_pool *pool, int64_t tasks, grt_task_fn fn, void *ctx);

/** A range kernel: elements [begin, end) of its domain. */
typedef void (*grt_range_fn)(void **ptrs, int64_t n, int64_t begin, int64_t end);
/** Runs a range kernel over [0, total), split into chunks across the pool;
 *  each element costs about `cost` elements' work (1; a reduction's count). */
void grt_parallel_range(grt_pool *pool, grt_range_fn fn, void **ptrs, int64_t n, int64_t total,
                        int64_t cost);

/** C tile (ldc) = (accumulate ? C : 0) + Ap (kc x MR, k-major) * Bp (kc x NR).
 *  Each value of Ap is stored a_copies times in a row (grt_gemm's a_copies). */
typedef void (*grt_micro_fn)(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                             int64_t accumulate);
/** A kernel group's epilogue on rows [i0,i1) x columns [j0,j1) of C. */
typedef void (*grt_epilogue_fn)(void **ptrs, int64_t n, float *c, int64_t ldc, int64_t i0,
                                int64_t i1, int64_t j0, int64_t j1);

/** A max pool that follows a convolution's epilogue in its kernel group:
 *  the pooled rows [r0, r1) of every channel of image `image`. */
typedef void (*grt_pool_fn)(void **ptrs, int64_t n, int64_t image, int64_t r0, int64_t r1);

/** The best x86-64 ISA level this CPU executes: 4 (x86-64-v4: AVX-512 F, BW,
 *  CD, DQ, VL), 3 (x86-64-v3: AVX2, FMA, BMI2, ...), 2 or 1 (x86-64). Code
 *  built for a level must not run below it: it would die with SIGILL.
 *  GRAPHC_CPU_LEVEL=N in the environment lowers (never raises) the answer
 *  to N, to test the lower paths on a newer CPU. */
int grt_cpu_level(void);

/** The largest micro-kernel tile the GEMM driver blocks. */
#define GRT_MAX_MR 64
#define GRT_MAX_NR 256
/** The block of C the GEMM driver gives one task for an mr x nr tile: mc
 *  rows, a multiple of mr, by nc columns, a multiple of nr. Returns 0, or
 *  -1 when mr or nr is outside [1, GRT_MAX_MR] or [1, GRT_MAX_NR]. */
int grt_gemm_blocking(int64_t mr, int64_t nr, int64_t *mc, int64_t *nc);
/** The bytes of op(A) or of op(B) the GEMM driver packs at once: a chunk of
 *  the depth, in whole KC blocks (one at the least), packed before it is
 *  multiplied. `bytes` > 0 sets it for the whole process; the previous value
 *  is returned either way. The default (16 MiB) packs all of a layer's K,
 *  as a rule; the tests set it small to run many chunks. Results are the
 *  same bits at any value. */
int64_t grt_gemm_pack_budget(int64_t bytes);

/** C[m,n] = op(A)[m,k] op(B)[k,n]; A is stored [k,m] when trans_a, B [n,k]
 *  when trans_b. The epilogue, if any, runs on each finished block of C.
 *  `micro` reads A packed with each value repeated a_copies times (1 to
 *  GRT_MAX_A_COPIES): pre-broadcast, for an ISA without a broadcast load. */
#define GRT_MAX_A_COPIES 16
/** A sum over the samples of a batch (a weight or bias gradient) is taken in
 *  chunks of GRT_BATCH_CHUNK samples, each chunk summed on its own and the
 *  chunks added in a binary tree by chunk index (pairs, then pairs of
 *  pairs). A batch split into 2^j equal shares of whole chunks, one per
 *  process of a data-parallel run, then sums to the same bits as the whole
 *  batch does: each share's sum is a subtree, and two shares add as the
 *  tree's root does (runtime/Distributed.h). 128 makes the shares of 2
 *  processes at a batch of 256 or 512 exact; a GEMM block of KC = 256
 *  samples is then one pair, which the micro-kernel adds itself (a smaller
 *  chunk would cost explicit tile additions: 32 cost the seed MLP 8 %). */
#define GRT_BATCH_CHUNK 128
/** `k_chunk`: 0, or GRT_BATCH_CHUNK when k runs over the samples of the
 *  batch: then each KC-deep block of the depth is summed by chunks in the
 *  tree above. `isa_level` is the micro-kernel's x86-64 level (grt_cpu_level's):
 *  the packing transposes with AVX2 at 3 and AVX-512 at 4, where the CPU has
 *  them (the same bits at every level). */
void grt_gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
              int64_t trans_a, const float *b, int64_t ldb, int64_t trans_b, float *c, int64_t ldc,
              grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies, int64_t isa_level,
              grt_epilogue_fn epilogue, void **ptrs, int64_t batch, int64_t k_chunk);
/** out[j] = sum over i < rows of x[i * cols + j], the rows summed by
 *  GRT_BATCH_CHUNK in the tree of grt_gemm's k_chunk: the bias gradient
 *  next to a weight gradient. */
void grt_colsum(const float *x, int64_t rows, int64_t cols, float *out);

/** A convolution and its gradients on the same packed micro-kernel as
 *  grt_gemm. `geom` is {mode, N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH,
 *  OW}, always the forward convolution's geometry: x [N,C,H,W],
 *  w [O,C,kh,kw], y [N,O,OH,OW].
 *    mode 0, forward:         out = y  from in0 = x,  in1 = w;
 *    mode 1, input gradient:  out = dx from in0 = dy, in1 = w;
 *    mode 2, weight gradient: out = dw from in0 = x,  in1 = dy.
 *  The forward is an implicit GEMM (the im2col gather happens while packing
 *  each panel), the input gradient W^T dy into a bounded column buffer per
 *  thread, added back image by image (col2im); no memory grows with the
 *  batch. The epilogue runs on each finished block of the NCHW result as
 *  epilogue(ptrs, batch, out, P, i0, i1, n*R*P + q0, n*R*P + q1) for rows
 *  [i0, i1) (R channels) and pixels [q0, q1) (P per plane) of image n, so
 *  element (i, j) is out[i * ldc + j]; for dw, once over [O, C*kh*kw].
 *  With `pool` (mode 0 only: a max pool whose windows, `pool_rows` rows
 *  high, tile the output's planes), each task takes whole bands of
 *  pool_rows output rows of one image and, after the epilogue, calls
 *  pool(ptrs, batch, n, r0, r1) for the pooled rows its band makes.
 *  `isa_level` is the micro-kernel's x86-64 level (grt_cpu_level's): at 4
 *  the packing copies with AVX-512 too. */
#define GRT_CONV_GEOM 14
void grt_conv(grt_pool *pool, const int64_t *geom, const float *in0, const float *in1, float *out,
              grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies, int64_t isa_level,
              grt_epilogue_fn epilogue, grt_pool_fn pool_fn, int64_t pool_rows, void **ptrs,
              int64_t batch);

#ifdef __cplusplus
}
#endif

#endif
