/* examples/embed/c/main.c - trains graphc's compiled seed MLP from plain C.
 *
 * Build with the Makefile beside this file (`make`, or `make TARGET=cuda` for
 * the GPU); it runs
 *   graphc compile examples/mlp.model --input 1x32x32 --target cpu --emit lib -o out-cpu/mlp
 * and links out-cpu/libmlp.a with libc, libm and pthreads only (the cuda
 * library also with the CUDA driver and cuBLASLt). The program is the same.
 *
 *   ./train [steps]    trains on a synthetic 10-class set, prints the loss falling
 */
#include "mlp.h"

#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 64, CLASSES = 10 };

/* A synthetic set: each class is a fixed random 32x32 image, and a sample is
 * its class's image plus noise, in the seed's raw 0..255 range. */
static unsigned state = 12345;
static float uniform(void) {
  state = state * 1664525u + 1013904223u;
  return (float)(state >> 8) / 16777216.0f;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 300;
  int64_t d = mlp_sample_size();
  float *prototypes = malloc(sizeof(float) * (size_t)(CLASSES * d));
  float *x = malloc(sizeof(float) * (size_t)(BATCH * d));
  int32_t labels[BATCH];
  for (int64_t i = 0; i < CLASSES * d; ++i)
    prototypes[i] = 255.0f * uniform();

  mlp_ctx *ctx;
  if (mlp_create(&ctx, NULL, 0) != MLP_OK) {
    fprintf(stderr, "mlp_create: %s\n", mlp_error(NULL));
    return 1;
  }
  printf("model: %lld parameters, optimizer %s\n", (long long)mlp_num_params(), mlp_optimizer());
  double first = 0, last = 0, sum = 0;
  int window = 0;
  for (int s = 1; s <= steps; ++s) {
    for (int b = 0; b < BATCH; ++b) {
      labels[b] = (int32_t)(uniform() * CLASSES) % CLASSES;
      for (int64_t i = 0; i < d; ++i)
        x[b * d + i] = prototypes[labels[b] * d + i] + 400.0f * (uniform() - 0.5f);
    }
    float loss;
    if (mlp_train_step(ctx, x, labels, BATCH, &loss) != MLP_OK) {
      fprintf(stderr, "mlp_train_step: %s\n", mlp_error(ctx));
      return 1;
    }
    sum += loss;
    ++window;
    if (s % 25 == 0 || s == steps) {
      double mean = sum / window;
      printf("step %4d  loss %.4f\n", s, mean);
      if (first == 0)
        first = mean;
      last = mean;
      sum = 0;
      window = 0;
    }
  }
  if (mlp_save(ctx, "trained.safetensors") != MLP_OK) {
    fprintf(stderr, "mlp_save: %s\n", mlp_error(ctx));
    return 1;
  }
  mlp_destroy(ctx);
  free(prototypes);
  free(x);
  printf("loss fell from %.4f to %.4f\n", first, last);
  return last < first ? 0 : 1;
}
