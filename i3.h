/* i3.h - the training step of model 'i3', compiled ahead of time by graphc.
 *
 * Link libi3.a with libc, libm and pthreads:  cc prog.c -L. -li3 -lm -lpthread
 * CPU code: avx2 (the least it needs), and avx512 where the CPU has it.
 * i3_create refuses, with I3_ERR_CPU, a CPU that cannot execute it
 * (i3_isa says which code runs; graphc compile --cpu generic builds code for
 * any x86-64 CPU).
 * Every function is thread-compatible: one context per thread, or a lock.
 *
 *   i3_ctx *ctx;
 *   if (i3_create(&ctx, NULL, 0) != I3_OK) { puts(i3_error(NULL)); return 1; }
 *   float loss;
 *   i3_train_step(ctx, x, labels, n, &loss);     (x: n x 40 floats, labels: n ints)
 *   i3_predict(ctx, x, n, out);                  (out: n x 10 floats)
 *   i3_save(ctx, "i3.safetensors");
 *   i3_destroy(ctx);
 *
 * Inputs are per-sample shape [40], row-major; labels are class indices in
 * [0, 10). A batch holds 1 to 256 samples; any size in between works.
 * Optimizer: optim.sgd {learningRate = 0.001, learningRateDecay = 0, weightDecay = 0, momentum = 0, dampening = 0, nesterov = false}.
 * Checkpoints are safetensors files with PyTorch nn.Sequential names
 * ("1.weight", ...), optimizer state and the step counter; graphc's own
 * checkpoints load here and these load into graphc and PyTorch.
 */
#ifndef I3_H
#define I3_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes: 0 is success; otherwise i3_error(ctx) says what failed. */
enum {
  I3_OK = 0,
  I3_ERR_ARGUMENT = 1, /* a null pointer, a batch size or label out of range */
  I3_ERR_IO = 2,       /* a file could not be read or written */
  I3_ERR_FORMAT = 3,   /* a file is not a checkpoint of this model */
  I3_ERR_MEMORY = 4,   /* out of memory */
  I3_ERR_DEVICE = 5,   /* the GPU or its driver failed (cuda target) */
  I3_ERR_CPU = 6       /* this CPU cannot execute the library's code (see above) */
};

typedef struct i3_ctx i3_ctx;

/** Creates a context: Torch7-initialised weights (the same as i3.safetensors),
 *  or those of `weights` (a safetensors file) when it is not NULL. `threads`
 *  0 uses every core. On failure *ctx is NULL and i3_error(NULL) explains. */
int i3_create(i3_ctx **ctx, const char *weights, int threads);
void i3_destroy(i3_ctx *ctx);

/** One training step on n samples: forward, loss, backward, optimizer update.
 *  *loss receives the batch's mean loss. */
int i3_train_step(i3_ctx *ctx, const float *x, const int32_t *labels, int64_t n,
                   float *loss);
/** The model's output for n samples (evaluation mode: Dropout off). */
int i3_predict(i3_ctx *ctx, const float *x, int64_t n, float *out);


/** The flat parameter buffer (i3_num_params() floats), readable and writable. */
float *i3_params(i3_ctx *ctx);
/** Optimizer updates done so far. */
int64_t i3_step(i3_ctx *ctx);
/** Saves weights, optimizer state and step counter (atomically). */
int i3_save(i3_ctx *ctx, const char *path);
/** Loads weights and, when present, optimizer state and step counter. */
int i3_load(i3_ctx *ctx, const char *path);
/** The vector ISA whose code ctx runs: "avx512", "avx2" or "generic". */
const char *i3_isa(i3_ctx *ctx);
/** What the last failed call on ctx (or the last failed create, for NULL) said. */
const char *i3_error(i3_ctx *ctx);

int64_t i3_num_params(void);   /* 1540 */
int64_t i3_max_batch(void);    /* 256 */
int64_t i3_classes(void);      /* 10 */
int64_t i3_sample_size(void);  /* 40 floats per sample */
double i3_learning_rate(void);
const char *i3_optimizer(void);

#ifdef __cplusplus
}
#endif

#endif
