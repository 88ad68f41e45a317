/* examples/embed/mpi/main.c - trains graphc's compiled seed MLP data-parallel
 * with MPI, from plain C: the library's step in two halves with the
 * program's own allreduce between them.
 *
 * Every process draws the same global batch, takes its contiguous share,
 * computes its gradient (mlp_compute_gradients, with the share's offset in
 * the batch so that Dropout's masks do not depend on the process count),
 * weights it by its share of the batch, and one MPI_Allreduce sums the
 * gradients; every process then makes the same update (mlp_apply_update).
 * At the end the processes compare their parameters.
 *
 *   make && mpirun -np 2 ./train [steps]
 */
#include "mlp.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 64, CLASSES = 10 };

/* The synthetic set of examples/embed/c: each class a fixed random image,
 * a sample its class's image plus noise. Every process draws the same. */
static unsigned state = 12345;
static float uniform(void) {
  state = state * 1664525u + 1013904223u;
  return (float)(state >> 8) / 16777216.0f;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int steps = argc > 1 ? atoi(argv[1]) : 300;
  int64_t d = mlp_sample_size(), np = mlp_num_params();
  float *prototypes = malloc(sizeof(float) * (size_t)(CLASSES * d));
  float *x = malloc(sizeof(float) * (size_t)(BATCH * d));
  float *grad = malloc(sizeof(float) * (size_t)(np + 1)); /* the gradient, then the loss */
  int32_t labels[BATCH];
  for (int64_t i = 0; i < CLASSES * d; ++i)
    prototypes[i] = 255.0f * uniform();

  /* This process's share of each batch: as equal as possible. */
  int64_t count = BATCH / size + (rank < BATCH % size),
          begin = rank * (BATCH / size) + (rank < BATCH % size ? rank : BATCH % size);

  mlp_ctx *ctx;
  if (mlp_create(&ctx, NULL, 1) != MLP_OK) {
    fprintf(stderr, "mlp_create: %s\n", mlp_error(NULL));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank == 0)
    printf("model: %lld parameters, %d processes, %lld samples each\n", (long long)np, size,
           (long long)count);
  double first = 0, last = 0, sum = 0;
  int window = 0;
  for (int s = 1; s <= steps; ++s) {
    for (int b = 0; b < BATCH; ++b) {
      labels[b] = (int32_t)(uniform() * CLASSES) % CLASSES;
      for (int64_t i = 0; i < d; ++i)
        x[b * d + i] = prototypes[labels[b] * d + i] + 400.0f * (uniform() - 0.5f);
    }
    float loss = 0;
    if (mlp_compute_gradients(ctx, x + begin * d, labels + begin, count, begin, grad, &loss) !=
        MLP_OK) {
      fprintf(stderr, "process %d: mlp_compute_gradients: %s\n", rank, mlp_error(ctx));
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    float w = (float)count / BATCH; /* summed, the weighted means are the batch's mean */
    for (int64_t i = 0; i < np; ++i)
      grad[i] *= w;
    grad[np] = loss * w;
    MPI_Allreduce(MPI_IN_PLACE, grad, (int)(np + 1), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (mlp_apply_update(ctx, grad) != MLP_OK) {
      fprintf(stderr, "process %d: mlp_apply_update: %s\n", rank, mlp_error(ctx));
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    sum += grad[np];
    ++window;
    if (s % 25 == 0 || s == steps) {
      double mean = sum / window;
      if (rank == 0)
        printf("step %4d  loss %.4f\n", s, mean);
      if (first == 0)
        first = mean;
      last = mean;
      sum = 0;
      window = 0;
    }
  }
  /* Every process made the same updates: the parameters must agree. */
  const float *p = mlp_params(ctx);
  unsigned long long h = 1469598103934665603ULL, hv[2];
  for (int64_t i = 0; i < np; ++i) {
    unsigned u;
    memcpy(&u, &p[i], sizeof u);
    h = (h ^ u) * 1099511628211ULL;
  }
  hv[0] = h;
  hv[1] = ~h;
  MPI_Allreduce(MPI_IN_PLACE, hv, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  int same = hv[0] == h && ~hv[1] == h;
  if (rank == 0)
    printf("loss fell from %.4f to %.4f; parameters %s on every process\n", first, last,
           same ? "identical" : "DIFFERENT");
  mlp_destroy(ctx);
  free(prototypes);
  free(x);
  free(grad);
  MPI_Finalize();
  return same && last < first ? 0 : 1;
}
