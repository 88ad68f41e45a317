/* runtime/rt/graphc_model.c - contexts, initialisation and checkpoints for
 * ahead-of-time compiled models (see graphc_model.h).
 *
 * Initial parameters and Dropout seeds use the same counter-based generator
 * as graphc (ir/graphc_random.h), so a fresh context holds exactly the weights
 * `graphc compile --emit lib` wrote next to the library, and a step computes
 * what graphc's JIT computes for the same weights and batch.
 */
#define _POSIX_C_SOURCE 200809L
#include "graphc_model.h"

#include "graphc_rt.h"
#include "ir/graphc_io.h"
#include "ir/graphc_random.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GRT_MAX_IO = 64 };

struct grt_model {
  const grt_model_desc *d;
  const grt_isa_desc *isa; /* the code this CPU runs; NULL on the cuda target */
  grt_pool *pool;
  float *params, *output, **state;
  void *step_arena, *predict_arena, *gradients_arena, *update_arena;
  const float *grad; /* the gradient buffer of the split step's call */
  int64_t step;
  uint64_t seed;
  float loss, step_in, step_out;
  int32_t seed_in, offset_in;
  char error[512];
};

static char create_error[512];

static int fail(grt_model *m, int code, const char *fmt, ...) {
  char *buf = m ? m->error : create_error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(m->error), fmt, ap);
  va_end(ap);
  return code;
}

static void init_params(grt_model *m) {
  const grt_model_desc *d = m->d;
  for (int64_t t = 0; t < d->num_tensors; ++t) {
    const grt_tensor_desc *p = &d->tensors[t];
    int64_t numel = 1;
    for (int64_t r = 0; r < p->rank; ++r)
      numel *= p->shape[r];
    for (int64_t i = 0; i < numel; ++i) {
      double v;
      if (p->init_normal) { /* Box-Muller, as ir/ModelInfo.cpp */
        double u1 = graphc_uniform01(m->seed, (uint64_t)t + 1, 2 * (uint64_t)i),
               u2 = graphc_uniform01(m->seed, (uint64_t)t + 1, 2 * (uint64_t)i + 1);
        v = p->init_shift + p->init_bound * sqrt(-2 * log(1 - u1)) * cos(6.283185307179586 * u2);
      } else {
        v = (2 * graphc_uniform01(m->seed, (uint64_t)t + 1, (uint64_t)i) - 1) * p->init_bound +
            p->init_shift;
      }
      m->params[p->offset + i] = (float)v;
    }
  }
}

/* --- contexts ------------------------------------------------------------------- */

static void *zeroed(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  if (bytes == 0)
    bytes = 64;
  void *p = aligned_alloc(64, bytes);
  if (p)
    memset(p, 0, bytes);
  return p;
}

int grt_model_create(const grt_model_desc *d, grt_model **out, const char *weights, int threads) {
  if (!out)
    return fail(NULL, GRT_ERR_ARGUMENT, "create: the context pointer is null");
  *out = NULL;
  /* The best code this CPU executes; refused here, rather than dying with
   * SIGILL in the first step, when there is none. */
  const grt_isa_desc *isa = NULL;
  for (int64_t i = 0; i < d->num_isas && !isa; ++i)
    if (d->isas[i].level <= grt_cpu_level())
      isa = &d->isas[i];
  if (d->num_isas > 0 && !isa) {
    const grt_isa_desc *least = &d->isas[d->num_isas - 1];
    return fail(NULL, GRT_ERR_CPU,
                "create: %s was compiled for %s (x86-64-v%lld), which this CPU (x86-64-v%d) "
                "cannot execute; compile it again with graphc compile --cpu generic",
                d->name, least->name, (long long)least->level, grt_cpu_level());
  }
  grt_model *m = calloc(1, sizeof(grt_model));
  if (!m)
    return fail(NULL, GRT_ERR_MEMORY, "create: out of memory");
  m->d = d;
  m->isa = isa;
  m->seed = d->seed;
  m->pool = grt_pool_create(threads);
  m->params = zeroed((size_t)d->num_params * sizeof(float));
  m->output = zeroed((size_t)(d->max_batch * d->classes) * sizeof(float));
  m->state = calloc((size_t)d->num_slots + 1, sizeof(float *));
  m->step_arena = zeroed((size_t)d->step.arena_bytes);
  m->predict_arena = zeroed((size_t)d->predict.arena_bytes);
  m->gradients_arena = zeroed((size_t)d->gradients.arena_bytes);
  m->update_arena = zeroed((size_t)d->update.arena_bytes);
  int ok = m->pool && m->params && m->output && m->state && m->step_arena && m->predict_arena &&
           m->gradients_arena && m->update_arena;
  for (int64_t s = 0; ok && s < d->num_slots; ++s)
    ok = (m->state[s] = zeroed((size_t)d->num_params * sizeof(float))) != NULL;
  if (!ok) {
    grt_model_destroy(m);
    return fail(NULL, GRT_ERR_MEMORY, "create: out of memory");
  }
  init_params(m);
  if (weights) {
    int rc = grt_model_load(m, weights);
    if (rc != GRT_OK) {
      fail(NULL, rc, "%s", m->error);
      grt_model_destroy(m);
      return rc;
    }
  }
  *out = m;
  return GRT_OK;
}

void grt_model_destroy(grt_model *m) {
  if (!m)
    return;
  grt_pool_destroy(m->pool);
  free(m->params);
  free(m->output);
  if (m->state)
    for (int64_t s = 0; s < m->d->num_slots; ++s)
      free(m->state[s]);
  free(m->state);
  free(m->step_arena);
  free(m->predict_arena);
  free(m->gradients_arena);
  free(m->update_arena);
  free(m);
}

float *grt_model_params(grt_model *m) { return m ? m->params : NULL; }
int64_t grt_model_step(const grt_model *m) { return m ? m->step : -1; }
const char *grt_model_isa(const grt_model *m) { return m && m->isa ? m->isa->name : ""; }
const char *grt_model_error(const grt_model *m) { return m ? m->error : create_error; }
float *grt_model_state(grt_model *m, int64_t slot) {
  return m && slot >= 0 && slot < m->d->num_slots ? m->state[slot] : NULL;
}
void grt_model_set_step(grt_model *m, int64_t step) {
  if (m)
    m->step = step;
}
const float *grt_model_output(const grt_model *m) { return m ? m->output : NULL; }
void grt_model_set_seed(grt_model *m, uint64_t seed) {
  if (m)
    m->seed = seed;
}
int32_t grt_model_step_seed(const grt_model *m) {
  return m ? graphc_step_seed(m->seed, m->step) : 0;
}

/* The memory behind io name `name` of a step or predict call. */
static void *slot_memory(grt_model *m, const char *name, int output, const float *x,
                         const int32_t *labels, float *out) {
  if (!strcmp(name, GRAPHC_IO_X))
    return (void *)x;
  if (!strcmp(name, GRAPHC_IO_LABELS))
    return (void *)labels;
  if (!strcmp(name, GRAPHC_IO_PARAMS))
    return m->params;
  if (!strcmp(name, GRAPHC_IO_STEP))
    return output ? &m->step_out : &m->step_in;
  if (!strcmp(name, GRAPHC_IO_SEED))
    return &m->seed_in;
  if (!strcmp(name, GRAPHC_IO_OFFSET))
    return &m->offset_in;
  if (!strcmp(name, GRAPHC_IO_GRAD))
    return (void *)m->grad;
  if (!strcmp(name, GRAPHC_IO_LOSS))
    return &m->loss;
  if (!strcmp(name, GRAPHC_IO_OUTPUT))
    return out;
  if (!strncmp(name, GRAPHC_IO_STATE, sizeof GRAPHC_IO_STATE - 1))
    for (int64_t s = 0; s < m->d->num_slots; ++s)
      if (!strcmp(name + sizeof GRAPHC_IO_STATE - 1, m->d->slots[s]))
        return m->state[s];
  return NULL;
}

/* The io array of program `p` in the run function's order: inputs, then
 * outputs. */
static int bind(grt_model *m, const grt_program_desc *p, void **io, const float *x,
                const int32_t *labels, float *out) {
  if (p->num_inputs + p->num_outputs > GRT_MAX_IO)
    return fail(m, GRT_ERR_ARGUMENT, "the model has too many inputs and outputs");
  for (int64_t i = 0; i < p->num_inputs + p->num_outputs; ++i) {
    int output = i >= p->num_inputs;
    const char *name = output ? p->outputs[i - p->num_inputs] : p->inputs[i];
    io[i] = slot_memory(m, name, output, x, labels, out);
    if (!io[i])
      return fail(m, GRT_ERR_ARGUMENT, "no memory for '%s'", name);
  }
  return GRT_OK;
}

static int run(grt_model *m, const grt_program_desc *p, grt_run_fn fn, void *arena, int64_t n,
               const float *x, const int32_t *labels, float *out) {
  if (!fn)
    return fail(m, GRT_ERR_ARGUMENT, "this library has no CPU code for the step");
  void *io[GRT_MAX_IO];
  int rc = bind(m, p, io, x, labels, out);
  if (rc != GRT_OK)
    return rc;
  fn(io, n, arena, m->pool);
  return GRT_OK;
}

static int check_batch(grt_model *m, const float *x, int64_t n) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  if (!x)
    return fail(m, GRT_ERR_ARGUMENT, "the input pointer is null");
  if (n < 1 || n > m->d->max_batch)
    return fail(m, GRT_ERR_ARGUMENT, "batch of %" PRId64 " samples: expected 1 to %" PRId64, n,
                m->d->max_batch);
  return GRT_OK;
}

/* Checks a training step's arguments and sets its step and seed inputs. */
static int start_step(grt_model *m, const float *x, const int32_t *labels, int64_t n) {
  int rc = check_batch(m, x, n);
  if (rc != GRT_OK)
    return rc;
  if (!labels)
    return fail(m, GRT_ERR_ARGUMENT, "the labels pointer is null");
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= m->d->classes)
      return fail(m, GRT_ERR_ARGUMENT, "label %d of sample %" PRId64 " is outside [0, %" PRId64 ")",
                  labels[i], i, m->d->classes);
  m->step_in = (float)m->step;
  m->seed_in = graphc_step_seed(m->seed, m->step);
  return GRT_OK;
}

int grt_model_train_step(grt_model *m, const float *x, const int32_t *labels, int64_t n,
                         float *loss) {
  int rc = start_step(m, x, labels, n);
  if (rc != GRT_OK)
    return rc;
  if (!loss)
    return fail(m, GRT_ERR_ARGUMENT, "the loss pointer is null");
  rc = run(m, &m->d->step, m->isa ? m->isa->step : NULL, m->step_arena, n, x, labels, m->output);
  if (rc != GRT_OK)
    return rc;
  *loss = m->loss;
  ++m->step;
  return GRT_OK;
}

int grt_model_can_split(const grt_model *m) {
  return m && m->isa && m->isa->gradients && m->isa->update && m->d->gradients.num_outputs > 0;
}

int grt_model_compute_gradients(grt_model *m, const float *x, const int32_t *labels, int64_t n,
                                int64_t offset, float *grad, float *loss) {
  int rc = start_step(m, x, labels, n);
  if (rc != GRT_OK)
    return rc;
  if (!grt_model_can_split(m))
    return fail(m, GRT_ERR_ARGUMENT, "this model was compiled without the split step");
  if (!grad || !loss)
    return fail(m, GRT_ERR_ARGUMENT, "the gradient or loss pointer is null");
  if (offset < 0 || offset > INT32_MAX)
    return fail(m, GRT_ERR_ARGUMENT, "sample offset %" PRId64 " is out of range", offset);
  m->offset_in = (int32_t)offset;
  m->grad = grad;
  rc = run(m, &m->d->gradients, m->isa->gradients, m->gradients_arena, n, x, labels, m->output);
  m->grad = NULL;
  if (rc != GRT_OK)
    return rc;
  *loss = m->loss;
  return GRT_OK;
}

int grt_model_apply_update(grt_model *m, const float *grad) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  if (!grt_model_can_split(m))
    return fail(m, GRT_ERR_ARGUMENT, "this model was compiled without the split step");
  if (!grad)
    return fail(m, GRT_ERR_ARGUMENT, "the gradient pointer is null");
  m->step_in = (float)m->step;
  m->grad = grad;
  int rc = run(m, &m->d->update, m->isa->update, m->update_arena, 1, m->params, NULL, NULL);
  m->grad = NULL;
  if (rc != GRT_OK)
    return rc;
  ++m->step;
  return GRT_OK;
}

int grt_model_train_step_kernels(grt_model *m, grt_run_kernels_fn fn, const float *x,
                                 const int32_t *labels, int64_t n, int64_t begin, int64_t end,
                                 void **table) {
  int rc = start_step(m, x, labels, n);
  if (rc != GRT_OK)
    return rc;
  if (!fn || !table)
    return fail(m, GRT_ERR_ARGUMENT, "no stepwise run function or value table");
  void *io[GRT_MAX_IO];
  rc = bind(m, &m->d->step, io, x, labels, m->output);
  if (rc != GRT_OK)
    return rc;
  fn(io, n, m->step_arena, m->pool, begin, end, table);
  return GRT_OK;
}

int grt_model_predict(grt_model *m, const float *x, int64_t n, float *output) {
  int rc = check_batch(m, x, n);
  if (rc != GRT_OK)
    return rc;
  if (!output)
    return fail(m, GRT_ERR_ARGUMENT, "the output pointer is null");
  return run(m, &m->d->predict, m->isa ? m->isa->predict : NULL, m->predict_arena, n, x, NULL,
             output);
}

/* --- safetensors ------------------------------------------------------------------ */

typedef struct {
  char *text;
  size_t len, cap;
} sbuf;

static int put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->text ? b->text + b->len : NULL, b->text ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (k < 0)
      return 0;
    if (b->text && b->len + (size_t)k < b->cap) {
      b->len += (size_t)k;
      return 1;
    }
    size_t cap = (b->cap + (size_t)k + 1) * 2;
    char *t = realloc(b->text, cap);
    if (!t)
      return 0;
    b->text = t;
    b->cap = cap;
  }
}

static int64_t numel(const grt_tensor_desc *t) {
  int64_t n = 1;
  for (int64_t r = 0; r < t->rank; ++r)
    n *= t->shape[r];
  return n;
}

/* For a BatchNorm's running mean ("3.running_mean", a buffer): the length of
 * its layer's prefix ("3"), whose num_batches_tracked save writes; else -1. */
static int batch_count_prefix(const grt_tensor_desc *t) {
  static const char mean[] = ".running_mean";
  size_t n = strlen(t->name), k = sizeof mean - 1;
  if (t->trainable || n <= k || strcmp(t->name + n - k, mean) != 0)
    return -1;
  return (int)(n - k);
}

int grt_model_save(grt_model *m, const char *path) {
  if (!m || !path)
    return m ? fail(m, GRT_ERR_ARGUMENT, "save: the path is null") : GRT_ERR_ARGUMENT;
  const grt_model_desc *d = m->d;
  sbuf h = {0};
  int ok = put(&h, "{");
  uint64_t offset = 0;
  for (int64_t s = -1; s < d->num_slots; ++s)
    for (int64_t t = 0; t < d->num_tensors; ++t) {
      const grt_tensor_desc *p = &d->tensors[t];
      uint64_t bytes = (uint64_t)numel(p) * 4;
      if (s >= 0 && !p->trainable)
        continue; /* a buffer keeps no optimizer state */
      if (s < 0)
        ok = ok && put(&h, "\"%s\":{\"dtype\":\"F32\",\"shape\":[", p->name);
      else
        ok = ok && put(&h, "\"optim.%s.%s\":{\"dtype\":\"F32\",\"shape\":[", d->slots[s], p->name);
      for (int64_t r = 0; r < p->rank; ++r)
        ok = ok && put(&h, r ? ",%" PRId64 : "%" PRId64, p->shape[r]);
      ok = ok && put(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]},", offset, offset + bytes);
      offset += bytes;
    }
  /* PyTorch's BatchNorm counts its batches (int64 scalars): one per step. */
  for (int64_t t = 0; t < d->num_tensors; ++t) {
    int prefix = batch_count_prefix(&d->tensors[t]);
    if (prefix < 0)
      continue;
    ok = ok && put(&h,
                   "\"%.*s.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],"
                   "\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]},",
                   prefix, d->tensors[t].name, offset, offset + 8);
    offset += 8;
  }
  ok = ok && put(&h,
                 "\"__metadata__\":{\"graphc.model\":\"%s\",\"graphc.optimizer\":\"%s\","
                 "\"graphc.step\":\"%" PRId64 "\",\"graphc.epoch\":\"0\",\"graphc.seed\":\"%" PRIu64
                 "\"}}",
                 d->name, d->optimizer, m->step, m->seed);
  while (ok && h.len % 8)
    ok = put(&h, " ");
  if (!ok) {
    free(h.text);
    return fail(m, GRT_ERR_MEMORY, "save: out of memory");
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(h.text);
    return fail(m, GRT_ERR_IO, "save: cannot write %s: %s", path, strerror(errno));
  }
  uint64_t hl = h.len;
  unsigned char le[8];
  for (int i = 0; i < 8; ++i)
    le[i] = (unsigned char)(hl >> (8 * i));
  ok = fwrite(le, 1, 8, f) == 8 && fwrite(h.text, 1, h.len, f) == h.len;
  free(h.text);
  for (int64_t s = -1; ok && s < d->num_slots; ++s) {
    const float *base = s < 0 ? m->params : m->state[s];
    for (int64_t t = 0; ok && t < d->num_tensors; ++t)
      if (s < 0 || d->tensors[t].trainable) /* as the header lists them */
        ok = fwrite(base + d->tensors[t].offset, 4, (size_t)numel(&d->tensors[t]), f) ==
             (size_t)numel(&d->tensors[t]);
  }
  for (int64_t t = 0; ok && t < d->num_tensors; ++t)
    if (batch_count_prefix(&d->tensors[t]) >= 0) {
      unsigned char count[8];
      for (int i = 0; i < 8; ++i)
        count[i] = (unsigned char)((uint64_t)m->step >> (8 * i));
      ok = fwrite(count, 1, 8, f) == 8;
    }
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return fail(m, GRT_ERR_IO, "save: cannot write %s: %s", path, strerror(e));
  }
  return GRT_OK;
}

/* The header entry of tensor `key`: dtype F32, its shape, its data range. */
static int find_tensor(const char *header, const char *key, int64_t *shape, int64_t *rank,
                       uint64_t *begin, uint64_t *end) {
  char quoted[520];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char *at = strstr(header, quoted);
  if (!at)
    return 0;
  const char *obj = strchr(at + strlen(quoted), '{');
  const char *close = obj ? strchr(obj, '}') : NULL;
  if (!obj || !close)
    return -1;
  const char *dt = strstr(obj, "\"dtype\"");
  const char *sh = strstr(obj, "\"shape\"");
  const char *off = strstr(obj, "\"data_offsets\"");
  if (!dt || !sh || !off || dt > close || sh > close || off > close || !strstr(dt, "\"F32\"") ||
      strstr(dt, "\"F32\"") > close)
    return -1;
  const char *p = strchr(sh, '[');
  *rank = 0;
  while (p && p < close && *p != ']') {
    ++p;
    while (*p == ' ')
      ++p;
    if (*p == ']')
      break;
    char *e;
    long long v = strtoll(p, &e, 10);
    if (e == p || *rank >= 4 || v < 0)
      return -1;
    shape[(*rank)++] = v;
    p = e;
    while (*p == ' ')
      ++p;
  }
  p = strchr(off, '[');
  char *e;
  if (!p)
    return -1;
  *begin = strtoull(p + 1, &e, 10);
  p = strchr(e, ',');
  if (!p)
    return -1;
  *end = strtoull(p + 1, &e, 10);
  return 1;
}

int grt_model_load(grt_model *m, const char *path) {
  if (!m || !path)
    return m ? fail(m, GRT_ERR_ARGUMENT, "load: the path is null") : GRT_ERR_ARGUMENT;
  const grt_model_desc *d = m->d;
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(m, GRT_ERR_IO, "load: cannot open %s: %s", path, strerror(errno));
  int rc = GRT_OK;
  char *header = NULL;
  float *scratch = NULL;
  unsigned char le[8];
  uint64_t hl = 0;
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0)
    size = ftell(f);
  rewind(f);
  if (size < 8 || fread(le, 1, 8, f) != 8) {
    rc = fail(m, GRT_ERR_FORMAT, "load: %s is not a safetensors file", path);
    goto done;
  }
  for (int i = 0; i < 8; ++i)
    hl |= (uint64_t)le[i] << (8 * i);
  if (hl > (uint64_t)size - 8 || hl > (100u << 20)) {
    rc = fail(m, GRT_ERR_FORMAT, "load: %s has a header of %" PRIu64 " bytes", path, hl);
    goto done;
  }
  header = malloc(hl + 1);
  if (!header || fread(header, 1, hl, f) != hl) {
    rc = fail(m, GRT_ERR_IO, "load: cannot read %s", path);
    goto done;
  }
  header[hl] = 0;
  uint64_t data = 8 + hl, available = (uint64_t)size - data;
  scratch = zeroed((size_t)d->num_params * sizeof(float) * (size_t)(1 + d->num_slots));
  if (!scratch) {
    rc = fail(m, GRT_ERR_MEMORY, "load: out of memory");
    goto done;
  }
  int have_state = 1; /* every slot present (none needed under plain SGD) */
  for (int64_t s = -1; s < d->num_slots; ++s)
    for (int64_t t = 0; t < d->num_tensors; ++t) {
      const grt_tensor_desc *p = &d->tensors[t];
      char key[512];
      if (s >= 0 && !p->trainable)
        continue;
      if (s < 0)
        snprintf(key, sizeof key, "%s", p->name);
      else
        snprintf(key, sizeof key, "optim.%s.%s", d->slots[s], p->name);
      int64_t shape[4], rank;
      uint64_t b, e;
      int found = find_tensor(header, key, shape, &rank, &b, &e);
      if (found == 0 && s >= 0) {
        have_state = 0;
        continue;
      }
      int same = found == 1 && rank == p->rank;
      for (int64_t r = 0; same && r < rank; ++r)
        same = shape[r] == p->shape[r];
      if (found == 0) {
        rc = fail(m, GRT_ERR_FORMAT, "load: %s has no tensor '%s'", path, key);
        goto done;
      }
      if (!same || e < b || e - b != (uint64_t)numel(p) * 4 || e > available) {
        rc = fail(m, GRT_ERR_FORMAT, "load: %s: tensor '%s' is not F32 of this model's shape", path,
                  key);
        goto done;
      }
      float *dst = scratch + (s + 1) * d->num_params + p->offset;
      if (fseek(f, (long)(data + b), SEEK_SET) != 0 ||
          fread(dst, 4, (size_t)numel(p), f) != (size_t)numel(p)) {
        rc = fail(m, GRT_ERR_IO, "load: cannot read %s", path);
        goto done;
      }
    }
  memcpy(m->params, scratch, (size_t)d->num_params * sizeof(float));
  for (int64_t s = 0; s < d->num_slots; ++s) {
    if (have_state)
      memcpy(m->state[s], scratch + (s + 1) * d->num_params, (size_t)d->num_params * sizeof(float));
    else
      memset(m->state[s], 0, (size_t)d->num_params * sizeof(float));
  }
  m->step = 0;
  const char *st = strstr(header, "\"graphc.step\"");
  if (st && have_state) {
    st = strchr(st + 13, '"');
    if (st)
      m->step = strtoll(st + 1, NULL, 10);
  }
done:
  free(header);
  free(scratch);
  fclose(f);
  return rc;
}
