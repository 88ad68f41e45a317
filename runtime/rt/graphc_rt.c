/* runtime/rt/graphc_rt.c - thread pool, parallel ranges, the GEMM driver.
 *
 * The GEMM is blocked the Goto/BLIS way: for each chunk of the depth (whole
 * KC-deep blocks, all of K where the packed operands fit grt_gemm_pack_budget),
 * the threads first pack op(B) into NR-column panels and op(A) into MR-row
 * slivers (k-major) together, then each task takes a block of C (whole MR x NR
 * tiles: grt_gemm_blocking) and sweeps the generated micro-kernel over its
 * slivers and panels, KC block after KC block; after the last one a task runs
 * the kernel group's epilogue on its block while the block is still in cache.
 * Every element of C is summed by one task in a fixed order, so results do
 * not depend on the thread count, the chunking or on scheduling.
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
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif
/* The packing's AVX-512 copies, compiled for AVX-512 whatever the rest of
 * the runtime is compiled for, and run only where the step's micro-kernel
 * is AVX-512 (grt_conv's isa_level 4). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GRT_AVX512_PACKING 1
#else
#define GRT_AVX512_PACKING 0
#endif

enum { KC = 256, MC = 128, NC = 256, RANGE_CHUNK = 16384, MAX_THREADS = 256 };
/* Bytes of op(A) or op(B) a GEMM packs at once: a depth chunk of KC blocks. */
static _Atomic int64_t pack_budget = 16 << 20;
/* A depth block of a sum over samples is one pair of batch chunks. */
_Static_assert(KC == 2 * GRT_BATCH_CHUNK, "a KC block is one pair of batch chunks");

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

/* One thread's own memory: the edge tile of C, and the operands a
 * convolution packs per task (grt_conv). */
typedef struct {
  float *tile;
  size_t tile_size;
  guarded pack_a, pack_b;
} scratch;

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
  float *partial;             /* grt_conv's weight gradient: partial sums */
  size_t partial_size;
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
  for (int t = 0; t < MAX_THREADS; ++t) {
    free(p->scratch[t].tile);
    guarded_release(&p->scratch[t].pack_a);
    guarded_release(&p->scratch[t].pack_b);
  }
  free(p->partial);
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
  double seconds, packing; /* packing: grt_gemm's time packing op(A) and op(B) */
  int64_t calls;
  /* The first call's times, kept out of the sums: it pays what happens once
   * (the packing buffers' first touch cost the seed MLP's first product 15-30
   * ms, 0.3 ms on its average over a short run). */
  double first, first_packing;
} prof_row;

static prof_row prof[256];
static int prof_rows = -1;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void prof_report(void) {
  fprintf(stderr, "graphc profile (GRAPHC_PROFILE): time per kernel call site, averaged over "
                  "the calls after the first\n");
  for (int i = 0; i < prof_rows; ++i) {
    const prof_row *r = &prof[i];
    const int64_t rest = r->calls - 1; /* the calls in the sums */
    const double each = 1e3 * (rest > 0 ? r->seconds / (double)rest : r->first);
    const double packing = 1e3 * (rest > 0 ? r->packing / (double)rest : r->first_packing);
    if (r->m) {
      /* A convolution packs inside its tasks: its packing is not timed apart. */
      fprintf(stderr, "  gemm %5lld x %5lld x %5lld  %8.3f ms/call  %6lld calls", (long long)r->m,
              (long long)r->n, (long long)r->k, each, (long long)r->calls);
      if (packing > 0)
        fprintf(stderr, "  of which packing %.3f ms", packing);
    } else
      fprintf(stderr, "  range over %9lld      %8.3f ms/call  %6lld calls", (long long)r->total,
              each, (long long)r->calls);
    fprintf(stderr, "  first call %.3f ms\n", 1e3 * r->first);
  }
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
                     double seconds, double packing) {
  int i = 0;
  while (i < prof_rows && !(prof[i].key == key && prof[i].m == m && prof[i].n == n &&
                            prof[i].k == k && prof[i].total == total))
    ++i;
  if (i == prof_rows) {
    if (prof_rows == 256)
      return;
    prof[prof_rows++] = (prof_row){key, m, n, k, total, 0, 0, 1, seconds, packing};
    return;
  }
  prof[i].seconds += seconds;
  prof[i].packing += packing;
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

static void parallel_range(grt_pool *p, grt_range_fn fn, void **ptrs, int64_t n, int64_t total,
                           int64_t cost) {
  /* Chunks of about RANGE_CHUNK elements' work: an element of a reduction
   * (a BatchNorm's channel sum) reads `cost` values, so 64 channels of
   * 128 x 32 x 32 make 64 tasks, where counting elements made one. */
  const int64_t work = total * (cost > 1 ? cost : 1);
  int64_t tasks = (work + RANGE_CHUNK - 1) / RANGE_CHUNK;
  if (tasks > total)
    tasks = total;
  if (tasks <= 1) {
    fn(ptrs, n, 0, total);
    return;
  }
  range_ctx r = {fn, ptrs, n, total, (total + tasks - 1) / tasks};
  grt_pool_run(p, tasks, range_task, &r);
}

void grt_parallel_range(grt_pool *p, grt_range_fn fn, void **ptrs, int64_t n, int64_t total,
                        int64_t cost) {
  if (!profiling()) {
    parallel_range(p, fn, ptrs, n, total, cost);
    return;
  }
  double t0 = now();
  parallel_range(p, fn, ptrs, n, total, cost);
  prof_add((const void *)fn, 0, 0, 0, total, now() - t0, 0);
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
  int64_t k_chunk; /* 0, or the batch chunk of a sum over samples (grt_gemm) */
  const float *a, *b;
  float *c;
  grt_micro_fn micro;
  grt_epilogue_fn epilogue;
  void **ptrs;
  grt_pool *pool;
  /* The depth chunk [p0, p1) packed (whole KC blocks, the last one maybe
   * short), and op(A) and op(B) packed for it, block after block. */
  int64_t p0, p1, m_blocks, n_blocks, panels, slivers;
  float *ap, *bp;
  int level; /* the ISA level the packing's transposes may use (pack_level) */
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

/* The ISA level a product's packing uses: the micro-kernel's (the step's
 * forced variant packs as that variant does, so each packing runs on any
 * machine that has it), and never above what the CPU has. */
static int pack_level(int64_t isa_level) {
  const int cpu = grt_cpu_level();
  return GRT_AVX512_PACKING ? (int)(isa_level < cpu ? isa_level : cpu) : 1;
}

int64_t grt_gemm_pack_budget(int64_t bytes) {
  return bytes > 0 ? atomic_exchange(&pack_budget, bytes) : atomic_load(&pack_budget);
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

/* Floats no packer's column or row of zeros is longer than (a KC block). */
static const float zeros[KC];

#if GRT_AVX512_PACKING
/* The transposes of transpose_stretches with AVX2 and AVX-512: blocks of
 * 8 x 8 and 16 x 16 in registers, a load per stretch and a store per row
 * of d, where the SSE blocks of 4 x 4 spend four times the instructions
 * (packing a layer's weights of 1000 x 1024 into panels: 0.26 -> 0.12 ms
 * hot, 0.40 -> 0.22 ms cold, on one Zen 5 core). Each returns how far
 * along the stretches it went (whole blocks); the caller does the rest. */
/* Floats [i, i+8) of stretches src[0, count) (the rest zeros) as 8 rows:
 * row[j] holds float i + j of each stretch. */
__attribute__((target("avx2"))) static inline void block_8x8(const float *const *src, int64_t count,
                                                             int64_t i, __m256 row[8]) {
  __m256 r[8], t[8];
  for (int u = 0; u < 8; ++u)
    r[u] = u < count ? _mm256_loadu_ps(src[u] + i) : _mm256_setzero_ps();
  for (int u = 0; u < 8; u += 2) {
    t[u] = _mm256_unpacklo_ps(r[u], r[u + 1]);     /* stretches u, u+1 at 0,1 | 4,5 */
    t[u + 1] = _mm256_unpackhi_ps(r[u], r[u + 1]); /* at 2,3 | 6,7 */
  }
  for (int u = 0; u < 8; u += 4) { /* r[u + j]: stretches u..u+3 at j | j + 4 */
    r[u] = _mm256_shuffle_ps(t[u], t[u + 2], 0x44);
    r[u + 1] = _mm256_shuffle_ps(t[u], t[u + 2], 0xee);
    r[u + 2] = _mm256_shuffle_ps(t[u + 1], t[u + 3], 0x44);
    r[u + 3] = _mm256_shuffle_ps(t[u + 1], t[u + 3], 0xee);
  }
  for (int j = 0; j < 4; ++j) {
    row[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
    row[j + 4] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
  }
}

__attribute__((target("avx2"))) static int64_t transpose_8x8(const float *const *src, int64_t count,
                                                             int64_t len, float *d, int64_t ld) {
  int64_t i = 0;
  __m256 row[8];
  for (; i + 8 <= len; i += 8)
    for (int64_t q = 0; q + 8 <= count; q += 8) {
      block_8x8(src + q, 8, i, row);
      for (int j = 0; j < 8; ++j)
        _mm256_storeu_ps(d + (i + j) * ld + q, row[j]);
    }
  return i;
}

/* Fewer than 8 stretches (AVX2's A slivers of 6 rows) into rows of exactly
 * count floats: each row's store of 8 runs into the next row, which is
 * stored after it, and a block's last row is stored count floats exactly,
 * so nothing past the rows is written. */
__attribute__((target("avx2"))) static int64_t
transpose_short(const float *const *src, int64_t count, int64_t len, float *d) {
  int64_t i = 0;
  __m256 row[8];
  float last[8];
  for (; i + 8 <= len; i += 8) {
    block_8x8(src, count, i, row);
    for (int j = 0; j < 7; ++j)
      _mm256_storeu_ps(d + (i + j) * count, row[j]);
    _mm256_storeu_ps(last, row[7]);
    memcpy(d + (i + 7) * count, last, (size_t)count * sizeof(float));
  }
  return i;
}

__attribute__((target("avx512f"))) static int64_t
transpose_16x16(const float *const *src, int64_t count, int64_t len, float *d, int64_t ld) {
  int64_t i = 0;
  for (; i + 16 <= len; i += 16)
    for (int64_t q = 0; q + 16 <= count; q += 16) {
      __m512 r[16], t[16];
      for (int u = 0; u < 16; ++u)
        r[u] = _mm512_loadu_ps(src[q + u] + i);
      for (int u = 0; u < 16; u += 2) {
        t[u] = _mm512_unpacklo_ps(r[u], r[u + 1]);
        t[u + 1] = _mm512_unpackhi_ps(r[u], r[u + 1]);
      }
      /* r[4b + j]: stretches 4b..4b+3 at j in each 128-bit lane L (4L + j). */
      for (int u = 0; u < 16; u += 4) {
        const __m512d a = _mm512_castps_pd(t[u]), b = _mm512_castps_pd(t[u + 1]);
        const __m512d c = _mm512_castps_pd(t[u + 2]), e = _mm512_castps_pd(t[u + 3]);
        r[u] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[u + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[u + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
        r[u + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
      }
      /* Lanes across groups of stretches: t[j] holds lanes 0 and 2 of
       * groups 0, 1 and t[8 + j] lanes 1 and 3 (the same for 2, 3 at 4 + j). */
      for (int u = 0; u < 16; u += 8)
        for (int j = 0; j < 4; ++j) {
          t[u / 2 + j] = _mm512_shuffle_f32x4(r[u + j], r[u + 4 + j], 0x88);
          t[8 + u / 2 + j] = _mm512_shuffle_f32x4(r[u + j], r[u + 4 + j], 0xdd);
        }
      for (int j = 0; j < 4; ++j) {
        _mm512_storeu_ps(d + (i + j) * ld + q, _mm512_shuffle_f32x4(t[j], t[4 + j], 0x88));
        _mm512_storeu_ps(d + (i + j + 8) * ld + q, _mm512_shuffle_f32x4(t[j], t[4 + j], 0xdd));
        _mm512_storeu_ps(d + (i + j + 4) * ld + q, _mm512_shuffle_f32x4(t[8 + j], t[12 + j], 0x88));
        _mm512_storeu_ps(d + (i + j + 12) * ld + q,
                         _mm512_shuffle_f32x4(t[8 + j], t[12 + j], 0xdd));
      }
    }
  return i;
}
#endif

/* d[i * ld + q] = src[q][i] for i in [0, len) and q in [0, count): count
 * stretches, each read along memory, written across as rows of d. Blocks are
 * transposed in registers, so each row of d is written a vector a store
 * where a stretch at a time wrote one float per line: 16 x 16 with AVX-512
 * (`level` 4) and 8 x 8 with AVX2 (3) where count is a multiple (or 5 to 7
 * stretches into rows of as many floats), 4 x 4 with SSE for the rest of the
 * stretches' length. */
static void transpose_stretches(const float *const *src, int64_t count, int64_t len, float *d,
                                int64_t ld, int level) {
  int64_t i = 0;
#if GRT_AVX512_PACKING
  if (level >= 4 && count % 16 == 0)
    i = transpose_16x16(src, count, len, d, ld);
  else if (level >= 3 && count % 8 == 0)
    i = transpose_8x8(src, count, len, d, ld);
  else if (level >= 3 && count > 4 && count < 8 && ld == count)
    i = transpose_short(src, count, len, d);
#else
  (void)level;
#endif
#if defined(__SSE2__)
  const int64_t whole = count / 4 * 4; /* stretches in blocks of four */
  for (; i + 4 <= len; i += 4) {
    for (int64_t q = 0; q < whole; q += 4) {
      __m128 a = _mm_loadu_ps(src[q] + i), b = _mm_loadu_ps(src[q + 1] + i);
      __m128 c = _mm_loadu_ps(src[q + 2] + i), e = _mm_loadu_ps(src[q + 3] + i);
      _MM_TRANSPOSE4_PS(a, b, c, e);
      _mm_storeu_ps(d + i * ld + q, a);
      _mm_storeu_ps(d + (i + 1) * ld + q, b);
      _mm_storeu_ps(d + (i + 2) * ld + q, c);
      _mm_storeu_ps(d + (i + 3) * ld + q, e);
    }
    for (int64_t u = i; u < i + 4; ++u)
      for (int64_t q = whole; q < count; ++q)
        d[u * ld + q] = src[q][u];
  }
#endif
  for (; i < len; ++i)
    for (int64_t q = 0; q < count; ++q)
      d[i * ld + q] = src[q][i];
}

/* d[i * width + q] = src[i * ld + q] for q < count, 0 up to width, for i in
 * [0, len): len rows of count floats along memory, each padded with zeros to
 * a row of the panel or sliver (the packing where no transpose is needed). */
static inline __attribute__((always_inline)) void
copy_whole_rows(const float *src, int64_t ld, int64_t len, int64_t width, float *d) {
  for (int64_t i = 0; i < len; ++i)
    memcpy(d + i * width, src + i * ld, (size_t)width * sizeof(float));
}

static void copy_rows(const float *src, int64_t ld, int64_t len, int64_t count, int64_t width,
                      float *d) {
  /* Whole rows of the micro-kernels' widths copy with a constant size, which
   * the compiler turns into a few vector moves: a call to memcpy per row of
   * 8 to 32 floats cost more than the copy (a layer's weight gradient packs
   * 32,000 of them). */
  if (count == width) {
    switch (width) {
    case 4: copy_whole_rows(src, ld, len, 4, d); return;
    case 6: copy_whole_rows(src, ld, len, 6, d); return;
    case 8: copy_whole_rows(src, ld, len, 8, d); return;
    case 16: copy_whole_rows(src, ld, len, 16, d); return;
    case 32: copy_whole_rows(src, ld, len, 32, d); return;
    default: break;
    }
  }
  for (int64_t i = 0; i < len; ++i) {
    memcpy(d + i * width, src + i * ld, (size_t)count * sizeof(float));
    for (int64_t q = count; q < width; ++q)
      d[i * width + q] = 0.0f;
  }
}

/* Rows [i0, i0+mc) of op(A), depth [p0, p0+kc), as MR-row slivers, k-major,
 * zero-padded to whole slivers, each value repeated a_copies times (a
 * pre-broadcast operand for the micro-kernel). Reads run along memory in
 * both layouts. */
static void pack_a(const gemm_ctx *g, int64_t p0, int64_t kc, int64_t i0, int64_t mc, float *dst) {
  const int64_t mr = g->mr, copies = g->a_copies;
  for (int64_t is = 0; is < mc; is += mr) {
    int64_t rows = mc - is < mr ? mc - is : mr;
    float *d = dst + is * kc * copies;
    if (copies == 1 && g->trans_a) {
      copy_rows(g->a + p0 * g->lda + i0 + is, g->lda, kc, rows, mr, d);
    } else if (copies == 1) {
      const float *src[GRT_MAX_MR];
      for (int64_t r = 0; r < mr; ++r)
        src[r] = r < rows ? g->a + (i0 + is + r) * g->lda + p0 : zeros;
      transpose_stretches(src, mr, kc, d, mr, g->level);
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
static void pack_b_panel(const gemm_ctx *g, int64_t p0, int64_t kc, int64_t panel, float *dst) {
  const int64_t nr = g->nr, j0 = panel * nr;
  const int64_t cols = g->n - j0 < nr ? g->n - j0 : nr;
  float *d = dst + panel * nr * kc;
  if (!g->trans_b) {
    copy_rows(g->b + p0 * g->ldb + j0, g->ldb, kc, cols, nr, d);
  } else {
    /* B stored [n, k]: a transpose, each column a stretch along memory. */
    const float *src[GRT_MAX_NR];
    for (int64_t c = 0; c < nr; ++c)
      src[c] = c < cols ? g->b + (j0 + c) * g->ldb + p0 : zeros;
    transpose_stretches(src, nr, kc, d, nr, g->level);
  }
}

/* The packed operands of the KC block at depth p (in the chunk), and its depth. */
static const float *packed_b(const gemm_ctx *g, int64_t p) {
  return g->bp + (p - g->p0) * g->panels * g->nr;
}
static const float *packed_a(const gemm_ctx *g, int64_t p) {
  return g->ap + (p - g->p0) * g->slivers * g->mr * g->a_copies;
}
static int64_t block_depth(const gemm_ctx *g, int64_t p) { return g->p1 - p < KC ? g->p1 - p : KC; }

/* Thread t of T's share [n t / T, n (t + 1) / T) of n things: the same share
 * in the packing and in the multiply, so that each thread reads back what it
 * packed from its own cache, and from the core that wrote it last (handing
 * packed panels and slivers to whichever thread claimed them next cost the
 * seed MLP's step 0.6-1 ms of 10 on 2 cores of a Zen 5 EPYC). */
static int64_t share(int64_t n, int64_t t, int64_t threads) { return n * t / threads; }

/* The product's operands split into C's columns when op(B) is the larger
 * (each thread packs and reads its own B panels; op(A) is shared), else
 * into C's rows: the operand that is not split is the one all threads read. */
static int split_columns(const gemm_ctx *g) { return g->n >= g->m; }

/* Share t of each KC block's op(B) panels and op(A) slivers. */
static void pack_share(void *arg, int64_t t, int thread) {
  (void)thread;
  const gemm_ctx *g = arg;
  const int64_t threads = g->pool->size;
  for (int64_t p = g->p0; p < g->p1; p += KC) {
    const int64_t kc = block_depth(g, p);
    for (int64_t q = share(g->panels, t, threads); q < share(g->panels, t + 1, threads); ++q)
      pack_b_panel(g, p, kc, q, (float *)packed_b(g, p));
    for (int64_t q = share(g->slivers, t, threads); q < share(g->slivers, t + 1, threads); ++q) {
      const int64_t i0 = q * g->mr;
      pack_a(g, p, kc, i0, g->m - i0 < g->mr ? g->m - i0 : g->mr,
             (float *)packed_a(g, p) + i0 * kc * g->a_copies);
    }
  }
}

/* The block of C at [i0, i0+mc) x [j0, j0+nc) times the KC block at depth p. */
static void gemm_block(const gemm_ctx *g, int64_t p, int64_t i0, int64_t mc, int64_t j0, int64_t nc,
                       float *tile) {
  const int64_t mr = g->mr, nr = g->nr, kc = block_depth(g, p);
  const int64_t a_stride = kc * g->a_copies; /* floats per packed row of A */
  const float *ap = packed_a(g, p) + i0 * a_stride;
  const int pair = g->k_chunk > 0 && kc > g->k_chunk;
  const int64_t acc = p > 0;
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
    const float *bp = packed_b(g, p) + (j0 + js) * kc;
    const int64_t rows = mc - is < mr ? mc - is : mr;
    float *c = g->c + (i0 + is) * g->ldc + j0 + js;
    if (pair) {
      /* A sum over samples: each chunk from zero, the second added to the
       * first by the micro-kernel, straight into C where it can be. */
      const int direct = rows == mr && cols == nr && !acc;
      float *to = direct ? c : tile;
      const int64_t ld = direct ? g->ldc : nr, ch = g->k_chunk;
      g->micro(ch, ap + is * a_stride, bp, to, ld, 0);
      g->micro(kc - ch, ap + is * a_stride + ch * mr * g->a_copies, bp + ch * nr, to, ld, 1);
      if (direct)
        continue;
    } else if (rows == mr && cols == nr) {
      g->micro(kc, ap + is * a_stride, bp, c, g->ldc, acc);
      continue;
    } else
      g->micro(kc, ap + is * a_stride, bp, tile, nr, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t q = 0; q < cols; ++q)
        c[r * g->ldc + q] = (acc ? c[r * g->ldc + q] : 0.0f) + tile[r * nr + q];
  }
}

/* Share t of C: its panels' columns (or its slivers' rows), all of the
 * other side, in mc x nc blocks, each over the chunk's depth blocks in
 * order; the epilogue follows the last one of the product. The blocks are
 * whole tiles from row and column 0 whatever the share, so no bit of C
 * depends on the threads. */
static void multiply_share(void *arg, int64_t t, int thread) {
  const gemm_ctx *g = arg;
  const int64_t threads = g->pool->size, cols = split_columns(g);
  const int64_t tiles = cols ? g->panels : g->slivers, width = cols ? g->nr : g->mr;
  const int64_t end = cols ? g->n : g->m, lo = share(tiles, t, threads) * width;
  const int64_t next = share(tiles, t + 1, threads) * width, hi = next < end ? next : end;
  const int64_t i0 = cols ? 0 : lo, i1 = cols ? g->m : hi;
  const int64_t j0 = cols ? lo : 0, j1 = cols ? hi : g->n;
  scratch *s = &g->pool->scratch[thread];
  float *tile = reserve(&s->tile, &s->tile_size, (size_t)(g->mr * g->nr));
  for (int64_t j = j0; j < j1; j += g->nc) {
    const int64_t nc = j1 - j < g->nc ? j1 - j : g->nc;
    for (int64_t i = i0; i < i1; i += g->mc) {
      const int64_t mc = i1 - i < g->mc ? i1 - i : g->mc;
      for (int64_t p = g->p0; p < g->p1; p += KC)
        gemm_block(g, p, i, mc, j, nc, tile);
      if (g->epilogue && g->p1 >= g->k)
        g->epilogue(g->ptrs, g->batch, g->c, g->ldc, i, i + mc, j, j + nc);
    }
  }
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

/* Returns the seconds spent packing when `timed` (GRAPHC_PROFILE), else 0. */
static double gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   int64_t trans_a, const float *b, int64_t ldb, int64_t trans_b, float *c,
                   int64_t ldc, grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies,
                   int64_t isa_level, grt_epilogue_fn epilogue, void **ptrs, int64_t batch,
                   int64_t k_chunk, int timed) {
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
                k_chunk,
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
                slivers,
                NULL,
                NULL,
                pack_level(isa_level)};
  const int64_t tasks = g.m_blocks * g.n_blocks;
  if (k == 0) {
    grt_pool_run(pool, tasks, zero_task, &g);
    return 0;
  }
  /* The depth in chunks of whole KC blocks, as many as pack_budget holds
   * packed (all of a layer's K, as a rule). For each chunk, op(A) and op(B)
   * are packed once, each thread its share, then each thread multiplies the
   * part of C its share of panels (or slivers) makes, against the chunk's
   * blocks in order: two waits on the threads per chunk,
   * where a wait per KC block, for packing and for multiplying, left threads
   * idle at each. The packed buffers hold exactly what the deepest chunk
   * needs, against guard pages. */
  const int64_t per_depth =
      panels * nr > slivers * mr * a_copies ? panels * nr : slivers * mr * a_copies;
  int64_t chunk = atomic_load_explicit(&pack_budget, memory_order_relaxed) /
                  (per_depth * (int64_t)sizeof(float)) / KC * KC;
  chunk = chunk < KC ? KC : chunk;
  const int64_t depth = k < chunk ? k : chunk;
  g.bp = guarded_reserve(&pool->packed_b, (size_t)(panels * nr * depth));
  g.ap = guarded_reserve(&pool->packed_a, (size_t)(slivers * mr * depth * a_copies));
  if (!g.bp || !g.ap) {
    fprintf(stderr, "graphc: out of memory packing a %lld x %lld x %lld GEMM\n", (long long)m,
            (long long)n, (long long)k);
    abort();
  }
  double packing = 0;
  for (g.p0 = 0; g.p0 < k; g.p0 = g.p1) {
    g.p1 = k - g.p0 < chunk ? k : g.p0 + chunk;
    const double t0 = timed ? now() : 0;
    grt_pool_run(pool, pool->size, pack_share, &g);
    packing += timed ? now() - t0 : 0;
    grt_pool_run(pool, pool->size, multiply_share, &g);
  }
  return packing;
}

void grt_gemm(grt_pool *pool, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
              int64_t trans_a, const float *b, int64_t ldb, int64_t trans_b, float *c, int64_t ldc,
              grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies, int64_t isa_level,
              grt_epilogue_fn epilogue, void **ptrs, int64_t batch, int64_t k_chunk) {
  if (m <= 0 || n <= 0)
    return;
  if (k_chunk != 0 && k_chunk != GRT_BATCH_CHUNK) {
    fprintf(stderr, "graphc: internal error: a GEMM summed by chunks of %lld samples, not %d\n",
            (long long)k_chunk, GRT_BATCH_CHUNK);
    abort();
  }
  const int timed = profiling();
  const double t0 = timed ? now() : 0;
  const double packing = gemm(pool, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc, micro, mr,
                              nr, a_copies, isa_level, epilogue, ptrs, batch, k_chunk, timed);
  if (timed)
    prof_add((const void *)c, m, n, k, 0, now() - t0, packing);
}

void grt_colsum(const float *x, int64_t rows, int64_t cols, float *out) {
  /* Columns in blocks, each block's stack of partial sums on the C stack:
   * 2^47 chunks would need more levels than any batch has. */
  enum { COLS = 64, LEVELS = 48 };
  float lev[LEVELS][COLS];
  int64_t size[LEVELS];
  for (int64_t j0 = 0; j0 < cols; j0 += COLS) {
    const int64_t w = cols - j0 < COLS ? cols - j0 : COLS;
    int top = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += GRT_BATCH_CHUNK) {
      const int64_t r1 = rows - r0 < GRT_BATCH_CHUNK ? rows : r0 + GRT_BATCH_CHUNK;
      float *sum = lev[top];
      for (int64_t j = 0; j < w; ++j)
        sum[j] = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < w; ++j)
          sum[j] += x[r * cols + j0 + j];
      size[top++] = 1;
      for (; top >= 2 && size[top - 1] == size[top - 2]; --top) {
        for (int64_t j = 0; j < w; ++j)
          lev[top - 2][j] += lev[top - 1][j];
        size[top - 2] *= 2;
      }
    }
    for (; top >= 2; --top) /* no power-of-two chunks: fold from the top */
      for (int64_t j = 0; j < w; ++j)
        lev[top - 2][j] += lev[top - 1][j];
    for (int64_t j = 0; j < w; ++j)
      out[j0 + j] = top ? lev[0][j] : 0.0f;
  }
}

/* --- convolutions as implicit GEMMs --------------------------------------------
 *
 * Forward: C[O, N*OH*OW] = W[O, C*kh*kw] im2col(x), one column per (image,
 * output pixel) of the NCHW result, so small images still give every
 * thread work. W is packed once for all depth blocks; each task then takes
 * NC columns and, per KC-deep block, packs its B panels straight from the
 * NCHW input (the im2col gather happens in the packing: no im2col buffer),
 * sweeps the micro-kernel over them, and runs the epilogue on its columns,
 * image by image.
 * Input gradient, one task per image: W^T[C*kh*kw, O] dy_n[O, OH*OW], NC
 * pixels at a time into the thread's column buffer, each block then added
 * back into dx_n (col2im). This does the useful multiply-adds only, where
 * the transposed convolution as a gather of dy also multiplies the zeros
 * between strided outputs and past the borders (measured twice as slow on
 * LeNet's second layer), and it gathers O rows instead of O*kh*kw.
 * Weight gradient: dw[O, C*kh*kw] = dy[O, N*OH*OW] im2col(x)^T, the depth
 * split into CONV_CHUNKS image ranges whose partial products are summed in
 * a fixed order.
 * Every split depends on the shapes only, never on the threads. */

enum { CONV_CHUNKS = 8 };

typedef struct {
  int64_t mode, n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow;
} conv_geom;

typedef struct {
  conv_geom s;
  const float *in0, *in1;
  float *out;
  grt_micro_fn micro;
  grt_epilogue_fn epilogue;
  grt_pool_fn pool_fn; /* mode 0: the max pool after the epilogue, or NULL */
  int level;           /* the ISA level the packing may use (pack_level): 4 packs with AVX-512's
                          masked copies, and the transposes use AVX2 from 3 */
  void **ptrs;
  grt_pool *pool;
  int64_t mr, nr, copies, nc, batch;
  int64_t bands;     /* mode 0: tasks per image, each nc columns (whole rows); 0: tasks
                        of nc columns across images */
  int64_t pool_rows; /* with pool_fn: the pool's window height */
  int64_t m, n, k;   /* C[m, n] = A[m, k] B[k, n] */
  int64_t pix;       /* modes 0, 1: columns of C per image */
  int64_t m_pad;     /* m in whole slivers */
  float *ap;         /* modes 0, 1: all of A packed, depth block after depth block */
  int64_t chunks;    /* mode 2: image ranges summed apart */
  float *partial;    /* mode 2: the partial products of chunks 1.. */
} conv_ctx;

/* Modes 0, 1: A[i, k]; the weights as [O, C*kh*kw], or their transpose
 * [C*kh*kw, O] for the input gradient. */
static inline float conv_a(const conv_ctx *g, int64_t i, int64_t k) {
  return g->s.mode == 0 ? g->in1[i * g->k + k] : g->in1[k * g->m + i];
}

/* to[0, n) += from[0, n). */
static inline void add_floats(float *restrict to, const float *restrict from, int64_t n) {
  for (int64_t q = 0; q < n; ++q)
    to[q] += from[q];
}

/* Task: one MR-row sliver of A in one depth block (modes 0, 1). */
static void conv_pack_a_task(void *arg, int64_t task, int thread) {
  (void)thread;
  const conv_ctx *g = arg;
  const int64_t mr = g->mr, copies = g->copies, slivers = g->m_pad / mr;
  const int64_t p0 = task / slivers * KC, i0 = task % slivers * mr;
  const int64_t kc = g->k - p0 < KC ? g->k - p0 : KC;
  float *d = g->ap + p0 * g->m_pad * copies + i0 * kc * copies;
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t r = 0; r < mr; ++r) {
      const float v = i0 + r < g->m ? conv_a(g, i0 + r, p0 + p) : 0.0f;
      float *o = d + (p * mr + r) * copies;
      for (int64_t c = 0; c < copies; ++c)
        o[c] = v;
    }
}

/* Output pixels [j, j + count) of the columns (image, oy, ox) cut into runs
 * along one output row: run r starts at column start[r] (from j) at pixel
 * (img[r], oy[r], ox[r]). With stride 1 across, a run's window corners are
 * consecutive in the input, so each tap of it is one contiguous stretch of
 * an input row, clipped by the padding (conv_run_clip). Returns the runs. */
typedef struct {
  int64_t start, len, img, oy, ox;
} conv_run;

static int64_t conv_runs(const conv_geom *s, int64_t pix, int64_t j, int64_t count,
                         conv_run *runs) {
  const int64_t first = j / pix, px = j - first * pix;
  int64_t n = 0, img = first, oy = px / s->ow, ox = px - oy * s->ow;
  for (int64_t q = 0; q < count; ++n) {
    conv_run *r = &runs[n];
    r->start = q;
    r->img = img;
    r->oy = oy;
    r->ox = ox;
    r->len = s->ow - ox < count - q ? s->ow - ox : count - q;
    q += r->len;
    ox = 0; /* the next run starts the next output row */
    if (++oy == s->oh) {
      oy = 0;
      ++img;
    }
  }
  return n;
}

/* Tap (ky, kx) of run r: its input row (-1 in the padding) and the part
 * [*lo, *hi) of the run whose input column lies inside the image, the
 * first of which reads column x + *lo. */
static int64_t conv_run_clip(const conv_geom *s, const conv_run *r, int64_t ky, int64_t kx,
                             int64_t *x, int64_t *lo, int64_t *hi) {
  const int64_t iy = r->oy * s->sh - s->ph + ky;
  *x = r->ox - s->pw + kx;
  *lo = *x < 0 ? -*x : 0;
  *hi = s->w - *x < r->len ? s->w - *x : r->len;
  if (*lo > r->len)
    *lo = r->len;
  if (*hi < *lo)
    *hi = *lo;
  return iy >= 0 && iy < s->h ? iy : -1;
}

/* GCC turns a loop that stores zeros into a call of memset, which for
 * the float or two of a tap's padding costs more than the row's copy. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_MEMSET_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_MEMSET_LOOPS
#endif

/* A tap of a run in the panel conv_pack_b_runs makes: `count` depth rows
 * (one per channel, each `step` floats after the last in the panel, from
 * `o`) each take o[q] = from[q - lo] for q in [lo, hi) and 0 for the rest of
 * [0, len); `from` steps `plane` floats a row. */
typedef struct {
  float *o;
  const float *from;
  int64_t step, count, lo, hi, len, plane;
} pack_tap;

/* Tap t = (ky, kx) of `run` for a depth block [p0, p0 + kc) whose first
 * row is tap r0 of channel ch0. */
static inline pack_tap conv_pack_tap(const conv_ctx *g, const conv_run *run, int64_t t, int64_t ky,
                                     int64_t kx, int64_t ch0, int64_t r0, int64_t kc, float *d) {
  const conv_geom *s = &g->s;
  const int64_t taps = s->kh * s->kw;
  pack_tap p;
  int64_t x;
  const int64_t iy = conv_run_clip(s, run, ky, kx, &x, &p.lo, &p.hi);
  p.len = run->len;
  if (iy < 0)
    p.lo = p.hi = p.len;
  /* The first depth row of this tap, and its channel: taps before r0
   * start in the next channel. */
  const int64_t first = t >= r0 ? t - r0 : t - r0 + taps, ch = ch0 + (t < r0);
  p.o = d + first * g->nr + run->start;
  p.step = taps * g->nr;
  p.count = (kc - first + taps - 1) / taps;
  p.from = g->in0 + ((run->img * s->c + ch) * s->h + (iy < 0 ? 0 : iy)) * s->w + x + p.lo;
  p.plane = s->h * s->w;
  return p;
}

/* Mode 0, stride 1 across: the panel conv_pack_b describes, run by run
 * and tap by tap, each tap's rows by `copy`. A tap of a run is one stretch
 * of an input row, clipped the same way in every channel, so the clipping
 * is worked out once per tap, and the depth rows of that tap (one per
 * channel, taps apart) are then plain copies a plane apart. Inlined into
 * each caller with its own `copy` (and so its own instructions). */
static inline __attribute__((always_inline)) void
conv_pack_b_runs_with(const conv_ctx *g, const conv_run *runs, int64_t n_runs, int64_t p0,
                      int64_t kc, float *d, void (*copy)(const pack_tap *)) {
  const conv_geom *s = &g->s;
  const int64_t taps = s->kh * s->kw;
  /* Depth row p0 is tap r0 of channel ch0. No division below: at a
   * handful of floats per tap, 64-bit divisions cost more than the copy. */
  const int64_t ch0 = p0 / taps, r0 = p0 - ch0 * taps;
  for (int64_t r = 0; r < n_runs; ++r)
    for (int64_t t = 0, ky = 0, kx = 0; t < taps; ++t) {
      const pack_tap p = conv_pack_tap(g, &runs[r], t, ky, kx, ch0, r0, kc, d);
      if (++kx == s->kw) {
        kx = 0;
        ++ky;
      }
      copy(&p);
    }
}

NO_MEMSET_LOOPS static inline void copy_tap(const pack_tap *p) {
  const float *from = p->from;
  for (int64_t c = 0; c < p->count; ++c, from += p->plane) {
    float *o = p->o + c * p->step;
    for (int64_t q = 0; q < p->lo; ++q)
      o[q] = 0.0f;
    for (int64_t q = p->lo; q < p->hi; ++q)
      o[q] = from[q - p->lo];
    for (int64_t q = p->hi; q < p->len; ++q)
      o[q] = 0.0f;
  }
}

NO_MEMSET_LOOPS static void conv_pack_b_runs(const conv_ctx *g, const conv_run *runs,
                                             int64_t n_runs, int64_t p0, int64_t kc, float *d) {
  conv_pack_b_runs_with(g, runs, n_runs, p0, kc, d, copy_tap);
}

#if GRT_AVX512_PACKING
/* copy_tap with AVX-512: each row 16 floats at a time under masks worked
 * out once per tap, where the portable loops spend their time on the ends
 * of stretches a few floats long and on the padding. Masked-off lanes are
 * neither read nor written. */
__attribute__((target("avx512f"))) static inline void copy_tap_avx512(const pack_tap *p) {
  enum { W = 16, CHUNKS = GRT_MAX_NR / W };
  __mmask16 load[CHUNKS], store[CHUNKS];
  const int64_t chunks = (p->len + W - 1) / W;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t a = p->lo - c * W > 0 ? p->lo - c * W : 0;
    const int64_t b = p->hi - c * W < W ? p->hi - c * W : W;
    const int64_t n = p->len - c * W < W ? p->len - c * W : W;
    load[c] = (__mmask16)(b > a ? ((1u << b) - 1) & ~((1u << a) - 1) : 0);
    store[c] = (__mmask16)((1u << n) - 1);
  }
  const float *from = p->from;
  for (int64_t row = 0; row < p->count; ++row, from += p->plane)
    for (int64_t c = 0; c < chunks; ++c)
      _mm512_mask_storeu_ps(p->o + row * p->step + c * W, store[c],
                            _mm512_maskz_loadu_ps(load[c], from + (c * W - p->lo)));
}

__attribute__((target("avx512f"))) static void conv_pack_b_runs_avx512(const conv_ctx *g,
                                                                       const conv_run *runs,
                                                                       int64_t n_runs, int64_t p0,
                                                                       int64_t kc, float *d) {
  conv_pack_b_runs_with(g, runs, n_runs, p0, kc, d, copy_tap_avx512);
}

/* `count` rows, to and from stepping to_step and from_step floats: to[q]
 * += from[q] for q in [0, len), 16 floats at a time under a mask (col2im's
 * stretches, as conv_pack_b_runs_avx512 packs them). */
__attribute__((target("avx512f"))) static void add_stretches_avx512(float *to, int64_t to_step,
                                                                    const float *from,
                                                                    int64_t from_step,
                                                                    int64_t count, int64_t len) {
  enum { W = 16 };
  const __mmask16 tail = (__mmask16)((1u << (len % W)) - 1);
  for (int64_t r = 0; r < count; ++r, to += to_step, from += from_step) {
    int64_t q = 0;
    for (; q + W <= len; q += W)
      _mm512_storeu_ps(to + q, _mm512_add_ps(_mm512_loadu_ps(to + q), _mm512_loadu_ps(from + q)));
    if (tail)
      _mm512_mask_storeu_ps(to + q, tail,
                            _mm512_add_ps(_mm512_maskz_loadu_ps(tail, to + q),
                                          _mm512_maskz_loadu_ps(tail, from + q)));
  }
}
#endif

/* Mode 0: the NR-column panel of im2col(x) at columns [j0, j0+cols), depth
 * [p0, p0+kc), k-major, zero past column cols (the task's last) and in the
 * padding. A column is (image, output pixel), a depth index (channel, ky,
 * kx). */
static void conv_pack_b(const conv_ctx *g, int64_t p0, int64_t kc, int64_t j0, int64_t cols,
                        float *d) {
  const conv_geom *s = &g->s;
  const int64_t nr = g->nr;
  const int64_t taps = s->kh * s->kw, pix = g->pix, plane = s->h * s->w;
  for (int64_t p = 0; cols < nr && p < kc; ++p) /* past the last column */
    for (int64_t q = cols; q < nr; ++q)
      d[p * nr + q] = 0.0f;
  /* With stride 1 across: runs along output rows, each tap of a run one
   * contiguous stretch of an input row. */
  if (s->sw == 1) {
    conv_run runs[GRT_MAX_NR];
    const int64_t n_runs = conv_runs(s, pix, j0, cols, runs);
#if GRT_AVX512_PACKING
    if (g->level >= 4) {
      conv_pack_b_runs_avx512(g, runs, n_runs, p0, kc, d);
      return;
    }
#endif
    conv_pack_b_runs(g, runs, n_runs, p0, kc, d);
    return;
  }
  /* Otherwise, per column: its image's first plane and its window's
   * corner; whether every column's window lies inside the image (no
   * padding to test). */
  int64_t base[GRT_MAX_NR], y0[GRT_MAX_NR], x0[GRT_MAX_NR];
  int inside = 1;
  for (int64_t q = 0; q < cols; ++q) {
    const int64_t j = j0 + q, img = j / pix, px = j - img * pix;
    base[q] = img * s->c * plane;
    y0[q] = px / s->ow * s->sh - s->ph;
    x0[q] = px % s->ow * s->sw - s->pw;
    inside &= y0[q] >= 0 && y0[q] + s->kh <= s->h && x0[q] >= 0 && x0[q] + s->kw <= s->w;
  }
  if (inside)
    for (int64_t q = 0; q < cols; ++q)
      base[q] += y0[q] * s->w + x0[q];
  int64_t ch = p0 / taps, ky = p0 % taps / s->kw, kx = p0 % s->kw;
  for (int64_t p = 0; p < kc; ++p) {
    float *row = d + p * nr;
    const float *src = g->in0 + ch * plane;
    if (inside) {
      const float *tap = src + ky * s->w + kx;
      for (int64_t q = 0; q < cols; ++q)
        row[q] = tap[base[q]];
    } else {
      for (int64_t q = 0; q < cols; ++q) {
        const int64_t iy = y0[q] + ky, ix = x0[q] + kx;
        row[q] = (uint64_t)iy < (uint64_t)s->h && (uint64_t)ix < (uint64_t)s->w
                     ? src[base[q] + iy * s->w + ix]
                     : 0.0f;
      }
    }
    if (++kx == s->kw) {
      kx = 0;
      if (++ky == s->kh) {
        ky = 0;
        ++ch;
      }
    }
  }
}

/* Mode 0: columns [j0, j0+nc) of C, all rows, every depth block, then
 * the epilogue on them, one image at a time, and the pool on the rows its
 * windows tile (a task is then a band of whole windows' rows of one image,
 * or whole images). */
static void conv_task(void *arg, int64_t task, int thread) {
  const conv_ctx *g = arg;
  scratch *sc = &g->pool->scratch[thread];
  const int64_t mr = g->mr, nr = g->nr, m = g->m, pix = g->pix;
  const int64_t j0 = g->bands ? task / g->bands * pix + task % g->bands * g->nc : task * g->nc;
  const int64_t end = g->bands ? (task / g->bands + 1) * pix : g->n;
  const int64_t nc = end - j0 < g->nc ? end - j0 : g->nc;
  const int64_t panels = (nc + nr - 1) / nr, slivers = g->m_pad / mr;
  const int64_t kc_max = g->k < KC ? g->k : KC;
  float *bp = guarded_reserve(&sc->pack_b, (size_t)(panels * nr * kc_max));
  float *tile = reserve(&sc->tile, &sc->tile_size, (size_t)(mr * nr));
  if (!bp || !tile) {
    fprintf(stderr, "graphc: out of memory packing a convolution\n");
    abort();
  }
  for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
    const int64_t kc = g->k - p0 < KC ? g->k - p0 : KC, acc = p0 > 0;
    for (int64_t ps = 0; ps < panels; ++ps) {
      const int64_t jj = j0 + ps * nr;
      conv_pack_b(g, p0, kc, jj, j0 + nc - jj < nr ? j0 + nc - jj : nr, bp + ps * nr * kc);
    }
    const float *ap = g->ap + p0 * g->m_pad * g->copies;
    for (int64_t ps = 0; ps < panels; ++ps) {
      const int64_t jj = j0 + ps * nr, cols = j0 + nc - jj < nr ? j0 + nc - jj : nr;
      const int64_t img = jj / pix, px = jj - img * pix;
      const int one_image = px + cols <= pix;
      float *cbase = g->out + img * m * pix + px;
      const float *b = bp + ps * nr * kc;
      for (int64_t sl = 0; sl < slivers; ++sl) {
        const int64_t i = sl * mr, rows = m - i < mr ? m - i : mr;
        const float *a = ap + i * kc * g->copies;
        if (rows == mr && cols == nr && one_image) {
          g->micro(kc, a, b, cbase + i * pix, pix, acc);
          continue;
        }
        g->micro(kc, a, b, tile, nr, 0);
        for (int64_t q = 0; q < cols; ++q) {
          const int64_t j = jj + q, im = j / pix;
          float *c = g->out + im * m * pix + (j - im * pix) + i * pix;
          for (int64_t r = 0; r < rows; ++r)
            c[r * pix] = (acc ? c[r * pix] : 0.0f) + tile[r * nr + q];
        }
      }
    }
  }
  for (int64_t j = j0; j < j0 + nc;) {
    const int64_t img = j / pix, last = (img + 1) * pix < j0 + nc ? (img + 1) * pix : j0 + nc;
    const int64_t shift = img * m * pix - img * pix; /* column j of C at out + shift + j */
    if (g->epilogue)
      g->epilogue(g->ptrs, g->batch, g->out, pix, 0, m, shift + j, shift + last);
    if (g->pool_fn) { /* floor mode leaves the last rows in no window */
      const int64_t y0 = (j - img * pix) / g->s.ow, y1 = (last - img * pix) / g->s.ow;
      const int64_t pooled = g->s.oh / g->pool_rows, r1 = y1 / g->pool_rows;
      g->pool_fn(g->ptrs, g->batch, img, y0 / g->pool_rows, r1 < pooled ? r1 : pooled);
    }
    j = last;
  }
}

/* Mode 1, image `img`: dx_img = col2im(W^T dy_img), NC output pixels at a
 * time: the product into the thread's column buffer (whole tiles: its rows
 * and columns are padded), then each column added into the input pixels
 * its taps read. */
static void conv_col2im_task(void *arg, int64_t img, int thread) {
  const conv_ctx *g = arg;
  const conv_geom *s = &g->s;
  scratch *sc = &g->pool->scratch[thread];
  const int64_t mr = g->mr, nr = g->nr, m = g->m, pix = g->pix, ldc = g->nc;
  const int64_t plane = s->h * s->w, taps = s->kh * s->kw, slivers = g->m_pad / mr;
  const int64_t kc_max = g->k < KC ? g->k : KC;
  float *bp = guarded_reserve(&sc->pack_b, (size_t)(g->nc * kc_max));
  float *col = guarded_reserve(&sc->pack_a, (size_t)(g->m_pad * ldc));
  if (!bp || !col) {
    fprintf(stderr, "graphc: out of memory for a convolution's input gradient\n");
    abort();
  }
  float *dx = g->out + img * s->c * plane;
  const float *dy = g->in0 + img * s->o * pix;
  memset(dx, 0, (size_t)(s->c * plane) * sizeof(float));
  for (int64_t q0 = 0; q0 < pix; q0 += ldc) {
    const int64_t nc = pix - q0 < ldc ? pix - q0 : ldc, panels = (nc + nr - 1) / nr;
    for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
      const int64_t kc = g->k - p0 < KC ? g->k - p0 : KC, acc = p0 > 0;
      for (int64_t ps = 0; ps < panels; ++ps) {
        float *d = bp + ps * nr * kc;
        const int64_t j = q0 + ps * nr, cols = q0 + nc - j < nr ? q0 + nc - j : nr;
        copy_rows(dy + p0 * pix + j, pix, kc, cols, nr, d);
      }
      const float *ap = g->ap + p0 * g->m_pad * g->copies;
      for (int64_t ps = 0; ps < panels; ++ps)
        for (int64_t sl = 0; sl < slivers; ++sl)
          g->micro(kc, ap + sl * mr * kc * g->copies, bp + ps * nr * kc,
                   col + sl * mr * ldc + ps * nr, ldc, acc);
    }
    if (s->sw == 1) { /* runs along output rows: contiguous adds */
      conv_run runs[NC];
      const int64_t n_runs = conv_runs(s, pix, q0, nc, runs);
      /* Run by run and tap by tap: the clipping is the same in every
       * channel, whose rows of the buffer are taps apart. */
      for (int64_t u = 0; u < n_runs; ++u)
        for (int64_t t = 0, ky = 0, kx = 0; t < taps; ++t) {
          int64_t x, lo, hi;
          const int64_t iy = conv_run_clip(s, &runs[u], ky, kx, &x, &lo, &hi);
          if (++kx == s->kw) {
            kx = 0;
            ++ky;
          }
          if (iy < 0 || hi == lo)
            continue;
          float *to = dx + iy * s->w + x + lo;
          const float *from = col + t * ldc + runs[u].start + lo;
#if GRT_AVX512_PACKING
          if (g->level >= 4) {
            add_stretches_avx512(to, plane, from, taps * ldc, s->c, hi - lo);
            continue;
          }
#endif
          for (int64_t ch = 0; ch < s->c; ++ch, to += plane, from += taps * ldc)
            add_floats(to, from, hi - lo);
        }
      continue;
    }
    /* Per pixel of the block: its window's corner, and whether the
     * window lies inside the image (then at corner + ky*W + kx). */
    int64_t y0[NC], x0[NC], at[NC];
    unsigned char inside[NC];
    int64_t oy = q0 / s->ow, ox = q0 % s->ow;
    for (int64_t q = 0; q < nc; ++q) {
      y0[q] = oy * s->sh - s->ph;
      x0[q] = ox * s->sw - s->pw;
      at[q] = y0[q] * s->w + x0[q];
      inside[q] = y0[q] >= 0 && y0[q] + s->kh <= s->h && x0[q] >= 0 && x0[q] + s->kw <= s->w;
      if (++ox == s->ow) {
        ox = 0;
        ++oy;
      }
    }
    for (int64_t r = 0; r < m; ++r) {
      const int64_t t = r % taps, ky = t / s->kw, kx = t % s->kw;
      float *dxc = dx + r / taps * plane;
      const float *src = col + r * ldc;
      for (int64_t q = 0; q < nc; ++q) {
        const int64_t iy = y0[q] + ky, ix = x0[q] + kx;
        if (inside[q])
          dxc[at[q] + ky * s->w + kx] += src[q];
        else if ((uint64_t)iy < (uint64_t)s->h && (uint64_t)ix < (uint64_t)s->w)
          dxc[iy * s->w + ix] += src[q];
      }
    }
  }
  if (g->epilogue)
    g->epilogue(g->ptrs, g->batch, g->out, plane, 0, s->c, img * s->c * plane,
                img * s->c * plane + plane);
}

/* The columns of a panel of the weight gradient's im2col(x)^T: column q
 * (of `cols`) is tap (ky[q], kx[q]) of its channel, `off[q]` floats
 * (channel planes, rows and columns) from the corner of a window. Worked
 * out once per panel and depth block, for all its runs. */
typedef struct {
  int64_t cols, ky[GRT_MAX_NR], kx[GRT_MAX_NR], off[GRT_MAX_NR];
} wgrad_panel;

static void wgrad_panel_at(const conv_ctx *g, int64_t j0, wgrad_panel *pn) {
  const conv_geom *s = &g->s;
  const int64_t taps = s->kh * s->kw, plane = s->h * s->w;
  int64_t ch = j0 / taps, ky = j0 % taps / s->kw, kx = j0 % s->kw; /* then counted */
  pn->cols = g->n - j0 < g->nr ? g->n - j0 : g->nr;
  for (int64_t q = 0; q < pn->cols; ++q) {
    pn->ky[q] = ky;
    pn->kx[q] = kx;
    pn->off[q] = ch * plane + ky * s->w + kx;
    if (++kx == s->kw) {
      kx = 0;
      if (++ky == s->kh) {
        ky = 0;
        ++ch;
      }
    }
  }
}

/* Rows [0, len) of run r (stride 1 across) in the weight gradient's panel
 * pn of im2col(x)^T: row i, column q is the column's tap at the run's pixel
 * i. Each column reads a stretch of one input row, zero in the padding and
 * past the last column. Where every column is inside the image, the rows go
 * through transpose_stretches. */
static void wgrad_pack_run(const conv_ctx *g, const conv_run *r, const wgrad_panel *pn, float *d) {
  const conv_geom *s = &g->s;
  const int64_t nr = g->nr, len = r->len;
  /* The window corner of the run's first pixel, from the tensor's start. */
  const int64_t y0 = r->oy * s->sh - s->ph, x0 = r->ox - s->pw;
  const int64_t corner = r->img * s->c * s->h * s->w + y0 * s->w + x0;
  const float *src[GRT_MAX_NR];
  int64_t lo[GRT_MAX_NR], hi[GRT_MAX_NR], inner_lo = 0, inner_hi = len;
  for (int64_t q = 0; q < nr; ++q) {
    if (q >= pn->cols || (uint64_t)(y0 + pn->ky[q]) >= (uint64_t)s->h) {
      src[q] = zeros; /* a whole column of zeros */
      lo[q] = 0;
      hi[q] = len;
    } else {
      const int64_t x = x0 + pn->kx[q];
      src[q] = g->in0 + corner + pn->off[q];
      lo[q] = x >= 0 ? 0 : -x < len ? -x : len;
      hi[q] = s->w - x < len ? s->w - x : len; /* below lo past the image's right edge */
    }
    inner_lo = lo[q] > inner_lo ? lo[q] : inner_lo;
    inner_hi = hi[q] < inner_hi ? hi[q] : inner_hi;
  }
  if (inner_hi < inner_lo)
    inner_hi = inner_lo;
  for (int64_t i = 0; i < len; ++i) {
    if (i == inner_lo) { /* every column inside the image for [inner_lo, inner_hi) */
      const float *from[GRT_MAX_NR];
      for (int64_t q = 0; q < nr; ++q)
        from[q] = src[q] + i;
      transpose_stretches(from, nr, inner_hi - i, d + i * nr, nr, g->level);
      i = inner_hi;
      if (i == len)
        break;
    }
    for (int64_t q = 0; q < nr; ++q)
      d[i * nr + q] = i >= lo[q] && i < hi[q] ? src[q][i] : 0.0f;
  }
}

/* Mode 2, images [i0, i1): dw (or a partial sum) = dy x im2col(x)^T. */
static void conv_wgrad_task(void *arg, int64_t task, int thread) {
  const conv_ctx *g = arg;
  const conv_geom *s = &g->s;
  scratch *sc = &g->pool->scratch[thread];
  const int64_t mr = g->mr, nr = g->nr, m = g->m, n = g->n, copies = g->copies;
  const int64_t pix = s->oh * s->ow, plane = s->h * s->w, taps = s->kh * s->kw;
  const int64_t i0 = task * s->n / g->chunks, i1 = (task + 1) * s->n / g->chunks;
  const int64_t d0 = i0 * pix, d1 = i1 * pix;
  const int64_t panels = (n + nr - 1) / nr, slivers = g->m_pad / mr;
  float *c = task == 0 ? g->out : g->partial + (task - 1) * m * n;
  float *ap = guarded_reserve(&sc->pack_a, (size_t)(g->m_pad * KC * copies));
  float *bp = guarded_reserve(&sc->pack_b, (size_t)(panels * nr * KC));
  float *tile = reserve(&sc->tile, &sc->tile_size, (size_t)(mr * nr));
  if (!ap || !bp || !tile) {
    fprintf(stderr, "graphc: out of memory packing a convolution's weight gradient\n");
    abort();
  }
  if (d0 == d1) {
    memset(c, 0, (size_t)(m * n) * sizeof(float));
    return;
  }
  for (int64_t p0 = d0; p0 < d1; p0 += KC) {
    const int64_t kc = d1 - p0 < KC ? d1 - p0 : KC, acc = p0 > d0;
    /* A: rows of dy, the depth running over (image, pixel): each row's
     * stretch within an image read along memory. */
    for (int64_t is = 0; is < slivers; ++is) {
      float *d = ap + is * mr * kc * copies;
      for (int64_t p = 0; p < kc;) {
        const int64_t img = (p0 + p) / pix, q = (p0 + p) % pix;
        const int64_t len = pix - q < kc - p ? pix - q : kc - p;
        const float *src[GRT_MAX_MR];
        for (int64_t r = 0; r < mr; ++r)
          src[r] = is * mr + r < m ? g->in1 + (img * s->o + is * mr + r) * pix + q : zeros;
        if (copies == 1)
          transpose_stretches(src, mr, len, d + p * mr, mr, g->level);
        else
          for (int64_t r = 0; r < mr; ++r)
            for (int64_t i = 0; i < len; ++i)
              for (int64_t cp = 0; cp < copies; ++cp)
                d[((p + i) * mr + r) * copies + cp] = src[r][i];
        p += len;
      }
    }
    /* B: row (image, oy, ox), column (c, ky, kx) of im2col(x). With stride 1
     * across, column by column: each run of rows along an output row reads
     * a contiguous stretch of an input row. */
    conv_run runs[KC];
    const int64_t n_runs = s->sw == 1 ? conv_runs(s, pix, p0, kc, runs) : 0;
    for (int64_t ps = 0; ps < panels && s->sw == 1; ++ps) {
      wgrad_panel pn;
      wgrad_panel_at(g, ps * nr, &pn);
      for (int64_t u = 0; u < n_runs; ++u)
        wgrad_pack_run(g, &runs[u], &pn, bp + ps * nr * kc + runs[u].start * nr);
    }
    for (int64_t ps = 0; ps < panels && s->sw != 1; ++ps) {
      float *d = bp + ps * nr * kc;
      const int64_t j0 = ps * nr, cols = n - j0 < nr ? n - j0 : nr;
      int64_t off[GRT_MAX_NR], ky[GRT_MAX_NR], kx[GRT_MAX_NR], tap[GRT_MAX_NR];
      for (int64_t q = 0; q < cols; ++q) {
        const int64_t j = j0 + q, ch = j / taps, t = j - ch * taps;
        off[q] = ch * plane;
        ky[q] = t / s->kw;
        kx[q] = t % s->kw;
        tap[q] = off[q] + ky[q] * s->w + kx[q];
      }
      int64_t img = p0 / pix, oy = p0 % pix / s->ow, ox = p0 % s->ow;
      for (int64_t p = 0; p < kc; ++p) {
        float *row = d + p * nr;
        const float *x = g->in0 + img * s->c * plane;
        const int64_t yb = oy * s->sh - s->ph, xb = ox * s->sw - s->pw;
        if (yb >= 0 && yb + s->kh <= s->h && xb >= 0 && xb + s->kw <= s->w) {
          /* The window lies inside the image: no padding to test. */
          const float *corner = x + yb * s->w + xb;
          for (int64_t q = 0; q < cols; ++q)
            row[q] = corner[tap[q]];
        } else {
          for (int64_t q = 0; q < cols; ++q) {
            const int64_t iy = yb + ky[q], ix = xb + kx[q];
            row[q] = (uint64_t)iy < (uint64_t)s->h && (uint64_t)ix < (uint64_t)s->w
                         ? x[off[q] + iy * s->w + ix]
                         : 0.0f;
          }
        }
        for (int64_t q = cols; q < nr; ++q)
          row[q] = 0.0f;
        if (++ox == s->ow) {
          ox = 0;
          if (++oy == s->oh) {
            oy = 0;
            ++img;
          }
        }
      }
    }
    for (int64_t ps = 0; ps < panels; ++ps) {
      const int64_t j = ps * nr, cols = n - j < nr ? n - j : nr;
      for (int64_t is = 0; is < slivers; ++is) {
        const int64_t i = is * mr, rows = m - i < mr ? m - i : mr;
        const float *a = ap + i * kc * copies, *b = bp + j * kc;
        if (rows == mr && cols == nr) {
          g->micro(kc, a, b, c + i * n + j, n, acc);
          continue;
        }
        g->micro(kc, a, b, tile, nr, 0);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t q = 0; q < cols; ++q)
            c[(i + r) * n + j + q] = (acc ? c[(i + r) * n + j + q] : 0.0f) + tile[r * nr + q];
      }
    }
  }
}

/* Mode 2: dw += the partial sums, in chunk order, over a range of dw. */
static void conv_sum_task(void *arg, int64_t task, int thread) {
  (void)thread;
  const conv_ctx *g = arg;
  const int64_t size = g->m * g->n, begin = task * RANGE_CHUNK;
  const int64_t end = begin + RANGE_CHUNK < size ? begin + RANGE_CHUNK : size;
  for (int64_t ch = 1; ch < g->chunks; ++ch) {
    const float *p = g->partial + (ch - 1) * size;
    for (int64_t e = begin; e < end; ++e)
      g->out[e] += p[e];
  }
}

static void conv(grt_pool *pool, const int64_t *geom, const float *in0, const float *in1,
                 float *out, grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies,
                 int64_t isa_level, grt_epilogue_fn epilogue, grt_pool_fn pool_fn,
                 int64_t pool_rows, void **ptrs, int64_t batch) {
  conv_ctx g;
  memset(&g, 0, sizeof g);
  memcpy(&g.s, geom, sizeof g.s);
  const conv_geom *s = &g.s;
  g.in0 = in0;
  g.in1 = in1;
  g.out = out;
  g.micro = micro;
  g.epilogue = epilogue;
  g.pool_fn = pool_fn; /* mode 0 only: grt_conv checks */
  g.level = pack_level(isa_level);
  g.pool_rows = pool_rows;
  g.ptrs = ptrs;
  g.pool = pool;
  g.mr = mr;
  g.nr = nr;
  g.copies = a_copies;
  g.batch = batch;
  const int64_t taps = s->kh * s->kw;
  if (s->mode == 0) {
    g.m = s->o, g.k = s->c * taps, g.pix = s->oh * s->ow, g.n = s->n * g.pix;
  } else if (s->mode == 1) {
    g.m = s->c * taps, g.k = s->o, g.pix = s->oh * s->ow, g.n = s->n * g.pix;
  } else {
    g.m = s->o, g.n = s->c * taps, g.k = s->n * s->oh * s->ow;
  }
  if (g.m <= 0 || g.n <= 0)
    return;
  g.m_pad = (g.m + mr - 1) / mr * mr;
  if (s->mode == 2) {
    g.chunks = s->n < CONV_CHUNKS ? s->n : CONV_CHUNKS;
    if (g.chunks < 1) {
      memset(out, 0, (size_t)(g.m * g.n) * sizeof(float));
    } else {
      g.partial =
          reserve(&pool->partial, &pool->partial_size, (size_t)((g.chunks - 1) * g.m * g.n + 1));
      if (!g.partial) {
        fprintf(stderr, "graphc: out of memory for a convolution's weight gradient\n");
        abort();
      }
      grt_pool_run(pool, g.chunks, conv_wgrad_task, &g);
      grt_pool_run(pool, (g.m * g.n + RANGE_CHUNK - 1) / RANGE_CHUNK, conv_sum_task, &g);
    }
    if (epilogue)
      epilogue(ptrs, batch, out, g.n, 0, g.m, 0, g.n);
    return;
  }
  int64_t mc;
  if (grt_gemm_blocking(mr, nr, &mc, &g.nc) != 0)
    abort();
  g.ap = guarded_reserve(&pool->packed_a, (size_t)(g.k * g.m_pad * a_copies));
  if (!g.ap) {
    fprintf(stderr, "graphc: out of memory packing a convolution\n");
    abort();
  }
  grt_pool_run(pool, (g.k + KC - 1) / KC * (g.m_pad / mr), conv_pack_a_task, &g);
  if (g.pool_fn && g.pix > g.nc) {
    /* Bands of whole windows' rows, as many as fit NC columns (one at least). */
    const int64_t fit = g.nc / s->ow / pool_rows * pool_rows,
                  rows = fit > pool_rows ? fit : pool_rows;
    g.bands = (s->oh + rows - 1) / rows;
    g.nc = rows * s->ow;
    grt_pool_run(pool, s->n * g.bands, conv_task, &g);
  } else if (g.pool_fn) {
    /* Whole images: of up to 2 NC columns, the count that wastes the least
     * of the last panel. */
    int64_t best = 1;
    for (int64_t k = 2; k <= 2 * g.nc / g.pix; ++k)
      if ((k * g.pix + nr - 1) / nr * nr * best < (best * g.pix + nr - 1) / nr * nr * k)
        best = k;
    g.nc = best * g.pix;
    grt_pool_run(pool, (g.n + g.nc - 1) / g.nc, conv_task, &g);
  } else if (s->mode == 0)
    grt_pool_run(pool, (g.n + g.nc - 1) / g.nc, conv_task, &g);
  else
    grt_pool_run(pool, s->n, conv_col2im_task, &g);
}

void grt_conv(grt_pool *pool, const int64_t *geom, const float *in0, const float *in1, float *out,
              grt_micro_fn micro, int64_t mr, int64_t nr, int64_t a_copies, int64_t isa_level,
              grt_epilogue_fn epilogue, grt_pool_fn pool_fn, int64_t pool_rows, void **ptrs,
              int64_t batch) {
  int64_t mc, nc;
  if (grt_gemm_blocking(mr, nr, &mc, &nc) != 0 || a_copies < 1 || a_copies > GRT_MAX_A_COPIES ||
      geom[0] < 0 || geom[0] > 2 || (pool_fn && (geom[0] != 0 || pool_rows < 1))) {
    fprintf(stderr, "graphc: internal error: convolution mode %lld on a %lld x %lld tile\n",
            (long long)geom[0], (long long)mr, (long long)nr);
    abort();
  }
  double t0 = profiling() ? now() : 0;
  conv(pool, geom, in0, in1, out, micro, mr, nr, a_copies, isa_level, epilogue, pool_fn, pool_rows,
       ptrs, batch);
  if (t0 > 0) {
    const int64_t taps = geom[6] * geom[7], pix = geom[12] * geom[13];
    const int64_t m = geom[0] == 1 ? geom[2] * taps : geom[5];
    const int64_t n = geom[0] == 2 ? geom[2] * taps : geom[1] * pix;
    const int64_t k = geom[0] == 0 ? geom[2] * taps : geom[0] == 1 ? geom[5] : geom[1] * pix;
    prof_add((const void *)out, m, n, k, 0, now() - t0, 0);
  }
}
