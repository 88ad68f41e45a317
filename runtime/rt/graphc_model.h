/* runtime/rt/graphc_model.h - the C API of an ahead-of-time compiled model.
 *
 * `graphc compile M --emit lib -o out/mlp` writes a descriptor of the model
 * (its parameter tensors, optimizer state, and the generated run functions
 * of the training step and the evaluation pass) and thin `mlp_*` functions
 * that call these with it. This file holds everything that is the same for
 * every model: contexts, Torch7's initialisation, batch checks, and
 * safetensors checkpoints in graphc's format. Plain C11: libc, libm and
 * pthreads only.
 */
#ifndef GRAPHC_MODEL_H
#define GRAPHC_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  GRT_OK = 0,
  GRT_ERR_ARGUMENT = 1, /* a null pointer, a bad batch size, a bad label */
  GRT_ERR_IO = 2,       /* a file could not be read or written */
  GRT_ERR_FORMAT = 3,   /* a file is not a checkpoint of this model */
  GRT_ERR_MEMORY = 4,   /* out of memory */
  GRT_ERR_DEVICE = 5,   /* the GPU or its driver failed (cuda target) */
  GRT_ERR_CPU = 6,      /* this CPU cannot execute the library's code */
};

typedef void (*grt_run_fn)(void **io, int64_t n, void *arena, void *pool);

typedef struct {
  const char *name; /* PyTorch state_dict name, e.g. "1.weight" */
  int64_t offset;   /* in the flat parameter buffer */
  int64_t rank;
  int64_t shape[4];
  double init_bound;   /* Torch7's reset(): uniform in [-bound, bound] ... */
  double init_shift;   /* ... plus this */
  int64_t trainable;   /* 0: a buffer the step updates (BatchNorm's running statistics) */
  int64_t init_normal; /* 1: normal, mean init_shift, deviation init_bound, instead */
} grt_tensor_desc;

typedef struct {
  grt_run_fn run; /* the cuda target's host side: NULL (grt_isa_desc has the CPU's) */
  int64_t arena_bytes;
  int64_t num_inputs, num_outputs;
  const char *const *inputs; /* names, in the run function's io order */
  const char *const *outputs;
} grt_program_desc;

/* The step's and the evaluation pass's code built for one vector ISA. */
typedef struct {
  const char *name; /* "avx512", "avx2" or "generic" */
  int64_t level;    /* the x86-64 level it needs (grt_cpu_level) */
  grt_run_fn step, predict;
  grt_run_fn gradients, update; /* NULL: the step is not split (see below) */
} grt_isa_desc;

typedef struct {
  const char *name;
  int64_t num_params;
  int64_t num_tensors;
  const grt_tensor_desc *tensors;
  int64_t num_slots;
  const char *const *slots; /* optimizer state buffers */
  int64_t sample_numel, classes, max_batch;
  const char *optimizer; /* the optimizer and every setting in effect */
  double learning_rate;
  grt_program_desc step, predict;
  uint64_t seed; /* of the initial weights and Dropout's masks (graphc --seed) */
  /* The CPU code, best ISA first: create takes the first this CPU executes
   * and refuses when there is none (none at all for the cuda target). */
  int64_t num_isas;
  const grt_isa_desc *isas;
  /* The step split in two for data parallelism (all zero when not compiled):
   * gradients (x, labels, params, step, seed, offset -> loss, output, grad)
   * and update (params, grad, step, state -> params, state, step). */
  grt_program_desc gradients, update;
} grt_model_desc;

typedef struct grt_model grt_model;

int grt_model_create(const grt_model_desc *d, grt_model **out, const char *weights, int threads);
void grt_model_destroy(grt_model *m);
int grt_model_train_step(grt_model *m, const float *x, const int32_t *labels, int64_t n,
                         float *loss);
int grt_model_predict(grt_model *m, const float *x, int64_t n, float *output);
float *grt_model_params(grt_model *m);
int64_t grt_model_step(const grt_model *m);
int grt_model_save(grt_model *m, const char *path);
int grt_model_load(grt_model *m, const char *path);
/* For graphc_cuda_model.c, which keeps a host context beside the device. */
float *grt_model_state(grt_model *m, int64_t slot);
void grt_model_set_step(grt_model *m, int64_t step);
int32_t grt_model_step_seed(const grt_model *m); /* Dropout's seed for the next step */
/* The model's output (n x classes floats) for the batch of the last
 * training step, computed before the update. */
const float *grt_model_output(const grt_model *m);
/* The seed of Dropout's masks from now on (a context starts with d->seed). */
void grt_model_set_seed(grt_model *m, uint64_t seed);

/* The step in two halves, so that a caller can average the gradient of
 * several processes between them (data parallelism; the context must come
 * from a descriptor with a split step). compute_gradients runs forward and
 * backward on n samples, `offset` being the samples of the global batch
 * before these (Dropout's masks are drawn per global sample); `grad`
 * (num_params floats) receives the batch-mean gradient, followed, in the
 * tail of the buffers (BatchNorm's running statistics), by their new
 * values. apply_update makes the optimizer update with `grad` (the tail
 * becomes the buffers) and counts the step. Together they compute what
 * grt_model_train_step computes. */
int grt_model_compute_gradients(grt_model *m, const float *x, const int32_t *labels, int64_t n,
                                int64_t offset, float *grad, float *loss);
int grt_model_apply_update(grt_model *m, const float *grad);
/* Whether `m` has the split step. */
int grt_model_can_split(const grt_model *m);

/* A step run one kernel group at a time: the JIT's stepwise twin of the
 * step's run function (graphc's non-finite diagnosis). */
typedef void (*grt_run_kernels_fn)(void **io, int64_t n, void *arena, void *pool, int64_t begin,
                                   int64_t end, void **table);
/* Runs kernel groups [begin, end) of the training step with `fn` on the
 * batch, the step counter and seed inputs set as grt_model_train_step sets
 * them; `table` receives every value's buffer. Consecutive ranges make one
 * step. The step counter is not advanced (grt_model_set_step does). */
int grt_model_train_step_kernels(grt_model *m, grt_run_kernels_fn fn, const float *x,
                                 const int32_t *labels, int64_t n, int64_t begin, int64_t end,
                                 void **table);

/* The vector ISA whose code `m` runs ("avx512", ...; "" on the cuda target). */
const char *grt_model_isa(const grt_model *m);
/* The last error of `m`, or of the last failed create when `m` is null. */
const char *grt_model_error(const grt_model *m);

#ifdef __cplusplus
}
#endif

#endif
