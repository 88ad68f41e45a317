/* tests/gpu/aot_compare.c - the cuda target's ahead-of-time library against
 * the cpu target's, linked into one program (built and run by
 * tests/gpu/aot_check.sh on a GPU machine).
 *
 * Both start from the same initial weights (they must agree bit for bit).
 * Each step runs on both from the same state, compares the loss and the
 * updated parameters (relative error at most 1e-4), then carries the cpu
 * context's weights, optimizer state and step counter over to the gpu one
 * through a checkpoint, so every step is compared from equal states. Batch
 * sizes vary (the captured graph of each size is replayed). Then the split
 * step from equal states (compute_gradients: the gradients compared;
 * apply_update of the cpu's gradient on both: the parameters), predict,
 * predict_device and train_step_device are checked the same way.
 *
 *   ./aot_compare [steps]   prints AOT_COMPARE ... and exits 0 when all held
 */
#include "mlpc.h"
#include "mlpg.h"

/* The driver through the cuda library's own table (graphc_cuda_api.h): the
 * linked libcuda on a GPU machine, the emulated device in CI. */
#include "graphc_cuda_api.h"
#define DRV grt_cuda_linked
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned state = 7u;
static float uniform(void) {
  state = state * 1664525u + 1013904223u;
  return (float)(state >> 8) / 16777216.0f;
}

/* max |a - b| / max(max |a|, tiny) */
static double rel(const float *a, const float *b, int64_t n) {
  double d = 0, s = 1e-30;
  for (int64_t i = 0; i < n; ++i) {
    double e = fabs((double)a[i] - b[i]);
    if (e > d)
      d = e;
    if (fabs(a[i]) > s)
      s = fabs(a[i]);
  }
  return d / s;
}

#define CHECK_RC(call, err)                                                                        \
  do {                                                                                             \
    if ((call) != 0) {                                                                             \
      printf("AOT_COMPARE FAIL %s: %s\n", #call, err);                                             \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 12;
  const int64_t d = mlpc_sample_size(), classes = mlpc_classes(), np = mlpc_num_params();
  const int64_t sizes[] = {256, 1, 97, 256, 33};
  mlpc_ctx *c;
  mlpg_ctx *g;
  CHECK_RC(mlpc_create(&c, NULL, 0), mlpc_error(NULL));
  CHECK_RC(mlpg_create(&g, NULL, 0), mlpg_error(NULL));
  float *x = malloc(sizeof(float) * (size_t)(256 * d));
  float *oc = malloc(sizeof(float) * (size_t)(256 * classes));
  float *og = malloc(sizeof(float) * (size_t)(256 * classes));
  int32_t labels[256];
  const char *ckpt = "aot_compare.safetensors";
  double worst_loss = 0, worst_params = 0, worst_out = 0, worst_grad = 0;
  int bad = memcmp(mlpc_params(c), mlpg_params(g), sizeof(float) * (size_t)np) != 0;
  if (bad)
    printf("the initial weights differ\n");

  for (int s = 0; s < steps; ++s) {
    int64_t n = sizes[s % 5];
    for (int64_t i = 0; i < n * d; ++i)
      x[i] = 255.0f * uniform();
    for (int64_t i = 0; i < n; ++i)
      labels[i] = (int32_t)(uniform() * (float)classes) % (int32_t)classes;
    float lc, lg;
    CHECK_RC(mlpc_train_step(c, x, labels, n, &lc), mlpc_error(c));
    CHECK_RC(mlpg_train_step(g, x, labels, n, &lg), mlpg_error(g));
    double el = fabs((double)lc - lg) / fmax(fabs(lc), 1e-6);
    double ep = rel(mlpc_params(c), mlpg_params(g), np);
    printf("step %2d  batch %3lld  loss cpu %.6g gpu %.6g (rel %.2e)  params rel %.2e\n", s,
           (long long)n, lc, lg, el, ep);
    worst_loss = fmax(worst_loss, el);
    worst_params = fmax(worst_params, ep);
    /* the next step from equal states */
    CHECK_RC(mlpc_save(c, ckpt), mlpc_error(c));
    CHECK_RC(mlpg_load(g, ckpt), mlpg_error(g));
    if (mlpg_step(g) != mlpc_step(c)) {
      printf("step counters differ: %lld vs %lld\n", (long long)mlpg_step(g),
             (long long)mlpc_step(c));
      bad = 1;
    }
  }

  /* the split step: a share of 97 samples at offset 5 of its batch */
  float *gc = malloc(sizeof(float) * (size_t)np), *gg = malloc(sizeof(float) * (size_t)np);
  for (int64_t i = 0; i < 97 * d; ++i)
    x[i] = 255.0f * uniform();
  for (int64_t i = 0; i < 97; ++i)
    labels[i] = (int32_t)(uniform() * (float)classes) % (int32_t)classes;
  float sc, sg;
  CHECK_RC(mlpc_compute_gradients(c, x, labels, 97, 5, gc, &sc), mlpc_error(c));
  CHECK_RC(mlpg_compute_gradients(g, x, labels, 97, 5, gg, &sg), mlpg_error(g));
  worst_loss = fmax(worst_loss, fabs((double)sc - sg) / fmax(fabs(sc), 1e-6));
  worst_grad = rel(gg, gc, np);
  CHECK_RC(mlpc_apply_update(c, gc), mlpc_error(c));
  CHECK_RC(mlpg_apply_update(g, gc), mlpg_error(g));
  worst_params = fmax(worst_params, rel(mlpc_params(c), mlpg_params(g), np));
  if (mlpg_step(g) != mlpc_step(c)) {
    printf("apply_update: step counters differ\n");
    bad = 1;
  }
  free(gc);
  free(gg);

  /* predict, host and device pointers */
  const int64_t n = 77;
  CHECK_RC(mlpc_predict(c, x, n, oc), mlpc_error(c));
  CHECK_RC(mlpg_predict(g, x, n, og), mlpg_error(g));
  worst_out = rel(oc, og, n * classes);
  CUdeviceptr dx, dout, dlabels;
  if (DRV.cuMemAlloc(&dx, sizeof(float) * (size_t)(n * d)) != CUDA_SUCCESS ||
      DRV.cuMemAlloc(&dout, sizeof(float) * (size_t)(n * classes)) != CUDA_SUCCESS ||
      DRV.cuMemAlloc(&dlabels, sizeof(int32_t) * (size_t)n) != CUDA_SUCCESS ||
      DRV.cuMemcpyHtoD(dx, x, sizeof(float) * (size_t)(n * d)) != CUDA_SUCCESS ||
      DRV.cuMemcpyHtoD(dlabels, labels, sizeof(int32_t) * (size_t)n) != CUDA_SUCCESS) {
    printf("AOT_COMPARE FAIL: device buffers\n");
    return 1;
  }
  memset(og, 0, sizeof(float) * (size_t)(n * classes));
  CHECK_RC(mlpg_predict_device(g, dx, n, dout), mlpg_error(g));
  DRV.cuMemcpyDtoH(og, dout, sizeof(float) * (size_t)(n * classes));
  worst_out = fmax(worst_out, rel(oc, og, n * classes));
  for (int64_t i = 0; i < n; ++i)
    labels[i] = (int32_t)(i % classes);
  DRV.cuMemcpyHtoD(dlabels, labels, sizeof(int32_t) * (size_t)n);
  float lc, lg;
  CHECK_RC(mlpc_train_step(c, x, labels, n, &lc), mlpc_error(c));
  CHECK_RC(mlpg_train_step_device(g, dx, dlabels, n, &lg), mlpg_error(g));
  worst_loss = fmax(worst_loss, fabs((double)lc - lg) / fmax(fabs(lc), 1e-6));
  worst_params = fmax(worst_params, rel(mlpc_params(c), mlpg_params(g), np));
  /* a bad label through the device path is refused */
  labels[3] = (int32_t)classes;
  DRV.cuMemcpyHtoD(dlabels, labels, sizeof(int32_t) * (size_t)n);
  if (mlpg_train_step_device(g, dx, dlabels, n, &lg) != MLPG_ERR_ARGUMENT) {
    printf("a label out of range was not refused\n");
    bad = 1;
  }
  if (mlpg_train_step(g, x, labels, 257, &lg) != MLPG_ERR_ARGUMENT) {
    printf("a batch of 257 was not refused\n");
    bad = 1;
  }

  bad |= worst_loss > 1e-4 || worst_params > 1e-4 || worst_out > 1e-4 || worst_grad > 1e-4;
  printf("AOT_COMPARE %s steps=%d loss_rel=%.2e params_rel=%.2e predict_rel=%.2e "
         "grad_rel=%.2e\n",
         bad ? "FAIL" : "PASS", steps, worst_loss, worst_params, worst_out, worst_grad);
  mlpg_destroy(g);
  mlpc_destroy(c);
  remove(ckpt);
  return bad;
}
