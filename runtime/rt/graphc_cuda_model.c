/* runtime/rt/graphc_cuda_model.c - contexts of ahead-of-time compiled models
 * on the GPU (see graphc_cuda_model.h).
 *
 * A context pairs a host context (graphc_model.c: initialisation,
 * checkpoints, the step counter) with the device: parameters and optimizer
 * state live on the GPU; the host copies are a mirror, refreshed when
 * params() or save() need them and written back before the next step when
 * params() handed them out or load() replaced them. Every driver,
 * cuBLASLt and cuDNN call goes through the descriptor's table (API below).
 */
#define _POSIX_C_SOURCE 200809L
#include "graphc_cuda_model.h"
#include "graphc_cuda_api.h"
#include "ir/graphc_io.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The step's scalars in one device buffer: ir/graphc_io.h's layout. */

#define WORKSPACE_BYTES ((size_t)32 << 20)

typedef struct {
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
  int64_t m, n;
  int by_self, relu; /* cuBLASLt refused the bias epilogue: graphc_bias_add applies it */
} gemm_t;

/* The backend descriptors of one cuDNN operation graph and what was
 * built on it (heuristics, engine configurations, the plan), kept until the
 * plan is freed; `step` names the part cuDNN refused. */
#define GRAPH_DESCRIPTORS 48
typedef struct {
  cudnnBackendDescriptor_t d[GRAPH_DESCRIPTORS];
  int count;
  const char *step;
} dnn_graph;

/* A convolution at one batch size: cuDNN's descriptors, its algorithm
 * and the workspace that algorithm asked for; for a forward convolution
 * fused with its bias (and ReLU), the graph API's execution plan (null:
 * the legacy call, then the epilogue kernel) and its workspace. */
typedef struct {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  int algo;
  size_t workspace;
  dnn_graph graph;
  cudnnBackendDescriptor_t plan;
  int64_t plan_workspace;
} conv_t;

typedef struct {
  gemm_t *gemms; /* per kernel; unused for non-GEMMs */
  conv_t *convs; /* per kernel; unused for non-convolutions (and without cuDNN) */
  CUgraphExec exec;
  int ready;
} batch_t;

typedef struct {
  const char *what;
  const int64_t *io, *values, *modules, *functions, *kernels, *copies, *outcopies;
  int64_t arena_bytes, num_io, num_values, num_modules, num_functions, num_kernels, num_copies,
      num_outcopies;
  CUmodule *mods;
  CUfunction *fns;
  CUdeviceptr arena, table;
  CUdeviceptr *at;     /* per value */
  CUdeviceptr *io_ptr; /* per io entry */
  batch_t *batches;    /* per batch size 0..max_batch */
} program_t;

struct grt_cuda_model {
  const grt_cuda_desc *d;
  const grt_cuda_api *api;
  grt_model *host; /* NULL in grt_cuda_run_program's context */
  int64_t max_batch, sample, classes, num_params, num_slots;
  int ordinal; /* the device's, for cuDeviceGet */
  CUdevice dev;
  CUcontext ctx;
  CUstream stream;
  cublasLtHandle_t lt;
  cudnnHandle_t dnn; /* null: no cuDNN, convolutions run as generated kernels */
  int dnn_tried;     /* cuDNN was started (or failed to) */
  /* Forward convolutions whose bias (and ReLU) the graph API may fuse, and
   * how many it does, at the largest batch; why the first was refused. */
  int64_t convs_fusable, convs_fused;
  int fusion_failed; /* a fused plan failed to run: every one runs unfused since */
  char fusion_note[256];
  CUdeviceptr workspace;
  int sms;
  CUmodule helpers;
  CUfunction bias_add, gather;
  CUdeviceptr params, x, labels, output, scalars, indices;
  CUdeviceptr grad; /* the split step's gradient (num_params floats); 0 without it */
  CUdeviceptr *state;
  CUdeviceptr data_x, data_labels; /* grt_cuda_upload_dataset's */
  int64_t data_count;
  int32_t *label_check; /* host room to check device-side labels */
  unsigned char
      scalars_in[GRAPHC_SCALAR_IN_BYTES]; /* step counter, seed, offset: uploaded each step */
  float loss_out;
  program_t step, predict;
  program_t gradients, update; /* the split step (grt_cuda_add_split) */
  int split;                   /* 1: both are prepared; -1: adding them failed */
#if GRT_HAVE_NCCL
  ncclComm_t nccl;    /* grt_cuda_nccl_join's; null: none */
  ncclRedOp_t premul; /* the sum of each process's gradient times its weight */
  int premul_made;
#endif
  int nranks;         /* the communicator's processes */
  int share_captures; /* NCCL can be captured (2.9 and later) */
  CUdeviceptr weight; /* this process's weight, read by premul */
  float weight_in;
  /* The share step (gradients, allreduce, update) as one CUDA graph per
   * global batch size: state 0 not yet tried, 1 share_exec replays it, -1
   * launched directly. vote is the processes' agreement on a capture. */
  CUgraphExec *share_exec;
  signed char *share_state;
  int64_t share_replays;
  CUdeviceptr vote;
  float vote_in, vote_out;
  int mirror_valid, mirror_dirty;
  char error[512];
};

static char create_error[512];

/* Every driver and cuBLASLt call of a context `m`. */
#define API (m->api)

static int fail(grt_cuda_model *m, int code, const char *fmt, ...) {
  char *buf = m ? m->error : create_error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof create_error, fmt, ap);
  va_end(ap);
  return code;
}

static int cu_fail(grt_cuda_model *m, CUresult r, const char *what) {
  if (!m || !m->api)
    return fail(m, GRT_ERR_DEVICE, "CUDA error %d in %s", (int)r, what);
  if (r == CUDA_ERROR_STUB_LIBRARY)
    return fail(m, GRT_ERR_DEVICE,
                "no CUDA driver: libcuda.so.1 is the toolkit's stub "
                "library, not a driver (%s)",
                what);
  if (r == CUDA_ERROR_NO_DEVICE)
    return fail(m, GRT_ERR_DEVICE, "no CUDA device is visible (%s)", what);
  const char *name = NULL, *text = NULL;
  API->cuGetErrorName(r, &name);
  API->cuGetErrorString(r, &text);
  return fail(m, GRT_ERR_DEVICE, "CUDA error in %s: %s (%s)%s", what, name ? name : "?",
              text ? text : "?", r == CUDA_ERROR_OUT_OF_MEMORY ? ": try a smaller batch" : "");
}

/* A call's text without the table: "cuMemAlloc(...)". */
static const char *call_text(const char *s) { return strncmp(s, "API->", 5) ? s : s + 5; }

#define CU(call)                                                                                   \
  do {                                                                                             \
    CUresult cu_r_ = (call);                                                                       \
    if (cu_r_ != CUDA_SUCCESS)                                                                     \
      return cu_fail(m, cu_r_, call_text(#call));                                                  \
  } while (0)

#define LT(call)                                                                                   \
  do {                                                                                             \
    cublasStatus_t lt_s_ = (call);                                                                 \
    if (lt_s_ != CUBLAS_STATUS_SUCCESS)                                                            \
      return fail(m, GRT_ERR_DEVICE, "cuBLASLt error in %s: %s", call_text(#call),                 \
                  API->cublasLtGetStatusString(lt_s_));                                            \
  } while (0)

#define DNN(call)                                                                                  \
  do {                                                                                             \
    cudnnStatus_t dnn_s_ = (call);                                                                 \
    if (dnn_s_ != CUDNN_STATUS_SUCCESS)                                                            \
      return fail(m, GRT_ERR_DEVICE, "cuDNN error in %s: %s", call_text(#call),                    \
                  API->cudnnGetErrorString(dnn_s_));                                               \
  } while (0)

static int64_t elements(int64_t coef, int64_t pow, int64_t n) {
  while (pow-- > 0)
    coef *= n;
  return coef;
}

static int64_t dim(int64_t d, int64_t n) { return d < 0 ? n : d; }

static const char *string(const grt_cuda_model *m, int64_t i) {
  return i >= 0 && i < m->d->num_strings ? m->d->strings[i] : NULL;
}

/* --- the program tables ---------------------------------------------------------- */

static int decode(grt_cuda_model *m, program_t *p, const int64_t *code, int64_t words,
                  const char *what) {
  p->what = what;
  if (!code || words < GCU_HEADER_WORDS || code[0] != GCU_MAGIC)
    return fail(m, GRT_ERR_FORMAT, "the %s program is not a graphc cuda table", what);
  p->arena_bytes = code[1];
  p->num_io = code[2];
  p->num_values = code[3];
  p->num_modules = code[4];
  p->num_functions = code[5];
  p->num_kernels = code[6];
  p->num_copies = code[7];
  p->num_outcopies = code[8];
  int64_t expect = GCU_HEADER_WORDS;
  for (int i = 2; i < GCU_HEADER_WORDS; ++i)
    if (code[i] < 0 || code[i] > ((int64_t)1 << 40))
      return fail(m, GRT_ERR_FORMAT, "the %s program's table is damaged", what);
  expect += 2 * p->num_io + 2 * p->num_values + p->num_modules + 2 * p->num_functions +
            GCU_KERNEL_WORDS * p->num_kernels + 5 * p->num_copies + 4 * p->num_outcopies;
  if (expect != words)
    return fail(m, GRT_ERR_FORMAT, "the %s program's table has %" PRId64 " words, not %" PRId64,
                what, words, expect);
  const int64_t *w = code + GCU_HEADER_WORDS;
  p->io = w, w += 2 * p->num_io;
  p->values = w, w += 2 * p->num_values;
  p->modules = w, w += p->num_modules;
  p->functions = w, w += 2 * p->num_functions;
  p->kernels = w, w += GCU_KERNEL_WORDS * p->num_kernels;
  p->copies = w, w += 5 * p->num_copies;
  p->outcopies = w;
  return GRT_OK;
}

static int load_module(grt_cuda_model *m, const char *ptx, CUmodule *out, const char *what) {
  char log[4096] = "";
  CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[] = {log, (void *)(uintptr_t)sizeof log};
  if (!ptx)
    return fail(m, GRT_ERR_FORMAT, "%s: no PTX", what);
  CUresult r = API->cuModuleLoadDataEx(out, ptx, 2, opts, vals);
  if (r == CUDA_SUCCESS)
    return GRT_OK;
  if (log[0])
    return fail(m, GRT_ERR_DEVICE, "loading the PTX of %s (compiled for %s) failed: %s", what,
                m->d->arch, log);
  return cu_fail(m, r, "cuModuleLoadDataEx");
}

/* The device buffer behind io name `name`. */
static CUdeviceptr io_memory(grt_cuda_model *m, const char *name, int output) {
  if (!name)
    return 0;
  if (!strcmp(name, GRAPHC_IO_X))
    return m->x;
  if (!strcmp(name, GRAPHC_IO_LABELS))
    return m->labels;
  if (!strcmp(name, GRAPHC_IO_PARAMS))
    return m->params;
  if (!strcmp(name, GRAPHC_IO_STEP))
    return m->scalars + (output ? GRAPHC_SCALAR_STEP_OUT : GRAPHC_SCALAR_STEP_IN);
  if (!strcmp(name, GRAPHC_IO_SEED))
    return m->scalars + GRAPHC_SCALAR_SEED_IN;
  if (!strcmp(name, GRAPHC_IO_OFFSET))
    return m->scalars + GRAPHC_SCALAR_OFFSET_IN;
  if (!strcmp(name, GRAPHC_IO_GRAD))
    return m->grad;
  if (!strcmp(name, GRAPHC_IO_LOSS))
    return m->scalars + GRAPHC_SCALAR_LOSS;
  if (!strcmp(name, GRAPHC_IO_OUTPUT))
    return m->output;
  if (!strncmp(name, GRAPHC_IO_STATE, sizeof GRAPHC_IO_STATE - 1))
    for (int64_t s = 0; s < m->num_slots; ++s)
      if (!strcmp(name + sizeof GRAPHC_IO_STATE - 1, m->d->model->slots[s]))
        return m->state[s];
  return 0;
}

/* Device memory of at least 256 bytes, zeroed on the step's stream (so
 * before any kernel of it; create waits for it at the end). */
static int zeroed(grt_cuda_model *m, CUdeviceptr *p, size_t bytes) {
  if (bytes < 256)
    bytes = 256;
  CU(API->cuMemAlloc(p, bytes));
  CU(API->cuMemsetD8Async(*p, 0, bytes, m->stream));
  return GRT_OK;
}

/* Where io entry (name, output) of a program lives. */
typedef CUdeviceptr (*io_resolver)(grt_cuda_model *m, const char *name, int output, void *ctx);

static CUdeviceptr model_io(grt_cuda_model *m, const char *name, int output, void *ctx) {
  (void)ctx;
  return io_memory(m, name, output);
}

/* cuDNN, when program p is the first with a convolution and the table has
 * it and it starts; else m->dnn stays null and the convolutions run as the
 * generated kernels. */
static int start_cudnn(grt_cuda_model *m, const program_t *p) {
  int convs = 0;
  for (int64_t i = 0; i < p->num_kernels; ++i)
    convs |= p->kernels[GCU_KERNEL_WORDS * i + GK_LAUNCH] == GCU_CONV;
  if (!convs || m->dnn_tried)
    return GRT_OK;
  m->dnn_tried = 1;
  if (!API->cudnnCreate || API->cudnnCreate(&m->dnn) != CUDNN_STATUS_SUCCESS) {
    m->dnn = NULL;
    return GRT_OK;
  }
  DNN(API->cudnnSetStream(m->dnn, (cudaStream_t)m->stream));
  return GRT_OK;
}

static int prepare_program(grt_cuda_model *m, program_t *p, io_resolver resolve, void *ctx) {
  int rc = start_cudnn(m, p);
  if (rc != GRT_OK)
    return rc;
  p->mods = calloc((size_t)p->num_modules + 1, sizeof(CUmodule));
  p->fns = calloc((size_t)p->num_functions + 1, sizeof(CUfunction));
  p->at = calloc((size_t)p->num_values + 1, sizeof(CUdeviceptr));
  p->io_ptr = calloc((size_t)p->num_io + 1, sizeof(CUdeviceptr));
  p->batches = calloc((size_t)m->max_batch + 1, sizeof(batch_t));
  if (!p->mods || !p->fns || !p->at || !p->io_ptr || !p->batches)
    return fail(m, GRT_ERR_MEMORY, "create: out of memory");
  for (int64_t i = 0; i < p->num_modules; ++i) {
    rc = load_module(m, string(m, p->modules[i]), &p->mods[i], p->what);
    if (rc != GRT_OK)
      return rc;
  }
  for (int64_t i = 0; i < p->num_functions; ++i) {
    int64_t mod = p->functions[2 * i];
    const char *name = string(m, p->functions[2 * i + 1]);
    if (mod < 0 || mod >= p->num_modules || !name)
      return fail(m, GRT_ERR_FORMAT, "the %s program names a kernel that is not there", p->what);
    CU(API->cuModuleGetFunction(&p->fns[i], p->mods[mod], name));
  }
  for (int64_t i = 0; i < p->num_io; ++i) {
    const char *name = string(m, p->io[2 * i]);
    p->io_ptr[i] = resolve(m, name, (int)p->io[2 * i + 1], ctx);
    if (!p->io_ptr[i])
      return fail(m, GRT_ERR_FORMAT, "the %s program needs a buffer '%s' this runtime lacks",
                  p->what, name ? name : "?");
  }
  if ((rc = zeroed(m, &p->arena, (size_t)p->arena_bytes)) != GRT_OK)
    return rc;
  for (int64_t v = 0; v < p->num_values; ++v) {
    int64_t base = p->values[2 * v], off = p->values[2 * v + 1];
    if (base >= p->num_io)
      return fail(m, GRT_ERR_FORMAT, "the %s program's value %" PRId64 " has no buffer", p->what,
                  v);
    p->at[v] = base == GCU_ARENA ? p->arena + (CUdeviceptr)off
               : base >= 0       ? p->io_ptr[base] + (CUdeviceptr)off
                                 : 0;
  }
  CU(API->cuMemAlloc(&p->table, (size_t)(p->num_values + 1) * sizeof(CUdeviceptr)));
  /* On the step's non-blocking stream, and waited for: a synchronous copy
   * on the legacy stream is not ordered before that stream's kernels. */
  if (p->num_values > 0) {
    CU(API->cuMemcpyHtoDAsync(p->table, p->at, (size_t)p->num_values * sizeof(CUdeviceptr),
                              m->stream));
    CU(API->cuStreamSynchronize(m->stream));
  }
  return GRT_OK;
}

/* --- GEMMs ------------------------------------------------------------------------- */

static void gemm_free(grt_cuda_model *m, gemm_t *g) {
  if (g->lc)
    API->cublasLtMatrixLayoutDestroy(g->lc);
  if (g->lb)
    API->cublasLtMatrixLayoutDestroy(g->lb);
  if (g->la)
    API->cublasLtMatrixLayoutDestroy(g->la);
  if (g->desc)
    API->cublasLtMatmulDescDestroy(g->desc);
  memset(g, 0, sizeof *g);
}

/* The largest power of two up to 256 that divides `p`. */
static uint32_t alignment(CUdeviceptr p) {
  uint32_t a = 1;
  while (a < 256 && p % (a * 2) == 0)
    a *= 2;
  return a;
}

static int pick_algo(grt_cuda_model *m, gemm_t *g, CUdeviceptr a, CUdeviceptr b, CUdeviceptr c,
                     int *found) {
  cublasLtMatmulPreference_t pref = NULL;
  LT(API->cublasLtMatmulPreferenceCreate(&pref));
  uint64_t workspace = WORKSPACE_BYTES;
  /* Split-K only through a separate reduction, never in place: the same
   * bits every run. */
  uint32_t reduction =
      CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
  uint32_t align_a = alignment(b), align_b = alignment(a), align_c = alignment(c);
  cublasStatus_t s = API->cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace);
  if (s == CUBLAS_STATUS_SUCCESS)
    s = API->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                  &reduction, sizeof reduction);
  if (s == CUBLAS_STATUS_SUCCESS)
    s = API->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                  &align_a, sizeof align_a);
  if (s == CUBLAS_STATUS_SUCCESS)
    s = API->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                  &align_b, sizeof align_b);
  if (s == CUBLAS_STATUS_SUCCESS)
    s = API->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                  &align_c, sizeof align_c);
  if (s == CUBLAS_STATUS_SUCCESS)
    s = API->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                  &align_c, sizeof align_c);
  cublasLtMatmulHeuristicResult_t results[8];
  int count = 0;
  memset(results, 0, sizeof results);
  if (s == CUBLAS_STATUS_SUCCESS)
    s = API->cublasLtMatmulAlgoGetHeuristic(m->lt, g->desc, g->la, g->lb, g->lc, g->lc, pref, 8,
                                            results, &count);
  API->cublasLtMatmulPreferenceDestroy(pref);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED)
    count = 0;
  else if (s != CUBLAS_STATUS_SUCCESS)
    return fail(m, GRT_ERR_DEVICE,
                "cuBLASLt: choosing the algorithm of a %" PRId64 "x%" PRId64 " product: %s", g->m,
                g->n, API->cublasLtGetStatusString(s));
  *found = 0;
  for (int i = 0; i < count && !*found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) {
      g->algo = results[i].algo;
      *found = 1;
    }
  return GRT_OK;
}

/* Row-major C[M, N] = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
 * cuBLASLt's "A" is our B and its "B" is our A; every row-major [R, C] buffer
 * is a column-major C x R matrix with leading dimension C. */
static int describe_gemm(grt_cuda_model *m, gemm_t *g, const int64_t *k, int64_t n,
                         const program_t *p, int with_epilogue) {
  int64_t as0 = dim(k[GK_AS0], n), as1 = dim(k[GK_AS1], n);
  int64_t bs0 = dim(k[GK_BS0], n), bs1 = dim(k[GK_BS1], n);
  g->m = k[GK_TRANS_A] ? as1 : as0;
  g->n = k[GK_TRANS_B] ? bs0 : bs1;
  LT(API->cublasLtMatmulDescCreate(
      &g->desc, m->d->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t op_a = k[GK_TRANS_B] ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_b = k[GK_TRANS_A] ? CUBLAS_OP_T : CUBLAS_OP_N;
  LT(API->cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
  LT(API->cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
  if (with_epilogue) {
    cublasLtEpilogue_t epi =
        k[GK_LT] == GCU_LT_RELU_BIAS ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const void *bias = (const void *)(uintptr_t)p->at[k[GK_BIAS]];
    LT(API->cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                           sizeof epi));
    LT(API->cublasLtMatmulDescSetAttribute(g->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                           sizeof bias));
  }
  LT(API->cublasLtMatrixLayoutCreate(&g->la, CUDA_R_32F, (uint64_t)bs1, (uint64_t)bs0, bs1));
  LT(API->cublasLtMatrixLayoutCreate(&g->lb, CUDA_R_32F, (uint64_t)as1, (uint64_t)as0, as1));
  LT(API->cublasLtMatrixLayoutCreate(&g->lc, CUDA_R_32F, (uint64_t)g->n, (uint64_t)g->m, g->n));
  return GRT_OK;
}

static int plan_gemm(grt_cuda_model *m, const program_t *p, const int64_t *k, int64_t n,
                     gemm_t *g) {
  CUdeviceptr a = p->at[k[GK_A]], b = p->at[k[GK_B]], c = p->at[k[GK_C]];
  int found = 0, rc;
  if (k[GK_LT] != GCU_LT_NONE) {
    rc = describe_gemm(m, g, k, n, p, 1);
    if (rc == GRT_OK)
      rc = pick_algo(m, g, a, b, c, &found);
    if (rc != GRT_OK || !found)
      gemm_free(m, g);
    if (rc != GRT_OK)
      return rc;
  }
  if (!found) {
    rc = describe_gemm(m, g, k, n, p, 0);
    if (rc == GRT_OK)
      rc = pick_algo(m, g, a, b, c, &found);
    if (rc == GRT_OK && !found)
      rc = fail(m, GRT_ERR_DEVICE,
                "cuBLASLt has no algorithm for a %" PRId64 "x%" PRId64
                " fp32 product of the %s program",
                g->m, g->n, p->what);
    if (rc != GRT_OK) {
      gemm_free(m, g);
      return rc;
    }
    g->by_self = k[GK_LT] != GCU_LT_NONE;
    g->relu = k[GK_LT] == GCU_LT_RELU_BIAS;
  }
  return GRT_OK;
}

/* --- convolutions ------------------------------------------------------------------ */

static void graph_free(const grt_cuda_api *api, dnn_graph *g) {
  while (g->count > 0)
    api->cudnnBackendDestroyDescriptor(g->d[--g->count]);
}

static void conv_free(grt_cuda_model *m, conv_t *c) {
  graph_free(API, &c->graph);
  if (c->conv)
    API->cudnnDestroyConvolutionDescriptor(c->conv);
  if (c->w)
    API->cudnnDestroyFilterDescriptor(c->w);
  if (c->y)
    API->cudnnDestroyTensorDescriptor(c->y);
  if (c->x)
    API->cudnnDestroyTensorDescriptor(c->x);
  memset(c, 0, sizeof *c);
}

/* --- cuDNN's graph API: a forward convolution with its bias and ReLU ------------------- */

/* The unique ids of a fused convolution's tensors. */
enum { UID_X = 1, UID_W, UID_BIAS, UID_Y, UID_CONV, UID_SUM };

/* A new backend descriptor of `type`, owned by g. */
static cudnnStatus_t graph_new(const grt_cuda_api *api, dnn_graph *g,
                               cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t *out) {
  *out = NULL;
  if (g->count == GRAPH_DESCRIPTORS)
    return CUDNN_STATUS_ALLOC_FAILED;
  cudnnStatus_t s = api->cudnnBackendCreateDescriptor(type, out);
  if (s == CUDNN_STATUS_SUCCESS)
    g->d[g->count++] = *out;
  return s;
}

/* Returns from the function building g when a call fails: g->step already
 * names what was being built. */
#define GRAPH(call)                                                                                \
  do {                                                                                             \
    cudnnStatus_t graph_s_ = (call);                                                               \
    if (graph_s_ != CUDNN_STATUS_SUCCESS)                                                          \
      return graph_s_;                                                                             \
  } while (0)
#define SET(d, name, type, count, values)                                                          \
  GRAPH(api->cudnnBackendSetAttribute(d, name, type, count, values))

/* A finalized fp32 NCHW tensor of g, packed, with unique id uid. */
static cudnnStatus_t graph_tensor(const grt_cuda_api *api, dnn_graph *g, int64_t uid,
                                  const int64_t dims[4], int is_virtual,
                                  cudnnBackendDescriptor_t *t) {
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
  const int64_t strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  const int64_t alignment = 4;
  const bool virt = is_virtual != 0;
  GRAPH(graph_new(api, g, CUDNN_BACKEND_TENSOR_DESCRIPTOR, t));
  SET(*t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  SET(*t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
  SET(*t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
  SET(*t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  SET(*t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
  SET(*t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
  return api->cudnnBackendFinalize(*t);
}

/* A finalized pointwise operation of g: y = mode(x) or mode(x, b). */
static cudnnStatus_t graph_pointwise(const grt_cuda_api *api, dnn_graph *g,
                                     cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                                     cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y,
                                     cudnnBackendDescriptor_t *op) {
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  cudnnBackendDescriptor_t pw;
  GRAPH(graph_new(api, g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw));
  SET(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  SET(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision);
  GRAPH(api->cudnnBackendFinalize(pw));
  GRAPH(graph_new(api, g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op));
  SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
  SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
  if (b)
    SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
  SET(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
  return api->cudnnBackendFinalize(*op);
}

/* The finalized operation graph of fused convolution record k at batch n:
 * y = conv(x, w) + bias, then ReLU for GCU_LT_RELU_BIAS; the results in
 * between are virtual. h may be null: the graph is then built without a
 * device. */
static cudnnStatus_t conv_graph(const grt_cuda_api *api, cudnnHandle_t h, const int64_t *k,
                                int64_t n, dnn_graph *g, cudnnBackendDescriptor_t *graph) {
  const int64_t N = dim(k[GK_CONV_N], n), O = k[GK_CONV_O];
  const int relu = k[GK_LT] == GCU_LT_RELU_BIAS;
  const int64_t xd[4] = {N, k[GK_CONV_C], k[GK_CONV_H], k[GK_CONV_W]},
                wd[4] = {O, k[GK_CONV_C], k[GK_CONV_KH], k[GK_CONV_KW]}, bd[4] = {1, O, 1, 1},
                yd[4] = {N, O, k[GK_CONV_OH], k[GK_CONV_OW]};
  cudnnBackendDescriptor_t x, w, bias, conv, sum, y;
  g->step = "the tensors";
  GRAPH(graph_tensor(api, g, UID_X, xd, 0, &x));
  GRAPH(graph_tensor(api, g, UID_W, wd, 0, &w));
  GRAPH(graph_tensor(api, g, UID_BIAS, bd, 0, &bias));
  GRAPH(graph_tensor(api, g, UID_CONV, yd, 1, &conv));
  GRAPH(graph_tensor(api, g, UID_Y, yd, 0, &y));
  sum = y;
  if (relu)
    GRAPH(graph_tensor(api, g, UID_SUM, yd, 1, &sum));

  g->step = "the convolution";
  const int64_t spatial = 2, pad[2] = {k[GK_CONV_PH], k[GK_CONV_PW]},
                stride[2] = {k[GK_CONV_SH], k[GK_CONV_SW]}, dilation[2] = {1, 1};
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const float alpha = 1.0f, beta = 0.0f;
  cudnnBackendDescriptor_t cd, ops[3];
  GRAPH(graph_new(api, g, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &cd));
  SET(cd, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
  SET(cd, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  SET(cd, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  SET(cd, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
  SET(cd, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
  SET(cd, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation);
  SET(cd, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
  GRAPH(api->cudnnBackendFinalize(cd));
  GRAPH(graph_new(api, g, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &ops[0]));
  SET(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
  SET(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w);
  SET(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv);
  SET(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &cd);
  SET(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
  SET(ops[0], CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
  GRAPH(api->cudnnBackendFinalize(ops[0]));

  g->step = "the bias add";
  GRAPH(graph_pointwise(api, g, CUDNN_POINTWISE_ADD, conv, bias, sum, &ops[1]));
  if (relu) {
    g->step = "the ReLU";
    GRAPH(graph_pointwise(api, g, CUDNN_POINTWISE_RELU_FWD, sum, NULL, y, &ops[2]));
  }

  g->step = "the operation graph";
  GRAPH(graph_new(api, g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, graph));
  if (h)
    SET(*graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  SET(*graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, relu ? 3 : 2, ops);
  return api->cudnnBackendFinalize(*graph);
}

/* 1 when the engine behind configuration cfg computes as graphc's fp32
 * does: no TF32 tensor cores (unless the model was compiled --tf32), no
 * inputs converted down, no reduced-precision sums, deterministic (a
 * replayed step gives the same bits). */
static int engine_keeps_fp32(const grt_cuda_api *api, dnn_graph *g, cudnnBackendDescriptor_t cfg,
                             int tf32) {
  cudnnBackendDescriptor_t engine;
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  int64_t count = 0;
  if (graph_new(api, g, CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) != CUDNN_STATUS_SUCCESS ||
      api->cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                    1, &count, &engine) != CUDNN_STATUS_SUCCESS ||
      api->cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                    CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                                    &count, notes) != CUDNN_STATUS_SUCCESS)
    return 0;
  for (int64_t i = 0; i < count && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; ++i)
    if ((notes[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE && !tf32) ||
        notes[i] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS ||
        notes[i] == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
        notes[i] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC)
      return 0;
  return 1;
}

/* The execution plan of the first engine that cuDNN's heuristics (mode A)
 * rank for `graph`, that keeps graphc's fp32 arithmetic, builds, and fits
 * the workspace; CUDNN_STATUS_NOT_SUPPORTED when there is none. */
/* cuDNN's heuristics (mode A) for `graph`, finalized, and how many engine
 * configurations they rank. */
static cudnnStatus_t conv_graph_heuristics(const grt_cuda_api *api, cudnnBackendDescriptor_t graph,
                                           dnn_graph *g, cudnnBackendDescriptor_t *heur,
                                           int64_t *count) {
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  g->step = "the heuristics";
  GRAPH(graph_new(api, g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, heur));
  SET(*heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
  SET(*heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  GRAPH(api->cudnnBackendFinalize(*heur));
  return api->cudnnBackendGetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, count, NULL);
}

#define MAX_ENGINE_CONFIGS 8
static cudnnStatus_t conv_graph_plan(const grt_cuda_api *api, cudnnHandle_t h, int tf32,
                                     cudnnBackendDescriptor_t graph, dnn_graph *g,
                                     cudnnBackendDescriptor_t *plan, int64_t *workspace) {
  cudnnBackendDescriptor_t heur, cfgs[MAX_ENGINE_CONFIGS];
  int64_t count = 0;
  GRAPH(conv_graph_heuristics(api, graph, g, &heur, &count));
  if (count > MAX_ENGINE_CONFIGS)
    count = MAX_ENGINE_CONFIGS;
  for (int64_t i = 0; i < count; ++i)
    GRAPH(graph_new(api, g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[i]));
  if (count > 0)
    GRAPH(api->cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                        CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count, cfgs));
  g->step = "the engines: none of cuDNN's heuristics keeps fp32 arithmetic and determinism, "
            "builds and fits the workspace";
  for (int64_t i = 0; i < count && i < MAX_ENGINE_CONFIGS; ++i) {
    cudnnBackendDescriptor_t candidate;
    int64_t bytes = 0, got = 0;
    if (!engine_keeps_fp32(api, g, cfgs[i], tf32) ||
        graph_new(api, g, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &candidate) !=
            CUDNN_STATUS_SUCCESS ||
        api->cudnnBackendSetAttribute(candidate, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                      CUDNN_TYPE_HANDLE, 1, &h) != CUDNN_STATUS_SUCCESS ||
        api->cudnnBackendSetAttribute(candidate, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                      &cfgs[i]) != CUDNN_STATUS_SUCCESS ||
        api->cudnnBackendFinalize(candidate) != CUDNN_STATUS_SUCCESS ||
        api->cudnnBackendGetAttribute(candidate, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                      CUDNN_TYPE_INT64, 1, &got, &bytes) != CUDNN_STATUS_SUCCESS ||
        bytes < 0 || (size_t)bytes > WORKSPACE_BYTES)
      continue;
    *plan = candidate;
    *workspace = bytes;
    return CUDNN_STATUS_SUCCESS;
  }
  return CUDNN_STATUS_NOT_SUPPORTED;
}

static int fusion_refused(void) {
  const char *e = getenv("GRAPHC_NO_CUDNN_FUSION");
  return e && *e && strcmp(e, "0") != 0;
}

/* The graph API's plan for fused forward record k at batch n into c, or
 * none (c->plan null, and the first refusal noted in the context): the
 * legacy call and the epilogue kernel then run instead. */
static void plan_conv_graph(grt_cuda_model *m, const int64_t *k, int64_t n, conv_t *c) {
  cudnnBackendDescriptor_t graph = NULL;
  cudnnStatus_t s;
  if (fusion_refused()) {
    snprintf(m->fusion_note, sizeof m->fusion_note, "turned off (GRAPHC_NO_CUDNN_FUSION)");
    return;
  }
  if ((s = conv_graph(API, m->dnn, k, n, &c->graph, &graph)) == CUDNN_STATUS_SUCCESS &&
      (s = conv_graph_plan(API, m->dnn, (int)m->d->tf32, graph, &c->graph, &c->plan,
                           &c->plan_workspace)) == CUDNN_STATUS_SUCCESS)
    return;
  if (!m->fusion_note[0])
    snprintf(m->fusion_note, sizeof m->fusion_note, "cuDNN refused %s (%s)", c->graph.step,
             API->cudnnGetErrorString(s));
  graph_free(API, &c->graph);
  c->plan = NULL;
}

/* Runs c's fused plan: x, w, bias in, y out, on the handle's stream; the
 * status of the first call that failed. */
static cudnnStatus_t execute_conv_graph(grt_cuda_model *m, const program_t *p, const int64_t *k,
                                        const conv_t *c) {
  int64_t uids[4] = {UID_X, UID_W, UID_BIAS, UID_Y};
  void *ptrs[4] = {(void *)(uintptr_t)p->at[k[GK_A]], (void *)(uintptr_t)p->at[k[GK_B]],
                   (void *)(uintptr_t)p->at[k[GK_BIAS]], (void *)(uintptr_t)p->at[k[GK_C]]};
  void *ws = (void *)(uintptr_t)m->workspace;
  cudnnBackendDescriptor_t pack = NULL;
  cudnnStatus_t s = API->cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
  if (s == CUDNN_STATUS_SUCCESS)
    s = API->cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 4,
                                      uids);
  if (s == CUDNN_STATUS_SUCCESS)
    s = API->cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                      CUDNN_TYPE_VOID_PTR, 4, ptrs);
  if (s == CUDNN_STATUS_SUCCESS)
    s = API->cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                      1, &ws);
  if (s == CUDNN_STATUS_SUCCESS)
    s = API->cudnnBackendFinalize(pack);
  if (s == CUDNN_STATUS_SUCCESS)
    s = API->cudnnBackendExecute(m->dnn, c->plan, pack);
  if (pack)
    API->cudnnBackendDestroyDescriptor(pack);
  return s;
}

int grt_cuda_check_conv_graph(const grt_cuda_api *api, const int64_t *record, int64_t n,
                              int64_t *engines, int64_t *ranked, char *why, size_t why_size) {
  dnn_graph g = {{0}, 0, ""};
  cudnnBackendDescriptor_t graph = NULL, heur = NULL;
  int64_t got = 0;
  *engines = *ranked = 0;
  cudnnStatus_t s = conv_graph(api, NULL, record, n, &g, &graph);
  if (s == CUDNN_STATUS_SUCCESS)
    s = api->cudnnBackendGetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT,
                                      CUDNN_TYPE_INT64, 1, &got, engines);
  if (s == CUDNN_STATUS_SUCCESS)
    s = conv_graph_heuristics(api, graph, &g, &heur, ranked);
  if (s != CUDNN_STATUS_SUCCESS && why && why_size > 0)
    snprintf(why, why_size, "cuDNN refused %s (%s)", g.step, api->cudnnGetErrorString(s));
  graph_free(api, &g);
  return s == CUDNN_STATUS_SUCCESS ? GRT_OK : GRT_ERR_DEVICE;
}

/* The first algorithm of cuDNN's ranking that works, is deterministic (a
 * replayed step gives the same bits) and fits the workspace. */
#define PICK_ALGO(perf)                                                                            \
  for (int i_ = 0; i_ < count && !found; ++i_)                                                     \
    if (perf[i_].status == CUDNN_STATUS_SUCCESS && perf[i_].determinism == CUDNN_DETERMINISTIC &&  \
        perf[i_].memory <= WORKSPACE_BYTES) {                                                      \
      c->algo = (int)perf[i_].algo;                                                                \
      found = 1;                                                                                   \
    }

/* cuDNN's descriptors of convolution record k at batch n (the forward
 * geometry, fp32 NCHW; FMA math unless the model was compiled --tf32), its
 * algorithm and workspace. */
static int describe_conv(grt_cuda_model *m, const int64_t *k, int64_t n, conv_t *c) {
  const int64_t b = dim(k[GK_CONV_N], n);
  const int mode = (int)k[GK_CONV_MODE];
  DNN(API->cudnnCreateTensorDescriptor(&c->x));
  DNN(API->cudnnCreateTensorDescriptor(&c->y));
  DNN(API->cudnnCreateFilterDescriptor(&c->w));
  DNN(API->cudnnCreateConvolutionDescriptor(&c->conv));
  DNN(API->cudnnSetTensor4dDescriptor(c->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)b,
                                      (int)k[GK_CONV_C], (int)k[GK_CONV_H], (int)k[GK_CONV_W]));
  DNN(API->cudnnSetTensor4dDescriptor(c->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)b,
                                      (int)k[GK_CONV_O], (int)k[GK_CONV_OH], (int)k[GK_CONV_OW]));
  DNN(API->cudnnSetFilter4dDescriptor(c->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)k[GK_CONV_O],
                                      (int)k[GK_CONV_C], (int)k[GK_CONV_KH], (int)k[GK_CONV_KW]));
  DNN(API->cudnnSetConvolution2dDescriptor(c->conv, (int)k[GK_CONV_PH], (int)k[GK_CONV_PW],
                                           (int)k[GK_CONV_SH], (int)k[GK_CONV_SW], 1, 1,
                                           CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  DNN(API->cudnnSetConvolutionMathType(c->conv, m->d->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  int count = 0, found = 0;
  if (mode == GCU_CONV_FORWARD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    DNN(API->cudnnGetConvolutionForwardAlgorithm_v7(
        m->dnn, c->x, c->w, c->conv, c->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    PICK_ALGO(perf)
    if (found)
      DNN(API->cudnnGetConvolutionForwardWorkspaceSize(
          m->dnn, c->x, c->w, c->conv, c->y, (cudnnConvolutionFwdAlgo_t)c->algo, &c->workspace));
  } else if (mode == GCU_CONV_GRAD_INPUT) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    DNN(API->cudnnGetConvolutionBackwardDataAlgorithm_v7(
        m->dnn, c->w, c->y, c->conv, c->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    PICK_ALGO(perf)
    if (found)
      DNN(API->cudnnGetConvolutionBackwardDataWorkspaceSize(m->dnn, c->w, c->y, c->conv, c->x,
                                                            (cudnnConvolutionBwdDataAlgo_t)c->algo,
                                                            &c->workspace));
  } else if (mode == GCU_CONV_GRAD_WEIGHT) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    DNN(API->cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        m->dnn, c->x, c->y, c->conv, c->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
    PICK_ALGO(perf)
    if (found)
      DNN(API->cudnnGetConvolutionBackwardFilterWorkspaceSize(
          m->dnn, c->x, c->y, c->conv, c->w, (cudnnConvolutionBwdFilterAlgo_t)c->algo,
          &c->workspace));
  } else {
    return fail(m, GRT_ERR_FORMAT, "a convolution record of unknown mode %d", mode);
  }
  if (!found)
    return fail(m, GRT_ERR_DEVICE,
                "cuDNN has no deterministic algorithm within %d MiB for the %dx%dx%dx%d "
                "convolution of mode %d",
                (int)(WORKSPACE_BYTES >> 20), (int)b, (int)k[GK_CONV_C], (int)k[GK_CONV_H],
                (int)k[GK_CONV_W], mode);
  if (c->workspace > WORKSPACE_BYTES)
    return fail(m, GRT_ERR_DEVICE, "cuDNN asks for %zu bytes of workspace, more than %zu",
                c->workspace, (size_t)WORKSPACE_BYTES);
  return GRT_OK;
}

static int plan_conv(grt_cuda_model *m, const int64_t *k, int64_t n, conv_t *c) {
  int rc = describe_conv(m, k, n, c);
  if (rc != GRT_OK)
    conv_free(m, c);
  else if (k[GK_CONV_MODE] == GCU_CONV_FORWARD && k[GK_LT] != GCU_LT_NONE)
    plan_conv_graph(m, k, n, c);
  return rc;
}

/* Convolution record k of `p` by cuDNN, on the step's stream: its fused
 * plan when it has one, unless a fused plan failed to run (then the plan is
 * dropped, the failure noted, and every convolution runs unfused: the
 * legacy call here, the caller's epilogue kernel after it). */
static int enqueue_conv(grt_cuda_model *m, const program_t *p, const int64_t *k, conv_t *c) {
  if (c->plan && !m->fusion_failed) {
    cudnnStatus_t s = execute_conv_graph(m, p, k, c);
    if (s == CUDNN_STATUS_SUCCESS)
      return GRT_OK;
    m->fusion_failed = 1;
    snprintf(m->fusion_note, sizeof m->fusion_note,
             "a fused plan failed to run (%s); unfused from then on", API->cudnnGetErrorString(s));
  }
  if (c->plan) {
    graph_free(API, &c->graph);
    c->plan = NULL;
  }
  const float alpha = 1.0f, beta = 0.0f;
  const void *a = (const void *)(uintptr_t)p->at[k[GK_A]],
             *b = (const void *)(uintptr_t)p->at[k[GK_B]];
  void *out = (void *)(uintptr_t)p->at[k[GK_C]], *ws = (void *)(uintptr_t)m->workspace;
  switch (k[GK_CONV_MODE]) {
  case GCU_CONV_FORWARD:
    DNN(API->cudnnConvolutionForward(m->dnn, &alpha, c->x, a, c->w, b, c->conv,
                                     (cudnnConvolutionFwdAlgo_t)c->algo, ws, c->workspace, &beta,
                                     c->y, out));
    break;
  case GCU_CONV_GRAD_INPUT:
    DNN(API->cudnnConvolutionBackwardData(m->dnn, &alpha, c->w, b, c->y, a, c->conv,
                                          (cudnnConvolutionBwdDataAlgo_t)c->algo, ws, c->workspace,
                                          &beta, c->x, out));
    break;
  default:
    DNN(API->cudnnConvolutionBackwardFilter(m->dnn, &alpha, c->x, a, c->y, b, c->conv,
                                            (cudnnConvolutionBwdFilterAlgo_t)c->algo, ws,
                                            c->workspace, &beta, c->w, out));
    break;
  }
  return GRT_OK;
}

/* --- launches ------------------------------------------------------------------------ */

static int64_t blocks_for(const grt_cuda_model *m, int64_t total, int threads) {
  int64_t want = (total + threads - 1) / threads, most = (int64_t)(m->sms > 0 ? m->sms : 1) * 32;
  return want < 1 ? 1 : want > most ? most : want;
}

static int launch(grt_cuda_model *m, CUfunction f, int64_t blocks, int threads, void **args) {
  if (!f)
    return fail(m, GRT_ERR_FORMAT, "a kernel of the program is missing");
  CU(API->cuLaunchKernel(f, (unsigned)blocks, 1, 1, (unsigned)threads, 1, 1, 0, m->stream, args,
                         NULL));
  return GRT_OK;
}

/* Enqueues kernel records [first, last) of `p` at batch n, and the output
 * copies when `last` is the end. */
static int enqueue_range(grt_cuda_model *m, program_t *p, int64_t n, batch_t *b, int64_t first,
                         int64_t last) {
  CUdeviceptr table = p->table;
  int rc = GRT_OK;
  for (int64_t i = first; i < last && rc == GRT_OK; ++i) {
    const int64_t *k = p->kernels + GCU_KERNEL_WORDS * i;
    int64_t total = elements(k[GK_TOTAL_COEF], k[GK_TOTAL_POW], n);
    CUfunction fn = k[GK_FN] >= 0 ? p->fns[k[GK_FN]] : NULL;
    switch (k[GK_LAUNCH]) {
    case GCU_ELEMENTS: {
      void *args[] = {&table, &n, &total};
      if (total > 0)
        rc = launch(m, fn, blocks_for(m, total, 256), 256, args);
      break;
    }
    case GCU_ROWS:
    case GCU_SINGLE_BLOCK: {
      int64_t len = k[GK_ROW_LEN] < 0 ? n : k[GK_ROW_LEN];
      int64_t rows = len == 0 ? 0 : total / len;
      void *args[] = {&table, &n, &rows};
      rc = k[GK_LAUNCH] == GCU_SINGLE_BLOCK
               ? launch(m, fn, 1, 256, args) /* exactly 256: its shared sums */
               : launch(m, fn, blocks_for(m, rows, 128), 128, args);
      break;
    }
    case GCU_GEMM: {
      const gemm_t *g = &b->gemms[i];
      const float alpha = 1.0f, beta = 0.0f;
      void *c = (void *)(uintptr_t)p->at[k[GK_C]];
      LT(API->cublasLtMatmul(m->lt, g->desc, &alpha, (const void *)(uintptr_t)p->at[k[GK_B]], g->la,
                             (const void *)(uintptr_t)p->at[k[GK_A]], g->lb, &beta, c, g->lc, c,
                             g->lc, &g->algo, (void *)(uintptr_t)m->workspace, WORKSPACE_BYTES,
                             m->stream));
      if (g->by_self) {
        CUdeviceptr cp = p->at[k[GK_C]], bias = p->at[k[GK_BIAS]];
        int64_t count = g->m * g->n, cols = g->n;
        int relu = g->relu;
        void *args[] = {&cp, &bias, &count, &cols, &relu};
        rc = launch(m, m->bias_add, blocks_for(m, count, 256), 256, args);
      }
      if (rc == GRT_OK && fn) { /* the generated epilogue over C */
        void *args[] = {&table, &n, &total};
        rc = launch(m, fn, blocks_for(m, total, 256), 256, args);
      }
      if (rc == GRT_OK && k[GK_COLSUM_FN] >= 0) { /* a thread per column */
        int64_t cols = elements(k[GK_COLS_COEF], k[GK_COLS_POW], n);
        void *args[] = {&table, &n, &cols};
        rc = launch(m, p->fns[k[GK_COLSUM_FN]], (cols + 127) / 128, 128, args);
      }
      break;
    }
    case GCU_CONV: {
      void *args[] = {&table, &n, &total};
      if (total == 0)
        break;
      if (k[GK_A] < 0 || k[GK_A] >= p->num_values || k[GK_B] < 0 || k[GK_B] >= p->num_values ||
          k[GK_C] < 0 || k[GK_C] >= p->num_values || k[GK_EPI_FN] >= p->num_functions ||
          k[GK_LT] < GCU_LT_NONE || k[GK_LT] > GCU_LT_RELU_BIAS ||
          (k[GK_LT] != GCU_LT_NONE && (k[GK_BIAS] < 0 || k[GK_BIAS] >= p->num_values)))
        return fail(m, GRT_ERR_FORMAT, "the %s program's convolution %" PRId64 " is damaged",
                    p->what, i);
      if (!m->dnn) { /* the whole group as generated code */
        rc = launch(m, fn, blocks_for(m, total, 256), 256, args);
        break;
      }
      rc = enqueue_conv(m, p, k, &b->convs[i]);
      if (rc == GRT_OK && k[GK_EPI_FN] >= 0 && !b->convs[i].plan)
        rc = launch(m, p->fns[k[GK_EPI_FN]], blocks_for(m, total, 256), 256, args);
      break;
    }
    case GCU_HOST_COPY:
      for (int64_t j = k[GK_COPY_FIRST]; j < k[GK_COPY_FIRST] + k[GK_COPY_COUNT]; ++j) {
        const int64_t *c = p->copies + 5 * j;
        if (c[2] < 0) /* a constant: -1 - its bits */
          CU(API->cuMemsetD32Async(p->at[c[0]] + (CUdeviceptr)c[1], (unsigned)(-1 - c[2]),
                                   (size_t)elements(c[3], c[4], n), m->stream));
        else
          CU(API->cuMemcpyDtoDAsync(p->at[c[0]] + (CUdeviceptr)c[1], p->at[c[2]],
                                    (size_t)elements(c[3], c[4], n) * 4, m->stream));
      }
      break;
    default: return fail(m, GRT_ERR_FORMAT, "the %s program has a kernel of unknown kind", p->what);
    }
  }
  if (rc != GRT_OK || last != p->num_kernels)
    return rc;
  for (int64_t j = 0; j < p->num_outcopies; ++j) {
    const int64_t *c = p->outcopies + 4 * j;
    CUdeviceptr dst = p->io_ptr[c[1]], src = p->at[c[0]];
    if (dst != src)
      CU(API->cuMemcpyDtoDAsync(dst, src, (size_t)elements(c[2], c[3], n) * 4, m->stream));
  }
  return GRT_OK;
}

static int enqueue(grt_cuda_model *m, program_t *p, int64_t n, batch_t *b) {
  return enqueue_range(m, p, n, b, 0, p->num_kernels);
}

/* The plans of batch size n: its products' descriptors and algorithms,
 * made the first time. */
static int plan_batch(grt_cuda_model *m, program_t *p, int64_t n, batch_t **out) {
  batch_t *b = &p->batches[n];
  if (!b->gemms && !(b->gemms = calloc((size_t)p->num_kernels + 1, sizeof(gemm_t))))
    return fail(m, GRT_ERR_MEMORY, "out of memory");
  if (!b->convs && !(b->convs = calloc((size_t)p->num_kernels + 1, sizeof(conv_t))))
    return fail(m, GRT_ERR_MEMORY, "out of memory");
  for (int64_t i = 0; i < p->num_kernels; ++i) {
    const int64_t *k = p->kernels + GCU_KERNEL_WORDS * i;
    int rc = GRT_OK;
    if (k[GK_LAUNCH] == GCU_GEMM && !b->gemms[i].desc)
      rc = plan_gemm(m, p, k, n, &b->gemms[i]);
    else if (k[GK_LAUNCH] == GCU_CONV && m->dnn && !b->convs[i].conv)
      rc = plan_conv(m, k, n, &b->convs[i]);
    if (rc != GRT_OK)
      return rc;
  }
  *out = b;
  return GRT_OK;
}

/* Plans the largest batch of the model's first program now when it has
 * forward convolutions that cuDNN's graph API may fuse, so that the
 * context can tell from the start how many it does (grt_cuda_conv_fusion). */
static int count_fused_convs(grt_cuda_model *m) {
  program_t *p = m->step.kernels ? &m->step : &m->predict;
  if (!m->dnn || !p->kernels)
    return GRT_OK;
  for (int64_t i = 0; i < p->num_kernels; ++i) {
    const int64_t *k = p->kernels + GCU_KERNEL_WORDS * i;
    m->convs_fusable +=
        k[GK_LAUNCH] == GCU_CONV && k[GK_CONV_MODE] == GCU_CONV_FORWARD && k[GK_LT] != GCU_LT_NONE;
  }
  batch_t *b = NULL;
  int rc = m->convs_fusable > 0 ? plan_batch(m, p, m->max_batch, &b) : GRT_OK;
  for (int64_t i = 0; b && i < p->num_kernels; ++i)
    m->convs_fused += b->convs[i].plan != NULL;
  return rc;
}

static int graphs_enabled(void) {
  const char *e = getenv("GRAPHC_CUDA_GRAPHS");
  return !e || strcmp(e, "0") != 0;
}

/* Enqueues program `p` at batch n: the first time at a size plans its
 * products, launches directly and captures the same launches as a CUDA
 * graph; later times replay the graph. */
static int run(grt_cuda_model *m, program_t *p, int64_t n) {
  batch_t *b = &p->batches[n];
  if (b->ready) {
    if (b->exec)
      CU(API->cuGraphLaunch(b->exec, m->stream));
    return b->exec ? GRT_OK : enqueue(m, p, n, b);
  }
  int rc = plan_batch(m, p, n, &b);
  if (rc != GRT_OK)
    return rc;
  rc = enqueue(m, p, n, b);
  if (rc != GRT_OK)
    return rc;
  /* The step is enqueued and counts from here: a capture that fails only
   * leaves this size launching directly (b->exec stays null). */
  if (graphs_enabled() &&
      API->cuStreamBeginCapture(m->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) == CUDA_SUCCESS) {
    int captured = enqueue(m, p, n, b);
    CUgraph graph = NULL;
    CUresult r = API->cuStreamEndCapture(m->stream, &graph);
    if (captured == GRT_OK && r == CUDA_SUCCESS &&
        API->cuGraphInstantiateWithFlags(&b->exec, graph, 0) != CUDA_SUCCESS)
      b->exec = NULL;
    if (graph)
      API->cuGraphDestroy(graph);
  }
  b->ready = 1;
  return GRT_OK;
}

/* --- contexts ----------------------------------------------------------------------- */

/* The device, a stream, cuBLASLt, graphc's helper kernels, and the buffers
 * of m's sizes (all zero in grt_cuda_run_program's context). */
static int open_device(grt_cuda_model *m) {
  CU(API->cuInit(0));
  CU(API->cuDeviceGet(&m->dev, m->ordinal));
  CU(API->cuDevicePrimaryCtxRetain(&m->ctx, m->dev));
  CU(API->cuCtxSetCurrent(m->ctx));
  CU(API->cuDeviceGetAttribute(&m->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, m->dev));
  CU(API->cuStreamCreate(&m->stream, CU_STREAM_NON_BLOCKING));
  LT(API->cublasLtCreate(&m->lt));
  CU(API->cuMemAlloc(&m->workspace, WORKSPACE_BYTES));
  int rc = load_module(m, m->d->helpers_ptx, &m->helpers, "graphc's helper kernels");
  if (rc != GRT_OK)
    return rc;
  CU(API->cuModuleGetFunction(&m->bias_add, m->helpers, "graphc_bias_add"));
  CU(API->cuModuleGetFunction(&m->gather, m->helpers, "graphc_gather"));

  const size_t np = (size_t)m->num_params * 4, mb = (size_t)m->max_batch;
  if ((rc = zeroed(m, &m->params, np)) != GRT_OK ||
      (rc = zeroed(m, &m->x, mb * (size_t)m->sample * 4)) != GRT_OK ||
      (rc = zeroed(m, &m->labels, mb * 4)) != GRT_OK ||
      (rc = zeroed(m, &m->indices, mb * 8)) != GRT_OK ||
      (rc = zeroed(m, &m->output, mb * (size_t)m->classes * 4)) != GRT_OK ||
      (rc = zeroed(m, &m->scalars, GRAPHC_SCALAR_BYTES)) != GRT_OK)
    return rc;
  for (int64_t s = 0; s < m->num_slots; ++s)
    if ((rc = zeroed(m, &m->state[s], np)) != GRT_OK)
      return rc;
  return GRT_OK;
}

static void free_program(grt_cuda_model *m, program_t *p) {
  if (p->batches)
    for (int64_t n = 0; n <= m->max_batch; ++n) {
      batch_t *b = &p->batches[n];
      if (b->exec)
        API->cuGraphExecDestroy(b->exec);
      if (b->gemms)
        for (int64_t i = 0; i < p->num_kernels; ++i)
          gemm_free(m, &b->gemms[i]);
      if (b->convs)
        for (int64_t i = 0; i < p->num_kernels; ++i)
          conv_free(m, &b->convs[i]);
      free(b->gemms);
      free(b->convs);
    }
  if (p->mods)
    for (int64_t i = 0; i < p->num_modules; ++i)
      if (p->mods[i])
        API->cuModuleUnload(p->mods[i]);
  if (p->arena)
    API->cuMemFree(p->arena);
  if (p->table)
    API->cuMemFree(p->table);
  free(p->batches);
  free(p->mods);
  free(p->fns);
  free(p->at);
  free(p->io_ptr);
}

void grt_cuda_destroy(grt_cuda_model *m) {
  if (!m)
    return;
  if (m->ctx) {
    API->cuCtxSetCurrent(m->ctx);
    if (m->stream)
      API->cuStreamSynchronize(m->stream);
    /* the share graphs hold NCCL's captured allreduce: gone before its communicator */
    if (m->share_exec)
      for (int64_t n = 0; n <= m->max_batch; ++n)
        if (m->share_exec[n])
          API->cuGraphExecDestroy(m->share_exec[n]);
#if GRT_HAVE_NCCL
    if (m->premul_made)
      API->ncclRedOpDestroy(m->premul, m->nccl);
    if (m->nccl)
      API->ncclCommDestroy(m->nccl);
#endif
    free_program(m, &m->step);
    free_program(m, &m->predict);
    free_program(m, &m->gradients);
    free_program(m, &m->update);
    CUdeviceptr bufs[] = {m->params,      m->x,       m->labels,    m->indices,
                          m->output,      m->scalars, m->workspace, m->data_x,
                          m->data_labels, m->grad,    m->weight,    m->vote};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i)
      if (bufs[i])
        API->cuMemFree(bufs[i]);
    if (m->state)
      for (int64_t s = 0; s < m->num_slots; ++s)
        if (m->state[s])
          API->cuMemFree(m->state[s]);
    if (m->helpers)
      API->cuModuleUnload(m->helpers);
    if (m->lt)
      API->cublasLtDestroy(m->lt);
    if (m->dnn)
      API->cudnnDestroy(m->dnn);
    if (m->stream)
      API->cuStreamDestroy(m->stream);
    API->cuDevicePrimaryCtxRelease(m->dev);
  }
  free(m->state);
  free(m->label_check);
  free(m->share_exec);
  free(m->share_state);
  grt_model_destroy(m->host);
  free(m);
}

/* A context with no host model and no buffers of its own, for
 * grt_cuda_run_program: the device, its stream and cuBLASLt. */
static int open_bare(const grt_cuda_desc *d, grt_cuda_model **out) {
  grt_cuda_model *m = calloc(1, sizeof(grt_cuda_model));
  if (!m)
    return fail(NULL, GRT_ERR_MEMORY, "out of memory");
  *out = m;
  m->d = d;
  m->api = d->api;
  m->max_batch = 1;
  m->state = calloc(1, sizeof(CUdeviceptr));
  if (!m->state)
    return fail(m, GRT_ERR_MEMORY, "out of memory");
  if (!m->api)
    return fail(m, GRT_ERR_FORMAT, "the descriptor has no CUDA function table");
  return open_device(m);
}

int grt_cuda_create(const grt_cuda_desc *d, grt_cuda_model **out, const char *weights,
                    int threads) {
  (void)threads; /* the GPU does the work */
  return grt_cuda_create_on(d, out, weights, 0);
}

int grt_cuda_create_on(const grt_cuda_desc *d, grt_cuda_model **out, const char *weights,
                       int device) {
  if (!out)
    return fail(NULL, GRT_ERR_ARGUMENT, "create: the context pointer is null");
  *out = NULL;
  if (!d || !d->model || !d->api)
    return fail(NULL, GRT_ERR_ARGUMENT, "create: the descriptor is incomplete");
  grt_cuda_model *m = calloc(1, sizeof(grt_cuda_model));
  if (!m)
    return fail(NULL, GRT_ERR_MEMORY, "create: out of memory");
  m->d = d;
  m->api = d->api;
  m->ordinal = device;
  int rc = grt_model_create(d->model, &m->host, weights, 1);
  if (rc != GRT_OK) {
    fail(NULL, rc, "%s", grt_model_error(NULL));
    free(m);
    return rc;
  }
  const grt_model_desc *md = d->model;
  m->max_batch = md->max_batch;
  m->sample = md->sample_numel;
  m->classes = md->classes;
  m->num_params = md->num_params;
  m->num_slots = md->num_slots;
  m->state = calloc((size_t)m->num_slots + 1, sizeof(CUdeviceptr));
  m->label_check = malloc((size_t)m->max_batch * sizeof(int32_t) + 4);
  rc = m->state && m->label_check ? GRT_OK : fail(m, GRT_ERR_MEMORY, "create: out of memory");
  if (rc == GRT_OK)
    rc = open_device(m);
  /* A model compiled for evaluation only has no step table. */
  if (rc == GRT_OK && d->step_words > 0)
    rc = decode(m, &m->step, d->step, d->step_words, "training step");
  if (rc == GRT_OK)
    rc = decode(m, &m->predict, d->predict, d->predict_words, "evaluation");
  if (rc == GRT_OK && d->step_words > 0)
    rc = prepare_program(m, &m->step, model_io, NULL);
  if (rc == GRT_OK)
    rc = prepare_program(m, &m->predict, model_io, NULL);
  if (rc == GRT_OK)
    rc = count_fused_convs(m);
  if (rc == GRT_OK && d->gradients_words > 0 && d->update_words > 0)
    rc = grt_cuda_add_split(m, d->gradients, d->gradients_words, d->update, d->update_words);
  if (rc == GRT_OK) { /* every memset and upload done before the first step */
    CUresult r = API->cuStreamSynchronize(m->stream);
    if (r != CUDA_SUCCESS)
      rc = cu_fail(m, r, "cuStreamSynchronize");
  }
  if (rc != GRT_OK) {
    fail(NULL, rc, "create: %s", m->error);
    grt_cuda_destroy(m);
    return rc;
  }
  m->mirror_valid = 1; /* the host holds the initial (or loaded) weights */
  m->mirror_dirty = 1; /* ... which the first step uploads */
  *out = m;
  return GRT_OK;
}

/* Makes the context current and writes back a mirror handed out or loaded. */
static int begin(grt_cuda_model *m) {
  CU(API->cuCtxSetCurrent(m->ctx));
  if (!m->mirror_dirty)
    return GRT_OK;
  size_t bytes = (size_t)m->num_params * 4;
  if (bytes) {
    /* on the step's stream: a plain copy from pageable memory may return
     * before its data lands, and that stream would not wait for it */
    CU(API->cuMemcpyHtoDAsync(m->params, grt_model_params(m->host), bytes, m->stream));
    for (int64_t s = 0; s < m->num_slots; ++s)
      CU(API->cuMemcpyHtoDAsync(m->state[s], grt_model_state(m->host, s), bytes, m->stream));
  }
  m->mirror_dirty = 0;
  return GRT_OK;
}

/* Copies parameters and state to the host when a step ran since. */
static int refresh(grt_cuda_model *m) {
  if (m->mirror_valid)
    return GRT_OK;
  CU(API->cuCtxSetCurrent(m->ctx));
  size_t bytes = (size_t)m->num_params * 4;
  if (bytes) {
    CU(API->cuMemcpyDtoHAsync(grt_model_params(m->host), m->params, bytes, m->stream));
    for (int64_t s = 0; s < m->num_slots; ++s)
      CU(API->cuMemcpyDtoHAsync(grt_model_state(m->host, s), m->state[s], bytes, m->stream));
  }
  CU(API->cuStreamSynchronize(m->stream));
  m->mirror_valid = 1;
  return GRT_OK;
}

/* Checks a call's batch and pointers, then begin(). */
static int start(grt_cuda_model *m, uint64_t x, int64_t n, int have_rest, const char *missing) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  if (!x)
    return fail(m, GRT_ERR_ARGUMENT, "the input pointer is null");
  if (n < 1 || n > m->max_batch)
    return fail(m, GRT_ERR_ARGUMENT, "batch of %" PRId64 " samples: expected 1 to %" PRId64, n,
                m->max_batch);
  if (!have_rest)
    return fail(m, GRT_ERR_ARGUMENT, "%s", missing);
  return begin(m);
}

static int check_labels(grt_cuda_model *m, const int32_t *labels, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= m->classes)
      return fail(m, GRT_ERR_ARGUMENT, "label %d of sample %" PRId64 " is outside [0, %" PRId64 ")",
                  labels[i], i, m->classes);
  return GRT_OK;
}

/* Copies `bytes` to the device buffer `dst` from host or device memory;
 * the caller's own work on the device (any stream) is waited for first. */
static int copy_in(grt_cuda_model *m, CUdeviceptr dst, uint64_t src, size_t bytes, int device) {
  if (device) {
    CU(API->cuCtxSynchronize());
    CU(API->cuMemcpyDtoDAsync(dst, (CUdeviceptr)src, bytes, m->stream));
  } else {
    CU(API->cuMemcpyHtoDAsync(dst, (const void *)(uintptr_t)src, bytes, m->stream));
  }
  return GRT_OK;
}

static int need_step(grt_cuda_model *m) {
  return m->step.num_kernels > 0 || m->d->step_words > 0
             ? GRT_OK
             : fail(m, GRT_ERR_ARGUMENT, "this model was compiled for evaluation only");
}

/* The batch in x and labels (host or device memory), checked. */
static int stage_batch(grt_cuda_model *m, uint64_t x, uint64_t labels, int64_t n, int device) {
  const int32_t *host_labels = (const int32_t *)(uintptr_t)labels;
  if (device) { /* checked on the host: a bad label would read out of bounds */
    /* the caller's streams may still be writing them (the header's promise) */
    CU(API->cuCtxSynchronize());
    CU(API->cuMemcpyDtoH(m->label_check, (CUdeviceptr)labels, (size_t)n * 4));
    host_labels = m->label_check;
  }
  int rc;
  if ((rc = check_labels(m, host_labels, n)) != GRT_OK ||
      (rc = copy_in(m, m->x, x, (size_t)(n * m->sample) * 4, device)) != GRT_OK ||
      (rc = copy_in(m, m->labels, labels, (size_t)n * 4, device)) != GRT_OK)
    return rc;
  return GRT_OK;
}

/* The step counter, seed and sample offset in; from here on the device's
 * parameters may change. */
static int stage_scalars_at(grt_cuda_model *m, int32_t offset_in) {
  float step_in = (float)grt_model_step(m->host);
  int32_t seed_in = grt_model_step_seed(m->host);
  memcpy(m->scalars_in + GRAPHC_SCALAR_STEP_IN, &step_in, 4);
  memcpy(m->scalars_in + GRAPHC_SCALAR_SEED_IN, &seed_in, 4);
  memcpy(m->scalars_in + GRAPHC_SCALAR_OFFSET_IN, &offset_in, 4);
  CU(API->cuMemcpyHtoDAsync(m->scalars, m->scalars_in, sizeof m->scalars_in, m->stream));
  m->mirror_valid = 0;
  return GRT_OK;
}

static int stage_scalars(grt_cuda_model *m) { return stage_scalars_at(m, 0); }

/* The step on the staged batch; the loss (and the output) out; the step
 * counter advanced. */
static int finish_step(grt_cuda_model *m, int64_t n, float *loss, float *output) {
  int rc;
  if ((rc = stage_scalars(m)) != GRT_OK || (rc = run(m, &m->step, n)) != GRT_OK)
    return rc;
  CU(API->cuMemcpyDtoHAsync(&m->loss_out, m->scalars + GRAPHC_SCALAR_LOSS, 4, m->stream));
  if (output)
    CU(API->cuMemcpyDtoHAsync(output, m->output, (size_t)(n * m->classes) * 4, m->stream));
  CU(API->cuStreamSynchronize(m->stream));
  if (loss)
    *loss = m->loss_out;
  grt_model_set_step(m->host, grt_model_step(m->host) + 1);
  return GRT_OK;
}

/* One training step on a batch in host (device = 0) or device memory. */
static int train_step(grt_cuda_model *m, uint64_t x, uint64_t labels, int64_t n, float *loss,
                      float *output, int device) {
  int rc = start(m, x, n, labels && loss, "the labels or loss pointer is null");
  if (rc == GRT_OK)
    rc = need_step(m);
  if (rc == GRT_OK)
    rc = stage_batch(m, x, labels, n, device);
  return rc == GRT_OK ? finish_step(m, n, loss, output) : rc;
}

static int predict(grt_cuda_model *m, uint64_t x, int64_t n, uint64_t output, int device) {
  int rc = start(m, x, n, output != 0, "the output pointer is null");
  if (rc != GRT_OK || (rc = copy_in(m, m->x, x, (size_t)(n * m->sample) * 4, device)) != GRT_OK ||
      (rc = run(m, &m->predict, n)) != GRT_OK)
    return rc;
  const size_t bytes = (size_t)(n * m->classes) * 4;
  if (device)
    CU(API->cuMemcpyDtoDAsync((CUdeviceptr)output, m->output, bytes, m->stream));
  else
    CU(API->cuMemcpyDtoHAsync((void *)(uintptr_t)output, m->output, bytes, m->stream));
  CU(API->cuStreamSynchronize(m->stream));
  return GRT_OK;
}

int grt_cuda_train_step(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                        float *loss) {
  return train_step(m, (uint64_t)(uintptr_t)x, (uint64_t)(uintptr_t)labels, n, loss, NULL, 0);
}

int grt_cuda_train_step_output(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                               float *loss, float *output) {
  return train_step(m, (uint64_t)(uintptr_t)x, (uint64_t)(uintptr_t)labels, n, loss, output, 0);
}

int grt_cuda_train_step_device(grt_cuda_model *m, uint64_t x, uint64_t labels, int64_t n,
                               float *loss) {
  return train_step(m, x, labels, n, loss, NULL, 1);
}

int grt_cuda_predict(grt_cuda_model *m, const float *x, int64_t n, float *output) {
  return predict(m, (uint64_t)(uintptr_t)x, n, (uint64_t)(uintptr_t)output, 0);
}

int grt_cuda_predict_device(grt_cuda_model *m, uint64_t x, int64_t n, uint64_t output) {
  return predict(m, x, n, output, 1);
}

float *grt_cuda_params(grt_cuda_model *m) {
  if (!m || refresh(m) != GRT_OK)
    return NULL;
  m->mirror_dirty = 1; /* the caller may write to it */
  return grt_model_params(m->host);
}

float *grt_cuda_state(grt_cuda_model *m, int64_t slot) {
  if (!m || slot < 0 || slot >= m->num_slots || refresh(m) != GRT_OK)
    return NULL;
  m->mirror_dirty = 1;
  return grt_model_state(m->host, slot);
}

int64_t grt_cuda_step(const grt_cuda_model *m) { return m ? grt_model_step(m->host) : -1; }

void grt_cuda_set_step(grt_cuda_model *m, int64_t step) {
  if (m)
    grt_model_set_step(m->host, step);
}

void grt_cuda_set_seed(grt_cuda_model *m, uint64_t seed) {
  if (m)
    grt_model_set_seed(m->host, seed);
}

int grt_cuda_save(grt_cuda_model *m, const char *path) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  int rc = refresh(m);
  if (rc != GRT_OK)
    return rc;
  rc = grt_model_save(m->host, path);
  if (rc != GRT_OK)
    fail(m, rc, "%s", grt_model_error(m->host));
  return rc;
}

int grt_cuda_load(grt_cuda_model *m, const char *path) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  int rc = grt_model_load(m->host, path);
  if (rc != GRT_OK)
    return fail(m, rc, "%s", grt_model_error(m->host));
  m->mirror_valid = 1;
  m->mirror_dirty = 1;
  return GRT_OK;
}

const char *grt_cuda_error(const grt_cuda_model *m) { return m ? m->error : create_error; }

int grt_cuda_uses_cudnn(const grt_cuda_model *m) { return m && m->dnn ? 1 : 0; }

const char *grt_cuda_conv_fusion(const grt_cuda_model *m, int64_t *fused, int64_t *fusable) {
  *fused = m && !m->fusion_failed ? m->convs_fused : 0;
  *fusable = m ? m->convs_fusable : 0;
  return m && *fused < *fusable ? m->fusion_note : "";
}

/* --- the step split in two ---------------------------------------------------------- */

int grt_cuda_add_split(grt_cuda_model *m, const int64_t *gradients, int64_t gradients_words,
                       const int64_t *update, int64_t update_words) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  if (m->split)
    return fail(m, GRT_ERR_ARGUMENT, "the split step was added to this context before");
  int rc = need_step(m);
  if (rc != GRT_OK)
    return rc;
  m->split = -1; /* until every part below is in place */
  CU(API->cuCtxSetCurrent(m->ctx));
  if ((rc = decode(m, &m->gradients, gradients, gradients_words, "gradients")) != GRT_OK ||
      (rc = decode(m, &m->update, update, update_words, "update")) != GRT_OK ||
      (rc = zeroed(m, &m->grad, (size_t)m->num_params * 4)) != GRT_OK ||
      (rc = prepare_program(m, &m->gradients, model_io, NULL)) != GRT_OK ||
      (rc = prepare_program(m, &m->update, model_io, NULL)) != GRT_OK)
    return rc;
  CU(API->cuStreamSynchronize(m->stream));
  m->split = 1;
  return GRT_OK;
}

int grt_cuda_can_split(const grt_cuda_model *m) { return m && m->split == 1; }

static int need_split(grt_cuda_model *m) {
  return m->split == 1
             ? GRT_OK
             : fail(m, GRT_ERR_ARGUMENT, "this model was compiled without the split step");
}

/* A share of n samples from a host batch in, checked, with the step
 * counter, seed and its sample offset. */
static int stage_share(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                       int64_t offset) {
  int rc = start(m, (uint64_t)(uintptr_t)x, n, labels != NULL, "the labels pointer is null");
  if (rc != GRT_OK || (rc = need_split(m)) != GRT_OK)
    return rc;
  if (offset < 0 || offset > INT32_MAX)
    return fail(m, GRT_ERR_ARGUMENT, "sample offset %" PRId64 " is out of range", offset);
  if ((rc = stage_batch(m, (uint64_t)(uintptr_t)x, (uint64_t)(uintptr_t)labels, n, 0)) != GRT_OK)
    return rc;
  return stage_scalars_at(m, (int32_t)offset);
}

/* The loss and output of the gradients program's n samples, to the host
 * once the stream is waited for. */
static int fetch_share(grt_cuda_model *m, int64_t n, float *output) {
  CU(API->cuMemcpyDtoHAsync(&m->loss_out, m->scalars + GRAPHC_SCALAR_LOSS, 4, m->stream));
  if (output)
    CU(API->cuMemcpyDtoHAsync(output, m->output, (size_t)(n * m->classes) * 4, m->stream));
  return GRT_OK;
}

/* The gradients program on a host batch; the gradient stays in m->grad. */
static int enqueue_gradients(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                             int64_t offset, float *output) {
  int rc = stage_share(m, x, labels, n, offset);
  if (rc != GRT_OK || (rc = run(m, &m->gradients, n)) != GRT_OK)
    return rc;
  return fetch_share(m, n, output);
}

/* The update program with the gradient in m->grad; counts the step. */
static int enqueue_update(grt_cuda_model *m) {
  int rc = stage_scalars(m);
  if (rc != GRT_OK || (rc = run(m, &m->update, 1)) != GRT_OK)
    return rc;
  grt_model_set_step(m->host, grt_model_step(m->host) + 1);
  return GRT_OK;
}

int grt_cuda_compute_gradients(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                               int64_t offset, float *grad, float *loss, float *output) {
  if (m && (!grad || !loss))
    return fail(m, GRT_ERR_ARGUMENT, "the gradient or loss pointer is null");
  int rc = enqueue_gradients(m, x, labels, n, offset, output);
  if (rc != GRT_OK)
    return rc;
  CU(API->cuMemcpyDtoHAsync(grad, m->grad, (size_t)m->num_params * 4, m->stream));
  CU(API->cuStreamSynchronize(m->stream));
  *loss = m->loss_out;
  return GRT_OK;
}

int grt_cuda_apply_update(grt_cuda_model *m, const float *grad) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  int rc = need_split(m);
  if (rc != GRT_OK)
    return rc;
  if (!grad)
    return fail(m, GRT_ERR_ARGUMENT, "the gradient pointer is null");
  if ((rc = begin(m)) != GRT_OK)
    return rc;
  CU(API->cuMemcpyHtoDAsync(m->grad, grad, (size_t)m->num_params * 4, m->stream));
  if ((rc = enqueue_update(m)) != GRT_OK)
    return rc;
  /* grad is the caller's pageable memory: the copy must land before return */
  CU(API->cuStreamSynchronize(m->stream));
  return GRT_OK;
}

/* --- the gradient allreduced on the device (NCCL) --------------------------------------- */

#if GRT_HAVE_NCCL
#define NCCL(call)                                                                                 \
  do {                                                                                             \
    ncclResult_t nccl_r_ = (call);                                                                 \
    if (nccl_r_ != ncclSuccess)                                                                    \
      return fail(m, GRT_ERR_DEVICE, "NCCL error in %s: %s", call_text(#call),                     \
                  API->ncclGetErrorString(nccl_r_));                                               \
  } while (0)
#endif

static int need_nccl_table(grt_cuda_model *m) {
#if GRT_HAVE_NCCL
  if (API->ncclGetUniqueId && API->ncclCommInitRank && API->ncclAllReduce)
    return GRT_OK;
  return fail(m, GRT_ERR_ARGUMENT, "the function table has no NCCL");
#else
  return fail(m, GRT_ERR_ARGUMENT, "this runtime was built without nccl.h");
#endif
}

int grt_cuda_nccl_unique_id(grt_cuda_model *m, void *id, int64_t bytes) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  int rc = need_nccl_table(m);
  if (rc != GRT_OK)
    return rc;
#if GRT_HAVE_NCCL
  if (!id || bytes != (int64_t)sizeof(ncclUniqueId))
    return fail(m, GRT_ERR_ARGUMENT, "an NCCL id takes %zu bytes, not %" PRId64,
                sizeof(ncclUniqueId), bytes);
  NCCL(API->ncclGetUniqueId((ncclUniqueId *)id));
#endif
  return GRT_OK;
}

int grt_cuda_nccl_join(grt_cuda_model *m, const void *id, int64_t bytes, int nranks, int rank) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  int rc = need_nccl_table(m);
  if (rc != GRT_OK || (rc = need_split(m)) != GRT_OK)
    return rc;
#if GRT_HAVE_NCCL
  if (m->nccl)
    return fail(m, GRT_ERR_ARGUMENT, "this context joined an NCCL communicator before");
  if (!id || bytes != (int64_t)sizeof(ncclUniqueId))
    return fail(m, GRT_ERR_ARGUMENT, "an NCCL id takes %zu bytes, not %" PRId64,
                sizeof(ncclUniqueId), bytes);
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return fail(m, GRT_ERR_ARGUMENT, "rank %d of %d processes", rank, nranks);
  ncclUniqueId uid;
  memcpy(&uid, id, sizeof uid);
  CU(API->cuCtxSetCurrent(m->ctx));
  const size_t batches = (size_t)m->max_batch + 1;
  m->share_exec = calloc(batches, sizeof(CUgraphExec));
  m->share_state = calloc(batches, 1);
  if (!m->share_exec || !m->share_state)
    return fail(m, GRT_ERR_MEMORY, "out of memory");
  if ((rc = zeroed(m, &m->weight, 4)) != GRT_OK || (rc = zeroed(m, &m->vote, 4)) != GRT_OK)
    return rc;
  ncclComm_t comm = NULL;
  NCCL(API->ncclCommInitRank(&comm, nranks, uid, rank));
  m->nccl = comm;
  m->nranks = nranks;
  int version = 0;
  m->share_captures = API->ncclGetVersion && API->ncclGetVersion(&version) == ncclSuccess &&
                      version >= 20900; /* NCCL_VERSION(2, 9, 0): stream capture */
  /* Each process's gradient times its share's weight, summed: the weight
   * read from the device at each allreduce, so one operator serves every
   * step (and a captured graph). */
  NCCL(API->ncclRedOpCreatePreMulSum(&m->premul, (void *)(uintptr_t)m->weight, ncclFloat32,
                                     ncclScalarDevice, comm));
  m->premul_made = 1;
#else
  (void)id, (void)bytes, (void)nranks, (void)rank;
#endif
  return GRT_OK;
}

#if GRT_HAVE_NCCL
/* The share step's device work, its inputs staged: the gradients program
 * at n (a zero gradient for none), NCCL's weighted sum of every process's
 * gradient, the update program. With `capturing`, the launches alone (the
 * programs' plans made by a direct run before); no call may return early
 * from a stream capture, so NCCL's result is checked here. */
static int enqueue_share(grt_cuda_model *m, int64_t n, int capturing) {
  int rc = GRT_OK;
  if (n > 0)
    rc = capturing ? enqueue(m, &m->gradients, n, &m->gradients.batches[n])
                   : run(m, &m->gradients, n);
  else if (API->cuMemsetD8Async(m->grad, 0, (size_t)m->num_params * 4, m->stream) != CUDA_SUCCESS)
    rc = fail(m, GRT_ERR_DEVICE, "cuMemsetD8Async of the gradient failed");
  if (rc != GRT_OK)
    return rc;
  ncclResult_t r = API->ncclAllReduce((const void *)(uintptr_t)m->grad, (void *)(uintptr_t)m->grad,
                                      (size_t)m->num_params, ncclFloat32, m->premul, m->nccl,
                                      (cudaStream_t)m->stream);
  if (r != ncclSuccess)
    return fail(m, GRT_ERR_DEVICE, "NCCL error in ncclAllReduce: %s", API->ncclGetErrorString(r));
  return capturing ? enqueue(m, &m->update, 1, &m->update.batches[1]) : run(m, &m->update, 1);
}

/* After the first direct share step of global batch `batch`: captures the
 * same work as one CUDA graph, and every process votes on it. Whether an
 * NCCL operation is captured must be the same on every rank, and each
 * rank's graph must come from the same collective capture (NCCL's "Using
 * NCCL with CUDA Graphs"): all processes come here at the same step (the
 * first of that global batch, whatever their shares), and the graph is kept
 * only where every one of them captured; else every one launches that
 * batch size's share directly from now on. */
static int capture_share(grt_cuda_model *m, int64_t n, int64_t batch) {
  CUgraphExec exec = NULL;
  if (graphs_enabled() && m->share_captures &&
      API->cuStreamBeginCapture(m->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) == CUDA_SUCCESS) {
    int captured = enqueue_share(m, n, 1);
    CUgraph graph = NULL;
    CUresult r = API->cuStreamEndCapture(m->stream, &graph);
    if (captured != GRT_OK || r != CUDA_SUCCESS ||
        API->cuGraphInstantiateWithFlags(&exec, graph, 0) != CUDA_SUCCESS)
      exec = NULL;
    if (graph)
      API->cuGraphDestroy(graph);
  }
  m->vote_in = exec ? 1.0f : 0.0f;
  CU(API->cuMemcpyHtoDAsync(m->vote, &m->vote_in, 4, m->stream));
  NCCL(API->ncclAllReduce((const void *)(uintptr_t)m->vote, (void *)(uintptr_t)m->vote, 1,
                          ncclFloat32, ncclSum, m->nccl, (cudaStream_t)m->stream));
  CU(API->cuMemcpyDtoHAsync(&m->vote_out, m->vote, 4, m->stream));
  CU(API->cuStreamSynchronize(m->stream));
  if (exec && m->vote_out == (float)m->nranks) {
    m->share_exec[batch] = exec;
    m->share_state[batch] = 1;
  } else {
    if (exec)
      API->cuGraphExecDestroy(exec);
    m->share_state[batch] = -1;
  }
  return GRT_OK;
}
#endif

int grt_cuda_train_share(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                         int64_t offset, int64_t batch, float weight, float *loss, float *output) {
  if (!m)
    return GRT_ERR_ARGUMENT;
#if GRT_HAVE_NCCL
  if (!m->nccl)
    return fail(m, GRT_ERR_ARGUMENT, "this context has joined no NCCL communicator");
  if (!loss)
    return fail(m, GRT_ERR_ARGUMENT, "the loss pointer is null");
  if (batch < 1 || batch > m->max_batch || n < 0 || n > batch)
    return fail(m, GRT_ERR_ARGUMENT,
                "a share of %" PRId64 " samples of a global batch of %" PRId64
                ": expected a batch of 1 to %" PRId64 " and a share of 0 to the batch",
                n, batch, m->max_batch);
  /* The inputs: batch, step counter, seed and offset, this process's weight
   * (host memory: not in a graph). */
  int rc;
  if (n > 0) {
    rc = stage_share(m, x, labels, n, offset);
  } else { /* a share without samples adds nothing */
    rc = need_split(m);
    if (rc == GRT_OK)
      rc = begin(m);
    if (rc == GRT_OK)
      rc = stage_scalars(m);
  }
  if (rc != GRT_OK)
    return rc;
  m->weight_in = weight;
  CU(API->cuMemcpyHtoDAsync(m->weight, &m->weight_in, 4, m->stream));
  if (m->share_state[batch] == 1) {
    CU(API->cuGraphLaunch(m->share_exec[batch], m->stream));
    ++m->share_replays;
  } else if ((rc = enqueue_share(m, n, 0)) != GRT_OK ||
             (m->share_state[batch] == 0 && (rc = capture_share(m, n, batch)) != GRT_OK)) {
    return rc;
  }
  if (n > 0 && (rc = fetch_share(m, n, output)) != GRT_OK)
    return rc;
  CU(API->cuStreamSynchronize(m->stream));
  grt_model_set_step(m->host, grt_model_step(m->host) + 1);
  *loss = n > 0 ? m->loss_out : 0.0f;
  return GRT_OK;
#else
  (void)x, (void)labels, (void)n, (void)offset, (void)batch, (void)weight, (void)loss, (void)output;
  return need_nccl_table(m);
#endif
}

int64_t grt_cuda_share_replays(const grt_cuda_model *m) { return m ? m->share_replays : 0; }

/* --- the data set on the device ------------------------------------------------------- */

int grt_cuda_upload_dataset(grt_cuda_model *m, const float *x, const int32_t *labels,
                            int64_t count) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  if (!x || !labels || count < 1)
    return fail(m, GRT_ERR_ARGUMENT,
                "uploading a data set needs samples, labels and a count of at least 1");
  int rc = check_labels(m, labels, count);
  if (rc != GRT_OK)
    return rc;
  CU(API->cuCtxSetCurrent(m->ctx));
  CU(API->cuStreamSynchronize(m->stream)); /* no step still reads the old one */
  if (m->data_x)
    API->cuMemFree(m->data_x);
  if (m->data_labels)
    API->cuMemFree(m->data_labels);
  m->data_x = m->data_labels = 0;
  m->data_count = 0;
  const size_t xbytes = (size_t)(count * m->sample) * 4;
  CUresult r = API->cuMemAlloc(&m->data_x, xbytes);
  if (r != CUDA_SUCCESS) {
    m->data_x = 0;
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
      return fail(m, GRT_ERR_DEVICE,
                  "the data set (%" PRId64 " samples, %zu MiB) does not fit on the GPU", count,
                  xbytes >> 20);
    return cu_fail(m, r, "cuMemAlloc");
  }
  CU(API->cuMemAlloc(&m->data_labels, (size_t)count * 4));
  /* On the step's stream and waited for, so the steps' gathers (on that
   * non-blocking stream) read the data, and the caller may free x. */
  CU(API->cuMemcpyHtoDAsync(m->data_x, x, xbytes, m->stream));
  CU(API->cuMemcpyHtoDAsync(m->data_labels, labels, (size_t)count * 4, m->stream));
  CU(API->cuStreamSynchronize(m->stream));
  m->data_count = count;
  return GRT_OK;
}

int grt_cuda_train_step_indices(grt_cuda_model *m, const int64_t *indices, int64_t n, float *loss,
                                float *output) {
  if (!m)
    return GRT_ERR_ARGUMENT;
  if (m->data_count == 0)
    return fail(m, GRT_ERR_ARGUMENT, "no data set on the device: upload one first");
  int rc = start(m, (uint64_t)(uintptr_t)indices, n, 1, "");
  if (rc != GRT_OK)
    return rc;
  if ((rc = need_step(m)) != GRT_OK)
    return rc;
  for (int64_t i = 0; i < n; ++i)
    if (indices[i] < 0 || indices[i] >= m->data_count)
      return fail(m, GRT_ERR_ARGUMENT,
                  "index %" PRId64 " of batch position %" PRId64
                  " is outside the data set of %" PRId64 " samples",
                  indices[i], i, m->data_count);
  /* Pageable memory, copied on the stream and waited for by the step's
   * own wait at its end. */
  CU(API->cuMemcpyHtoDAsync(m->indices, indices, (size_t)n * 8, m->stream));
  CUdeviceptr xs = m->data_x, ls = m->data_labels, idx = m->indices, x = m->x, lab = m->labels;
  int64_t rows = n, sample = m->sample;
  void *args[] = {&xs, &ls, &idx, &x, &lab, &rows, &sample};
  if ((rc = launch(m, m->gather, blocks_for(m, n * m->sample, 256), 256, args)) != GRT_OK)
    return rc;
  return finish_step(m, n, loss, output);
}

/* --- a step kernel by kernel, and its values ------------------------------------------ */

int64_t grt_cuda_step_kernel_count(const grt_cuda_model *m) { return m ? m->step.num_kernels : 0; }

int grt_cuda_train_step_kernels(grt_cuda_model *m, const float *x, const int32_t *labels, int64_t n,
                                int64_t first, int64_t last) {
  int rc = start(m, (uint64_t)(uintptr_t)x, n, labels != NULL, "the labels pointer is null");
  if (rc == GRT_OK)
    rc = need_step(m);
  if (rc != GRT_OK)
    return rc;
  if (first < 0 || first > last || last > m->step.num_kernels)
    return fail(m, GRT_ERR_ARGUMENT, "kernels [%" PRId64 ", %" PRId64 ") of %" PRId64, first, last,
                m->step.num_kernels);
  if (first == 0 &&
      ((rc = stage_batch(m, (uint64_t)(uintptr_t)x, (uint64_t)(uintptr_t)labels, n, 0)) != GRT_OK ||
       (rc = stage_scalars(m)) != GRT_OK))
    return rc;
  batch_t *b = NULL;
  if ((rc = plan_batch(m, &m->step, n, &b)) != GRT_OK ||
      (rc = enqueue_range(m, &m->step, n, b, first, last)) != GRT_OK)
    return rc;
  CU(API->cuStreamSynchronize(m->stream));
  return GRT_OK;
}

int grt_cuda_read_step_value(grt_cuda_model *m, int64_t v, float *out, int64_t count) {
  if (!m || v < 0 || v >= m->step.num_values || !m->step.at[v])
    return m ? fail(m, GRT_ERR_ARGUMENT, "value %" PRId64 " has no memory of its own", v)
             : GRT_ERR_ARGUMENT;
  CU(API->cuCtxSetCurrent(m->ctx));
  CU(API->cuMemcpyDtoHAsync(out, m->step.at[v], (size_t)count * 4, m->stream));
  CU(API->cuStreamSynchronize(m->stream));
  return GRT_OK;
}

/* --- one program on buffers of its own (tests) ---------------------------------------- */

typedef struct {
  int64_t num_io;
  const char *const *names;
  CUdeviceptr *at;
} run_io;

static CUdeviceptr named_io(grt_cuda_model *m, const char *name, int output, void *ctx) {
  (void)m;
  const run_io *io = ctx;
  if (!name)
    return 0;
  for (int64_t i = 0; i < io->num_io; ++i) {
    const char *have = io->names[i];
    int out = !strncmp(have, GRAPHC_IO_OUT, sizeof GRAPHC_IO_OUT - 1);
    if (out == output && !strcmp(have + (out ? sizeof GRAPHC_IO_OUT - 1 : 0), name))
      return io->at[i];
  }
  return 0;
}

static int run_program_in(grt_cuda_model *m, int64_t n, const run_io *io, void *const *host,
                          const int64_t *bytes) {
  int rc = decode(m, &m->step, m->d->step, m->d->step_words, "test");
  if (rc != GRT_OK)
    return rc;
  m->max_batch = n; /* the batches table's size */
  for (int64_t i = 0; i < io->num_io; ++i) {
    if (!host[i] || bytes[i] < 0)
      return fail(m, GRT_ERR_ARGUMENT, "no host buffer for %s", io->names[i]);
    if ((rc = zeroed(m, &io->at[i], (size_t)bytes[i])) != GRT_OK)
      return rc;
    if (strncmp(io->names[i], GRAPHC_IO_OUT, sizeof GRAPHC_IO_OUT - 1) && bytes[i] > 0)
      CU(API->cuMemcpyHtoDAsync(io->at[i], host[i], (size_t)bytes[i], m->stream));
  }
  if ((rc = prepare_program(m, &m->step, named_io, (void *)io)) != GRT_OK)
    return rc;
  /* Twice: launched directly, then replayed from the captured graph; both
   * must give the same bits. */
  for (int round = 0; round < 2; ++round) {
    if ((rc = run(m, &m->step, n)) != GRT_OK)
      return rc;
    CU(API->cuStreamSynchronize(m->stream));
    for (int64_t i = 0; i < io->num_io; ++i) {
      if (strncmp(io->names[i], GRAPHC_IO_OUT, sizeof GRAPHC_IO_OUT - 1) || bytes[i] == 0)
        continue;
      if (round == 0) {
        CU(API->cuMemcpyDtoH(host[i], io->at[i], (size_t)bytes[i]));
        continue;
      }
      unsigned char *again = malloc((size_t)bytes[i]);
      if (!again)
        return fail(m, GRT_ERR_MEMORY, "out of memory");
      CUresult r = API->cuMemcpyDtoH(again, io->at[i], (size_t)bytes[i]);
      int same = r == CUDA_SUCCESS && !memcmp(again, host[i], (size_t)bytes[i]);
      free(again);
      if (r != CUDA_SUCCESS)
        return cu_fail(m, r, "cuMemcpyDtoH");
      if (!same)
        return fail(m, GRT_ERR_DEVICE,
                    "output %s differs between the direct launch and the CUDA graph replay",
                    io->names[i]);
    }
  }
  return GRT_OK;
}

int grt_cuda_run_program(const grt_cuda_desc *d, int64_t n, int64_t num_io,
                         const char *const *names, void *const *host, const int64_t *bytes,
                         char *error, int64_t error_size) {
  grt_cuda_model *m = NULL;
  CUdeviceptr *at = calloc((size_t)num_io + 1, sizeof(CUdeviceptr));
  int rc = at ? open_bare(d, &m) : GRT_ERR_MEMORY;
  run_io io = {num_io, names, at};
  if (rc == GRT_OK)
    rc = run_program_in(m, n, &io, host, bytes);
  if (error && error_size > 0)
    snprintf(error, (size_t)error_size, "%s",
             rc == GRT_OK ? ""
             : m          ? m->error
             : at         ? create_error
                          : "out of memory");
  if (m && m->ctx)
    for (int64_t i = 0; i < num_io; ++i)
      if (at[i])
        API->cuMemFree(at[i]);
  free(at);
  grt_cuda_destroy(m);
  return rc;
}
