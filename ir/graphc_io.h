/* ir/graphc_io.h - the executable contract, written once: the names of a
 * compiled training step's inputs and outputs, and where the cuda target
 * keeps its scalars on the device.
 *
 * The tracer and the optimizer pass name the graph's inputs and outputs with
 * these; every executor (the interpreter, the cpu and cuda targets) and the C
 * runtimes that `--emit lib` ships bind buffers to them. This header is C
 * (runtime/rt/ includes it) and C++.
 *
 *   inputs   x f32[n, sample], labels i32[n], params f32[P], step f32[]
 *            (updates done so far), seed i32[] (Dropout's, per step),
 *            state.SLOT f32[P] (the optimizer's, per slot)
 *   outputs  loss f32[], output f32[n, classes], params, step, state.SLOT
 *
 * A binding names an output's buffer with the "out:" prefix ("out:params"),
 * since params, step and state are both read and written.
 *
 * The traced forward graph of a model with BatchNorm also returns
 * buffer.NAME, the new value of the non-trainable tensor NAME (a running
 * mean or variance); the optimizer pass writes them into the updated
 * params, so no compiled step has them.
 */
#ifndef GRAPHC_IR_IO_H
#define GRAPHC_IR_IO_H

#define GRAPHC_IO_X "x"
#define GRAPHC_IO_LABELS "labels"
#define GRAPHC_IO_PARAMS "params"
#define GRAPHC_IO_STEP "step"
#define GRAPHC_IO_SEED "seed"
#define GRAPHC_IO_LOSS "loss"
#define GRAPHC_IO_OUTPUT "output"
#define GRAPHC_IO_STATE "state." /* + the slot's name */
#define GRAPHC_IO_OUT "out:"     /* + an output's name, in a binding */
#define GRAPHC_IO_BUFFER "buffer." /* + a buffer tensor's name: its new value */
/* The step split in two for data parallelism (passes/Optimizer.h): the
 * gradients program reads `offset` i32[] (the samples of the global batch
 * before this process's share; Dropout's masks are drawn per global sample)
 * and writes `grad` f32[P]; the update program reads `grad`. */
#define GRAPHC_IO_GRAD "grad"
#define GRAPHC_IO_OFFSET "offset"

/* The cuda target's scalars, in one device buffer of GRAPHC_SCALAR_BYTES:
 * the byte offsets of the step counter, seed and sample offset going in
 * (uploaded together, GRAPHC_SCALAR_IN_BYTES), the loss and the step
 * counter coming out. Each in its own 256-byte line. */
enum {
  GRAPHC_SCALAR_STEP_IN = 0,
  GRAPHC_SCALAR_SEED_IN = 4,
  GRAPHC_SCALAR_OFFSET_IN = 8,
  GRAPHC_SCALAR_IN_BYTES = 12,
  GRAPHC_SCALAR_LOSS = 256,
  GRAPHC_SCALAR_STEP_OUT = 512,
  GRAPHC_SCALAR_BYTES = 1024
};

#endif
