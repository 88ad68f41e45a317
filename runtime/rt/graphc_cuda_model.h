/* runtime/rt/graphc_cuda_model.h - the C API of a model compiled ahead of
 * time for the cuda target.
 *
 * `graphc compile M --target cuda --emit lib -o out/mlp` writes the same
 * `mlp_*` functions as the cpu target, forwarding to these. The host side of
 * a context (Torch7's initialisation, checkpoints) is graphc_model.c's; this
 * file keeps parameters, optimizer state and the step's buffers on the GPU,
 * loads the embedded PTX with the driver API, runs matrix products through
 * cuBLASLt and convolutions through cuDNN (where it loads) and replays each batch size's step as a
 * CUDA graph. It is also what `graphc train --target cuda` runs (runtime/cuda/CudaExecutable.cpp
 * encodes the same tables at run time): one executor for the JIT and the
 * library. Plain C11; it reaches the driver and cuBLASLt only through the
 * descriptor's function table (graphc_cuda_api.h).
 *
 * The table of one program is an array of int64 words:
 *
 *   header   GCU_MAGIC, arena_bytes, num_io, num_values, num_modules,
 *            num_functions, num_kernels, num_copies, num_output_copies
 *   io       num_io x (string, is_output): buffer names in graphc's io
 *            naming ("x", "labels", "params", "step", "seed", "state.S";
 *            outputs "loss", "output", "params", "step", ... with is_output 1)
 *   values   num_values x (base, byte offset): base GCU_NONE, GCU_ARENA, or
 *            an io index; the device pointer table the kernels read
 *   modules  num_modules x (string): PTX text
 *   functions num_functions x (module, string): kernel names
 *   kernels  num_kernels x GCU_KERNEL_WORDS: see GK_* below
 *   copies   num_copies x (dst value, dst byte offset, src value, coef, pow)
 *   output copies  num_output_copies x (value, io, coef, pow)
 *
 * A size "coef, pow" is coef * n^pow elements at batch n. Strings are
 * indices into the descriptor's string table.
 */
#ifndef GRAPHC_CUDA_MODEL_H
#define GRAPHC_CUDA_MODEL_H

#include "graphc_model.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { GCU_MAGIC = 0x31756367, GCU_HEADER_WORDS = 9, GCU_KERNEL_WORDS = 36 };
enum { GCU_NONE = -1, GCU_ARENA = -2 };
enum {
  GCU_ELEMENTS = 0,
  GCU_ROWS = 1,
  GCU_SINGLE_BLOCK = 2,
  GCU_GEMM = 3,
  GCU_HOST_COPY = 4,
  GCU_CONV = 5
};
/* A convolution record's mode: which of y, dx, dw it computes. */
enum { GCU_CONV_FORWARD = 0, GCU_CONV_GRAD_INPUT = 1, GCU_CONV_GRAD_WEIGHT = 2 };
enum { GCU_LT_NONE = 0, GCU_LT_BIAS = 1, GCU_LT_RELU_BIAS = 2 };
/* The words of a kernel record. Functions are indices (-1: none); a, b, c,
 * bias are values (bias -1: none); as and bs are A's and B's dimensions,
 * -1 standing for the batch.
 *
 * A GCU_CONV record is a convolution group: with cuDNN, cuDNN computes the
 * convolution of mode GK_CONV_MODE into c, then the function GK_EPI_FN (if
 * any) runs over the total elements; without, the function GK_FN computes
 * the whole group over them (as GCU_ELEMENTS). Its geometry is always the
 * forward convolution's: x [N, C, H, W], w [O, C, KH, KW], y [N, O, OH,
 * OW], stride (SH, SW), zero padding (PH, PW), N -1 for the batch; the
 * operands a, b are (x, w) forward, (dy, w) for dx, (x, dy) for dw. A
 * forward record with GK_LT GCU_LT_BIAS or GCU_LT_RELU_BIAS has an epilogue
 * that is only c = conv + bias (a value per output channel, value GK_BIAS),
 * then ReLU: cuDNN's graph API computes all of it where one of its engines
 * takes that operation graph, and GK_EPI_FN is then not launched. */
enum {
  GK_LAUNCH,
  GK_FN,
  GK_COLSUM_FN,
  GK_TOTAL_COEF,
  GK_TOTAL_POW,
  GK_ROW_LEN,
  GK_COLS_COEF,
  GK_COLS_POW,
  GK_A,
  GK_B,
  GK_C,
  GK_BIAS,
  GK_TRANS_A,
  GK_TRANS_B,
  GK_LT,
  GK_AS0,
  GK_AS1,
  GK_BS0,
  GK_BS1,
  GK_COPY_FIRST,
  GK_COPY_COUNT,
  GK_EPI_FN,
  GK_CONV_MODE,
  GK_CONV_N,
  GK_CONV_C,
  GK_CONV_H,
  GK_CONV_W,
  GK_CONV_O,
  GK_CONV_KH,
  GK_CONV_KW,
  GK_CONV_SH,
  GK_CONV_SW,
  GK_CONV_PH,
  GK_CONV_PW,
  GK_CONV_OH,
  GK_CONV_OW,
  GK_WORDS_USED /* at most GCU_KERNEL_WORDS */
};

typedef struct {
  const grt_model_desc *model; /* parameters, state, sizes; its run functions are unused */
  int64_t num_strings;
  const char *const *strings;
  const int64_t *step, *predict; /* the two programs' tables */
  int64_t step_words, predict_words;
  const char *helpers_ptx;        /* graphc_bias_add */
  const char *arch;               /* the PTX's target, e.g. "sm_90" */
  int64_t tf32;                   /* 1: cuBLASLt may multiply in TF32 (graphc compile --tf32) */
  const struct grt_cuda_api *api; /* the driver and cuBLASLt (graphc_cuda_api.h) */
  /* The step split in two (grt_cuda_compute_gradients, grt_cuda_apply_update):
   * the gradients and update programs' tables, which create installs as
   * grt_cuda_add_split does; 0 words: the model has no split step. */
  const int64_t *gradients, *update;
  int64_t gradients_words, update_words;
} grt_cuda_desc;

typedef struct grt_cuda_model grt_cuda_model;

int grt_cuda_create(const grt_cuda_desc *d, grt_cuda_model **out, const char *weights, int threads);
/* The same on device `device` (an ordinal of the driver's, from 0); create
 * takes device 0. */
int grt_cuda_create_on(const grt_cuda_desc *d, grt_cuda_model **out, const char *weights,
                       int device);
void grt_cuda_destroy(grt_cuda_model *m);
int grt_cuda_train_step(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                        float *loss);
int grt_cuda_predict(grt_cuda_model *m, const float *x, int64_t n, float *output);
/* The same with device pointers (CUdeviceptr values) for x, labels, output;
 * they wait for all work already queued on the device (any stream) first. */
int grt_cuda_train_step_device(grt_cuda_model *m, uint64_t x, uint64_t labels, int64_t n,
                               float *loss);
int grt_cuda_predict_device(grt_cuda_model *m, uint64_t x, int64_t n, uint64_t output);
float *grt_cuda_params(grt_cuda_model *m);
int64_t grt_cuda_step(const grt_cuda_model *m);
int grt_cuda_save(grt_cuda_model *m, const char *path);
int grt_cuda_load(grt_cuda_model *m, const char *path);
const char *grt_cuda_error(const grt_cuda_model *m);
/* 1 when cuDNN runs the convolutions; 0 when the descriptor's table has no
 * cuDNN (a program not linked with it) or it failed to start: then the
 * generated convolution kernels run. */
int grt_cuda_uses_cudnn(const grt_cuda_model *m);
/* How many of the model's forward convolutions followed by only their
 * bias (and ReLU) cuDNN's graph API runs as one fused operation graph, of
 * how many could be, at the largest batch; the text says why the first
 * was not ("" when none was refused). GRAPHC_NO_CUDNN_FUSION=1 turns the
 * fusion off: the legacy convolution, then the epilogue kernel. */
const char *grt_cuda_conv_fusion(const grt_cuda_model *m, int64_t *fused, int64_t *fusable);

/* --- for graphc's own executor (runtime/cuda/CudaExecutable.cpp) and tests ---------- */

/* Builds the cuDNN operation graph of fused convolution record `record`
 * (GK_LT set) at batch n with no device and no handle, finalizing every
 * descriptor and the heuristics the runtime asks: how many of cuDNN's
 * engines claim the graph (*engines) and how many configurations the
 * heuristics rank (*ranked; without a device none can be fetched). How
 * tests check graphc's descriptors against the real library on a machine
 * without a GPU; `api` needs only its cuDNN members. GRT_OK, or
 * GRT_ERR_DEVICE with what cuDNN refused in `why`. */
int grt_cuda_check_conv_graph(const struct grt_cuda_api *api, const int64_t *record, int64_t n,
                              int64_t *engines, int64_t *ranked, char *why, size_t why_size);

/* A training step on a host batch that also copies the step's model output
 * (n x classes floats) to `output` when it is not null. */
int grt_cuda_train_step_output(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                               float *loss, float *output);
/* The host mirror of optimizer state buffer `slot` (desc->model->slots),
 * as grt_cuda_params: fetched now, written back before the next step. */
float *grt_cuda_state(grt_cuda_model *m, int64_t slot);
void grt_cuda_set_step(grt_cuda_model *m, int64_t step);
void grt_cuda_set_seed(grt_cuda_model *m, uint64_t seed);
/* Keeps `count` samples and their labels on the device, for
 * grt_cuda_train_step_indices: a step then gathers its batch there. */
int grt_cuda_upload_dataset(grt_cuda_model *m, const float *x, const int32_t *labels,
                            int64_t count);
int grt_cuda_train_step_indices(grt_cuda_model *m, const int64_t *indices, int64_t n, float *loss,
                                float *output);
/* For a diagnosis, kernel records [first, last) of the training step at
 * batch n, launched directly and waited for; first == 0 puts the batch and
 * the step counter and seed in. Consecutive ranges make one step; the step
 * counter is not advanced (grt_cuda_set_step does). last == the number of
 * kernel records also makes the output copies. */
int64_t grt_cuda_step_kernel_count(const grt_cuda_model *m);
int grt_cuda_train_step_kernels(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                                int64_t first, int64_t last);
/* Value `v` of the training step as the device holds it now: `count`
 * floats into `out`. GRT_ERR_ARGUMENT where the value has no memory of its
 * own (fused into a kernel). */
int grt_cuda_read_step_value(grt_cuda_model *m, int64_t v, float *out, int64_t count);

/* The step split in two for data parallelism, as graphc_model.h's
 * grt_model_compute_gradients and grt_model_apply_update: add_split
 * prepares the gradients and update programs' tables (strings indexed in
 * the descriptor's table; both kept by the caller for the context's life;
 * create calls it with the descriptor's tables where it has them);
 * compute_gradients runs forward and backward on a host batch and copies
 * the gradient (num_params floats) to host memory `grad`, the loss to
 * `loss` and the model output (n x classes) to `output` when not null;
 * apply_update uploads `grad` (host memory) and makes the update. */
int grt_cuda_add_split(grt_cuda_model *m, const int64_t *gradients, int64_t gradients_words,
                       const int64_t *update, int64_t update_words);
int grt_cuda_can_split(const grt_cuda_model *m);
int grt_cuda_compute_gradients(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                               int64_t offset, float *grad, float *loss, float *output);
int grt_cuda_apply_update(grt_cuda_model *m, const float *grad);

/* The gradient allreduced on the device by NCCL, among the processes of a
 * data-parallel run, one communicator per context (graphc's executor;
 * the table must have NCCL's functions). Process 0 makes the id
 * (GRT_CUDA_NCCL_ID_BYTES), every process gets it (graphc broadcasts it
 * with MPI) and joins with its rank. train_share then makes one step of the
 * global batch of `batch` samples (the same on every process):
 * compute_gradients on this process's n samples (n may be 0: it adds
 * nothing), ncclAllReduce of the gradient on the step's stream, each
 * process's times its `weight`, and apply_update; `loss` gets the n
 * samples' mean loss (0 for none). Every process must call it for every
 * step. The first step of each global batch size launches that work
 * directly, then captures it as one CUDA graph (gradients program, the
 * allreduce, update program; the batch, scalars and weight are copied in
 * ahead of it) and the processes vote, on the device, to keep it only where
 * every one captured (NCCL: whether a collective is captured must be the
 * same on every rank); later steps of that size replay it. NCCL before 2.9
 * and GRAPHC_CUDA_GRAPHS=0 launch directly. share_replays counts the steps
 * replayed so far. */
enum { GRT_CUDA_NCCL_ID_BYTES = 128 };
int grt_cuda_nccl_unique_id(grt_cuda_model *m, void *id, int64_t bytes);
int grt_cuda_nccl_join(grt_cuda_model *m, const void *id, int64_t bytes, int nranks, int rank);
int grt_cuda_train_share(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                         int64_t offset, int64_t batch, float weight, float *loss, float *output);
int64_t grt_cuda_share_replays(const grt_cuda_model *m);

/* Runs program table `d->step` once at batch n on device buffers of its
 * own, for tests: io entry `names[i]` ("NAME" for an input, "out:NAME" for
 * an output) is `bytes[i]` bytes of host memory `host[i]`, uploaded before
 * and fetched after. It runs twice, launched directly and then replayed from
 * the captured graph, and fails when the two differ. `d->model` may be null.
 * The error text goes to `error`. */
int grt_cuda_run_program(const grt_cuda_desc *d, int64_t n, int64_t num_io,
                         const char *const *names, void *const *host, const int64_t *bytes,
                         char *error, int64_t error_size);

#ifdef __cplusplus
}
#endif

#endif
