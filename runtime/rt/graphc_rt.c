/* runtime/rt/graphc_rt.c - thread pool, parallel ranges, the GEMM driver.
 *
 * The GEMM is blocked the Goto/BLIS way: each task owns an MC x NC block of
 * C, packs KC-deep slivers of op(A) (MR rows, k-major) and panels of op(B)
 * (NR columns), and sweeps the generated micro-kernel over them; after the
 * last KC block it runs the kernel group's epilogue on its block while the
 * block is still in cache. A task computes its block alone and in a fixed
 * order, so results do not depend on the thread count or on scheduling.
 */
#define _POSIX_C_SOURCE 200809L
#include "graphc_rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { KC = 256, MC = 96, NC = 384, RANGE_CHUNK = 16384, MAX_THREADS = 256 };

typedef struct {
  float *a, *b, *tile;
} scratch;

struct grt_pool {
  int size;
  pthread_t threads[MAX_THREADS];
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  uint64_t generation;
  int busy, stop;
  grt_task_fn fn;
  void *ctx;
  int64_t tasks;
  _Atomic int64_t next;
  scratch scratch[MAX_THREADS];
};

typedef struct {
  grt_pool *pool;
  int index;
} worker_arg;

static void drain(grt_pool *p, int thread) {
  for (int64_t t; (t = atomic_fetch_add(&p->next, 1)) < p->tasks;)
    p->fn(p->ctx, t, thread);
}

static void *worker(void *arg) {
  grt_pool *p = ((worker_arg *)arg)->pool;
  int index = ((worker_arg *)arg)->index;
  free(arg);
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->generation == seen)
      pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    drain(p, index);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0)
      pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
  }
}

grt_pool *grt_pool_create(int threads) {
  if (threads <= 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    threads = cores > 0 ? (int)cores : 1;
  }
  if (threads > MAX_THREADS)
    threads = MAX_THREADS;
  grt_pool *p = calloc(1, sizeof(grt_pool));
  if (!p)
    return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  p->size = 1;
  for (int t = 1; t < threads; ++t) {
    worker_arg *arg = malloc(sizeof(worker_arg));
    if (!arg)
      break;
    arg->pool = p;
    arg->index = t;
    if (pthread_create(&p->threads[t], NULL, worker, arg) != 0) {
      free(arg);
      break;
    }
    p->size = t + 1;
  }
  return p;
}

void grt_pool_destroy(grt_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int t = 1; t < p->size; ++t)
    pthread_join(p->threads[t], NULL);
  for (int t = 0; t < MAX_THREADS; ++t) {
    free(p->scratch[t].a);
    free(p->scratch[t].b);
    free(p->scratch[t].tile);
  }
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

int grt_pool_size(const grt_pool *p) { return p->size; }

void grt_pool_run(grt_pool *p, int64_t tasks, grt_task_fn fn, void *ctx) {
  if (tasks <= 0)
    return;
  if (p->size == 1 || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t)
      fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->tasks = tasks;
  atomic_store(&p->next, 0);
  p->busy = p->size - 1;
  ++p->generation;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  drain(p, 0);
  pthread_mutex_lock(&p->mu);
  while (p->busy > 0)
    pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

/* --- parallel ranges ------------------------------------------------------ */

typedef struct {
  grt_range_fn fn;
  void **ptrs;
  int64_t n, total, per;
} range_ctx;

static void range_task(void *arg, int64_t task, int thread) {
  (void)thread;
  range_ctx *r = arg;
  int64_t begin = task * r->per, end = begin + r->per;
  r->fn(r->ptrs, r->n, begin, end < r->total ? end : r->total);
}

void grt_parallel_range(grt_pool *p, grt_range_fn fn, void **ptrs, int64_t n,
                        int64_t total) {
  int64_t tasks = (total + RANGE_CHUNK - 1) / RANGE_CHUNK;
  if (tasks <= 1) {
    fn(ptrs, n, 0, total);
    return;
  }
  range_ctx r = {fn, ptrs, n, total, (total + tasks - 1) / tasks};
  grt_pool_run(p, tasks, range_task, &r);
}

/* --- GEMM --------------------------------------------------------------------- */

typedef struct {
  int64_t m, n, k, lda, ldb, ldc, trans_a, trans_b, mr, nr, batch, n_blocks;
  const float *a, *b;
  float *c;
  grt_micro_fn micro;
  grt_epilogue_fn epilogue;
  void **ptrs;
  grt_pool *pool;
} gemm_ctx;

static float *reserve(float **buf, size_t floats) {
  /* Grow-only per-thread buffers, 64-byte aligned; sizes are bounded by the
   * block constants, so the first call allocates them for good. */
  if (!*buf) {
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    *buf = aligned_alloc(64, bytes);
  }
  return *buf;
}

static void pack_a(const gemm_ctx *g, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                   float *dst) {
  const int64_t mr = g->mr;
  for (int64_t is = 0; is < mc; is += mr) {
    int64_t rows = mc - is < mr ? mc - is : mr;
    for (int64_t p = 0; p < kc; ++p) {
      float *d = dst + is * kc + p * mr;
      if (g->trans_a) {
        memcpy(d, g->a + (p0 + p) * g->lda + i0 + is, (size_t)rows * sizeof(float));
      } else {
        for (int64_t r = 0; r < rows; ++r)
          d[r] = g->a[(i0 + is + r) * g->lda + p0 + p];
      }
      for (int64_t r = rows; r < mr; ++r)
        d[r] = 0;
    }
  }
}

static void pack_b(const gemm_ctx *g, int64_t j0, int64_t nc, int64_t p0, int64_t kc,
                   float *dst) {
  const int64_t nr = g->nr;
  for (int64_t js = 0; js < nc; js += nr) {
    int64_t cols = nc - js < nr ? nc - js : nr;
    for (int64_t p = 0; p < kc; ++p) {
      float *d = dst + js * kc + p * nr;
      if (!g->trans_b) {
        memcpy(d, g->b + (p0 + p) * g->ldb + j0 + js, (size_t)cols * sizeof(float));
      } else {
        for (int64_t c = 0; c < cols; ++c)
          d[c] = g->b[(j0 + js + c) * g->ldb + p0 + p];
      }
      for (int64_t c = cols; c < nr; ++c)
        d[c] = 0;
    }
  }
}

static void gemm_task(void *arg, int64_t task, int thread) {
  const gemm_ctx *g = arg;
  scratch *s = &g->pool->scratch[thread];
  const int64_t mr = g->mr, nr = g->nr;
  const int64_t i0 = (task / g->n_blocks) * MC, j0 = (task % g->n_blocks) * NC;
  const int64_t mc = g->m - i0 < MC ? g->m - i0 : MC;
  const int64_t nc = g->n - j0 < NC ? g->n - j0 : NC;
  float *ap = reserve(&s->a, (size_t)((MC + mr) * KC));
  float *bp = reserve(&s->b, (size_t)((NC + nr) * KC));
  float *tile = reserve(&s->tile, (size_t)(mr * nr));
  if (g->k == 0)
    for (int64_t i = 0; i < mc; ++i)
      memset(g->c + (i0 + i) * g->ldc + j0, 0, (size_t)nc * sizeof(float));
  for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
    const int64_t kc = g->k - p0 < KC ? g->k - p0 : KC;
    const int64_t acc = p0 > 0;
    pack_b(g, j0, nc, p0, kc, bp);
    pack_a(g, i0, mc, p0, kc, ap);
    for (int64_t js = 0; js < nc; js += nr) {
      const int64_t cols = nc - js < nr ? nc - js : nr;
      for (int64_t is = 0; is < mc; is += mr) {
        const int64_t rows = mc - is < mr ? mc - is : mr;
        float *c = g->c + (i0 + is) * g->ldc + j0 + js;
        if (rows == mr && cols == nr) {
          g->micro(kc, ap + is * kc, bp + js * kc, c, g->ldc, acc);
          continue;
        }
        g->micro(kc, ap + is * kc, bp + js * kc, tile, nr, 0);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t q = 0; q < cols; ++q)
            c[r * g->ldc + q] = (acc ? c[r * g->ldc + q] : 0.0f) + tile[r * nr + q];
      }
    }
  }
  if (g->epilogue)
    g->epilogue(g->ptrs, g->batch, g->c, g->ldc, i0, i0 + mc, j0, j0 + nc);
}

void grt_gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, const float *a,
              int64_t lda, int64_t trans_a, const float *b, int64_t ldb, int64_t trans_b,
              float *c, int64_t ldc, grt_micro_fn micro, int64_t mr, int64_t nr,
              grt_epilogue_fn epilogue, void **ptrs, int64_t batch) {
  if (m <= 0 || n <= 0)
    return;
  gemm_ctx g = {m, n, k, lda, ldb, ldc, trans_a, trans_b, mr, nr, batch,
                (n + NC - 1) / NC, a, b, c, micro, epilogue, ptrs, pool};
  grt_pool_run(pool, ((m + MC - 1) / MC) * g.n_blocks, gemm_task, &g);
}
