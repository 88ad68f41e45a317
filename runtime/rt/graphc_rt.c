/* runtime/rt/graphc_rt.c - thread pool, parallel ranges, the GEMM driver.
 *
 * The GEMM is blocked the Goto/BLIS way: for each KC-deep block, the threads
 * first pack op(B) into NR-column panels and op(A) into MR-row slivers
 * (k-major) together, then each task takes a block of C (whole MR x NR tiles: grt_gemm_blocking)
 * and sweeps the generated micro-kernel over its slivers and panels; after the last KC block a task
 * runs the kernel group's epilogue on its block while the block is still in cache. Every element of
 * C is summed by one task in a fixed order, so results do not depend on the thread count or on
 * scheduling.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define _POSIX_C_SOURCE 200809L
#include "graphc_rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { KC = 256, MC = 128, NC = 256, RANGE_CHUNK = 16384, MAX_THREADS = 256 };

typedef struct {
  float *tile;
  size_t tile_size;
} scratch;

/* A grow-only buffer that ends flush against a PROT_NONE page and starts
 * right after another one, so that a packing or micro-kernel bug that
 * reads or writes outside the packed operands faults at once instead of
 * reading a neighbour's data. */
typedef struct {
  char *map;     /* the whole mapping, guards included */
  size_t mapped; /* its length */
  float *data;
  size_t floats;
} guarded;

struct grt_pool {
  int size;
  pthread_t threads[MAX_THREADS];
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int stop;
  /* The current loop. `next` holds the loop's generation in its high 32 bits
   * and the next unclaimed task in its low bits, so a worker that wakes late
   * can never claim a task of a later loop with an earlier loop's function. */
  uint64_t generation;
  grt_task_fn fn;
  void *ctx;
  int64_t tasks;
  _Atomic uint64_t next;
  _Atomic int64_t completed;
  _Atomic uint64_t published; /* the generation workers may start */
  scratch scratch[MAX_THREADS];
  guarded packed_a, packed_b; /* op(A) and op(B) packed, shared by the threads */
};

typedef struct {
  grt_pool *pool;
  int index;
} worker_arg;

static size_t page_size(void) {
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? (size_t)page : 4096;
}

/* Returns `floats` floats that end exactly at the trailing guard page,
 * growing the mapping when it is too small; NULL when out of memory. */
static float *guarded_reserve(guarded *g, size_t floats) {
  const size_t page = page_size();
  size_t bytes = floats * sizeof(float);
  if (g->floats < floats) {
    if (g->map)
      munmap(g->map, g->mapped);
    size_t body = (bytes + page - 1) / page * page;
    g->mapped = body + 2 * page;
    g->map = mmap(NULL, g->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
      g->map = NULL;
      g->floats = 0;
      g->mapped = 0;
      return NULL;
    }
    mprotect(g->map, page, PROT_NONE);
    mprotect(g->map + page + body, page, PROT_NONE);
    g->floats = body / sizeof(float);
  }
  /* The last `floats` floats before the trailing guard. */
  return (float *)(g->map + g->mapped - page) - floats;
}

static void guarded_release(guarded *g) {
  if (g->map)
    munmap(g->map, g->mapped);
  g->map = NULL;
  g->floats = g->mapped = 0;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Claims and runs tasks of loop `gen` until none is left. */
static void drain(grt_pool *p, uint64_t gen, grt_task_fn fn, void *ctx, int64_t tasks, int thread) {
  uint64_t v = atomic_load(&p->next);
  for (;;) {
    if ((v >> 32) != (gen & 0xffffffffu) || (int64_t)(v & 0xffffffffu) >= tasks)
      return;
    if (!atomic_compare_exchange_weak(&p->next, &v, v + 1))
      continue;
    fn(ctx, (int64_t)(v & 0xffffffffu), thread);
    atomic_fetch_add(&p->completed, 1);
    v = atomic_load(&p->next);
  }
}

static void *worker(void *arg) {
  grt_pool *p = ((worker_arg *)arg)->pool;
  int index = ((worker_arg *)arg)->index;
  free(arg);
  uint64_t seen = 0;
  for (;;) {
    /* A step launches its loops back to back: spin briefly for the next one
     * before sleeping, so most wake-ups cost no system call. */
    for (int spin = 0; spin < 4000 && atomic_load(&p->published) == seen; ++spin)
      cpu_relax();
    pthread_mutex_lock(&p->mu);
    while (!p->stop && atomic_load(&p->published) == seen)
      pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = p->generation;
    grt_task_fn fn = p->fn;
    void *ctx = p->ctx;
    int64_t tasks = p->tasks;
    pthread_mutex_unlock(&p->mu);
    drain(p, seen, fn, ctx, tasks, index);
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
  for (int t = 0; t < MAX_THREADS; ++t)
    free(p->scratch[t].tile);
  guarded_release(&p->packed_a);
  guarded_release(&p->packed_b);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
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
  uint64_t gen = ++p->generation;
  p->fn = fn;
  p->ctx = ctx;
  p->tasks = tasks;
  atomic_store(&p->completed, 0);
  atomic_store(&p->next, (gen & 0xffffffffu) << 32);
  atomic_store(&p->published, gen);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  /* The caller works too; it waits only for tasks other threads claimed,
   * never for a worker that has not woken up. */
  drain(p, gen, fn, ctx, tasks, 0);
  for (int spin = 0; atomic_load(&p->completed) < tasks; ++spin)
    if (spin < 20000)
      cpu_relax();
    else
      sched_yield();
}

/* --- GRAPHC_PROFILE=1: time per GEMM shape and per range kernel ------------ */

#include <stdio.h>
#include <time.h>

typedef struct {
  const void *key;
  int64_t m, n, k, total;
  double seconds;
  int64_t calls;
} prof_row;

static prof_row prof[256];
static int prof_rows = -1;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void prof_report(void) {
  fprintf(stderr, "graphc profile (GRAPHC_PROFILE): time per kernel call site\n");
  for (int i = 0; i < prof_rows; ++i)
    if (prof[i].m)
      fprintf(stderr, "  gemm %5lld x %5lld x %5lld  %8.3f ms/call  %6lld calls\n",
              (long long)prof[i].m, (long long)prof[i].n, (long long)prof[i].k,
              1e3 * prof[i].seconds / (double)prof[i].calls, (long long)prof[i].calls);
    else
      fprintf(stderr, "  range over %9lld      %8.3f ms/call  %6lld calls\n",
              (long long)prof[i].total, 1e3 * prof[i].seconds / (double)prof[i].calls,
              (long long)prof[i].calls);
}

static int profiling(void) {
  if (prof_rows < 0) {
    prof_rows = 0;
    if (getenv("GRAPHC_PROFILE") && *getenv("GRAPHC_PROFILE") && *getenv("GRAPHC_PROFILE") != '0')
      atexit(prof_report);
    else
      prof_rows = -2;
  }
  return prof_rows >= 0;
}

static void prof_add(const void *key, int64_t m, int64_t n, int64_t k, int64_t total,
                     double seconds) {
  int i = 0;
  while (i < prof_rows && !(prof[i].key == key && prof[i].m == m && prof[i].n == n &&
                            prof[i].k == k && prof[i].total == total))
    ++i;
  if (i == prof_rows) {
    if (prof_rows == 256)
      return;
    prof[prof_rows++] = (prof_row){key, m, n, k, total, 0, 0};
  }
  prof[i].seconds += seconds;
  ++prof[i].calls;
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

static void parallel_range(grt_pool *p, grt_range_fn fn, void **ptrs, int64_t n, int64_t total) {
  int64_t tasks = (total + RANGE_CHUNK - 1) / RANGE_CHUNK;
  if (tasks <= 1) {
    fn(ptrs, n, 0, total);
    return;
  }
  range_ctx r = {fn, ptrs, n, total, (total + tasks - 1) / tasks};
  grt_pool_run(p, tasks, range_task, &r);
}

void grt_parallel_range(grt_pool *p, grt_range_fn fn, void **ptrs, int64_t n, int64_t total) {
  if (!profiling()) {
    parallel_range(p, fn, ptrs, n, total);
    return;
  }
  double t0 = now();
  parallel_range(p, fn, ptrs, n, total);
  prof_add((const void *)fn, 0, 0, 0, total, now() - t0);
}

/* --- the CPU's ISA level ------------------------------------------------- */

static int detect_cpu_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4"))
    return 4;
  if (__builtin_cpu_supports("x86-64-v3"))
    return 3;
  if (__builtin_cpu_supports("x86-64-v2"))
    return 2;
#endif
  return 1;
}

int grt_cpu_level(void) {
  static _Atomic int cached;
  int level = atomic_load_explicit(&cached, memory_order_relaxed);
  if (level == 0) {
    level = detect_cpu_level();
    /* GRAPHC_CPU_LEVEL=N pretends the CPU is older (never newer), so the
     * lower code paths and the refusals can be tested on any machine. */
    const char *cap = getenv("GRAPHC_CPU_LEVEL");
    if (cap && *cap >= '1' && *cap <= '4' && cap[1] == 0 && *cap - '0' < level)
      level = *cap - '0';
    atomic_store_explicit(&cached, level, memory_order_relaxed);
  }
  return level;
}

/* --- GEMM --------------------------------------------------------------------- */

typedef struct {
  int64_t m, n, k, lda, ldb, ldc, trans_a, trans_b, mr, nr, a_copies, mc, nc, batch;
  const float *a, *b;
  float *c;
  grt_micro_fn micro;
  grt_epilogue_fn epilogue;
  void **ptrs;
  grt_pool *pool;
  /* The KC-deep block being multiplied, and op(B)'s panels for it. */
  int64_t p0, kc, m_blocks, n_blocks, panels;
  float *ap, *bp;
} gemm_ctx;

int grt_gemm_blocking(int64_t mr, int64_t nr, int64_t *mc, int64_t *nc) {
  if (mr < 1 || mr > GRT_MAX_MR || nr < 1 || nr > GRT_MAX_NR)
    return -1;
  /* A block of C is whole tiles: packed op(A) is laid out in MR-row
   * slivers and op(B) in NR-column panels from row and column 0, so a block
   * that started inside a sliver or panel would read the wrong rows. */
  *mc = MC / mr > 0 ? MC / mr * mr : mr;
  *nc = NC / nr > 0 ? NC / nr * nr : nr;
  return *mc % mr == 0 && *nc % nr == 0 ? 0 : -1;
}

static float *reserve(float **buf, size_t *have, size_t floats) {
  /* Grow-only, 64-byte aligned; bounded by the block constants and N. */
  if (*have < floats) {
    free(*buf);
    *buf = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    *have = *buf ? floats : 0;
  }
  return *buf;
}

/* Rows [i0, i0+mc) of op(A), depth [p0, p0+kc), as MR-row slivers, k-major,
 * zero-padded to whole slivers, each value repeated a_copies times (a
 * pre-broadcast operand for the micro-kernel). Reads run along memory in
 * both layouts. */
static void pack_a(const gemm_ctx *g, int64_t i0, int64_t mc, float *dst) {
  const int64_t mr = g->mr, kc = g->kc, p0 = g->p0, copies = g->a_copies;
  for (int64_t is = 0; is < mc; is += mr) {
    int64_t rows = mc - is < mr ? mc - is : mr;
    float *d = dst + is * kc * copies;
    if (copies == 1 && g->trans_a) {
      for (int64_t p = 0; p < kc; ++p) {
        memcpy(d + p * mr, g->a + (p0 + p) * g->lda + i0 + is, (size_t)rows * sizeof(float));
        for (int64_t r = rows; r < mr; ++r)
          d[p * mr + r] = 0;
      }
    } else if (copies == 1) {
      for (int64_t r = 0; r < mr; ++r) {
        const float *src = g->a + (i0 + is + r) * g->lda + p0;
        for (int64_t p = 0; p < kc; ++p)
          d[p * mr + r] = r < rows ? src[p] : 0.0f;
      }
    } else {
      const int64_t row_step = g->trans_a ? 1 : g->lda, k_step = g->trans_a ? g->lda : 1;
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t r = 0; r < mr; ++r) {
          const float v = r < rows ? g->a[(i0 + is + r) * row_step + (p0 + p) * k_step] : 0.0f;
          float *o = d + (p * mr + r) * copies;
          for (int64_t c = 0; c < copies; ++c)
            o[c] = v;
        }
    }
  }
}

/* Panel `panel` (NR columns) of op(B) at depth [p0, p0+kc), k-major. */
static void pack_b_panel(const gemm_ctx *g, int64_t panel, float *dst) {
  const int64_t nr = g->nr, kc = g->kc, p0 = g->p0, j0 = panel * nr;
  const int64_t cols = g->n - j0 < nr ? g->n - j0 : nr;
  float *d = dst + panel * nr * kc;
  if (!g->trans_b) {
    for (int64_t p = 0; p < kc; ++p) {
      memcpy(d + p * nr, g->b + (p0 + p) * g->ldb + j0, (size_t)cols * sizeof(float));
      for (int64_t c = cols; c < nr; ++c)
        d[p * nr + c] = 0;
    }
  } else {
    for (int64_t c = 0; c < nr; ++c) {
      const float *src = g->b + (j0 + c) * g->ldb + p0;
      for (int64_t p = 0; p < kc; ++p)
        d[p * nr + c] = c < cols ? src[p] : 0.0f;
    }
  }
}

/* Task t < panels packs panel t of op(B); the rest pack MR-row slivers of op(A). */
static void pack_task(void *arg, int64_t task, int thread) {
  (void)thread;
  const gemm_ctx *g = arg;
  if (task < g->panels) {
    pack_b_panel(g, task, g->bp);
    return;
  }
  const int64_t i0 = (task - g->panels) * g->mr;
  pack_a(g, i0, g->m - i0 < g->mr ? g->m - i0 : g->mr, g->ap + i0 * g->kc * g->a_copies);
}

/* One mc x nc block of C at the current depth block; the epilogue follows
 * the last one. */
static void gemm_task(void *arg, int64_t task, int thread) {
  const gemm_ctx *g = arg;
  scratch *s = &g->pool->scratch[thread];
  const int64_t mr = g->mr, nr = g->nr, kc = g->kc;
  const int64_t i0 = (task / g->n_blocks) * g->mc, j0 = (task % g->n_blocks) * g->nc;
  const int64_t mc = g->m - i0 < g->mc ? g->m - i0 : g->mc;
  const int64_t nc = g->n - j0 < g->nc ? g->n - j0 : g->nc;
  const int64_t a_stride = kc * g->a_copies; /* floats per packed row of A */
  const float *ap = g->ap + i0 * a_stride;
  float *tile = reserve(&s->tile, &s->tile_size, (size_t)(mr * nr));
  const int64_t acc = g->p0 > 0;
  /* The operand with more floats per step stays in L1 through the inner loop
   * while the other streams from L2: B's panel (nr), or A's sliver (mr times
   * a_copies) when A is packed pre-broadcast. Each tile is one micro-kernel
   * call either way, so the order does not change a bit of C. */
  const int64_t n_js = (nc + nr - 1) / nr, n_is = (mc + mr - 1) / mr;
  const int b_stays = nr >= mr * g->a_copies;
  for (int64_t t = 0; t < n_js * n_is; ++t) {
    const int64_t js = (b_stays ? t / n_is : t % n_js) * nr;
    const int64_t is = (b_stays ? t % n_is : t / n_js) * mr;
    const int64_t cols = nc - js < nr ? nc - js : nr;
    const float *bp = g->bp + (j0 + js) * kc;
    const int64_t rows = mc - is < mr ? mc - is : mr;
    float *c = g->c + (i0 + is) * g->ldc + j0 + js;
    if (rows == mr && cols == nr) {
      g->micro(kc, ap + is * a_stride, bp, c, g->ldc, acc);
      continue;
    }
    g->micro(kc, ap + is * a_stride, bp, tile, nr, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t q = 0; q < cols; ++q)
        c[r * g->ldc + q] = (acc ? c[r * g->ldc + q] : 0.0f) + tile[r * nr + q];
  }
  if (g->epilogue && g->p0 + kc >= g->k)
    g->epilogue(g->ptrs, g->batch, g->c, g->ldc, i0, i0 + mc, j0, j0 + nc);
}

static void zero_task(void *arg, int64_t task, int thread) {
  (void)thread;
  const gemm_ctx *g = arg;
  const int64_t i0 = (task / g->n_blocks) * g->mc, j0 = (task % g->n_blocks) * g->nc;
  const int64_t mc = g->m - i0 < g->mc ? g->m - i0 : g->mc;
  const int64_t nc = g->n - j0 < g->nc ? g->n - j0 : g->nc;
  for (int64_t i = 0; i < mc; ++i)
    memset(g->c + (i0 + i) * g->ldc + j0, 0, (size_t)nc * sizeof(float));
  if (g->epilogue)
    g->epilogue(g->ptrs, g->batch, g->c, g->ldc, i0, i0 + mc, j0, j0 + nc);
}

static void gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 int64_t trans_a, const float *b, int64_t ldb, int64_t trans_b, float *c,
                 int64_t ldc, grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies,
                 grt_epilogue_fn epilogue, void **ptrs, int64_t batch) {
  int64_t mc, nc;
  if (grt_gemm_blocking(mr, nr, &mc, &nc) != 0 || a_copies < 1 || a_copies > GRT_MAX_A_COPIES) {
    fprintf(stderr,
            "graphc: internal error: a %lld x %lld GEMM tile (A packed %lld times) cannot be "
            "blocked\n",
            (long long)mr, (long long)nr, (long long)a_copies);
    abort();
  }
  const int64_t panels = (n + nr - 1) / nr, slivers = (m + mr - 1) / mr;
  gemm_ctx g = {m,
                n,
                k,
                lda,
                ldb,
                ldc,
                trans_a,
                trans_b,
                mr,
                nr,
                a_copies,
                mc,
                nc,
                batch,
                a,
                b,
                c,
                micro,
                epilogue,
                ptrs,
                pool,
                0,
                0,
                (m + mc - 1) / mc,
                (n + nc - 1) / nc,
                panels,
                NULL,
                NULL};
  const int64_t tasks = g.m_blocks * g.n_blocks;
  if (k == 0) {
    grt_pool_run(pool, tasks, zero_task, &g);
    return;
  }
  /* For each depth block, op(A) and op(B) are packed once, by all threads,
   * then every block of C is multiplied against them. The packed buffers
   * hold exactly what the deepest block needs, against guard pages. */
  const int64_t kc_max = k < KC ? k : KC;
  g.bp = guarded_reserve(&pool->packed_b, (size_t)(panels * nr * kc_max));
  g.ap = guarded_reserve(&pool->packed_a, (size_t)(slivers * mr * kc_max * a_copies));
  if (!g.bp || !g.ap) {
    fprintf(stderr, "graphc: out of memory packing a %lld x %lld x %lld GEMM\n", (long long)m,
            (long long)n, (long long)k);
    abort();
  }
  for (g.p0 = 0; g.p0 < k; g.p0 += KC) {
    g.kc = k - g.p0 < KC ? k - g.p0 : KC;
    grt_pool_run(pool, panels + slivers, pack_task, &g);
    grt_pool_run(pool, tasks, gemm_task, &g);
  }
}

void grt_gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
              int64_t trans_a, const float *b, int64_t ldb, int64_t trans_b, float *c, int64_t ldc,
              grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies,
              grt_epilogue_fn epilogue, void **ptrs, int64_t batch) {
  if (m <= 0 || n <= 0)
    return;
  double t0 = profiling() ? now() : 0;
  gemm(pool, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc, micro, mr, nr, a_copies, epilogue,
       ptrs, batch);
  if (t0 > 0)
    prof_add((const void *)c, m, n, k, 0, now() - t0);
}
