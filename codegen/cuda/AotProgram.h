// codegen/cuda/AotProgram.h - the GPU programs of a model as tables for the
// cuda runtime (runtime/rt/graphc_cuda_model.h), which both an `--emit lib`
// archive and `graphc train --target cuda` run.
//
// Every decision about binding and launching a fused graph is taken here
// and written down: where every value lives (arena, a caller's buffer, a
// view of either), which kernel, cuBLASLt product or cuDNN convolution runs
// for each group and
// on what sizes, which copies a gradient pack and the outputs need. Kernels
// are compiled by NVRTC (in parallel) to PTX for `arch`; the driver
// JIT-compiles that PTX for the device at run time.
#pragma once

#include "codegen/DeviceImage.h"
#include "ir/Error.h"
#include "ir/Graph.h"
#include "ir/MemoryPlan.h"

#include <cstdint>
#include <optional>

namespace graphc::codegen::cuda {

/// Where one value of a fused graph lives on the device.
struct ValueHome {
  enum Kind { None, Arena, Io } kind = None;
  std::string io;      ///< Io: the buffer's name (a graph input's, or an output's)
  bool output = false; ///< Io: the buffer of an output ("out:NAME")
  int64_t offset = 0;  ///< bytes into the arena or the buffer
};

/// Every value's home (graph inputs and outputs are the caller's buffers,
/// other values live in the arena the memory plan laid out, views sit at
/// their offset in the buffer they view), and the outputs whose value lives
/// elsewhere and is copied to the output's buffer after the run (unless it
/// is that buffer).
struct DeviceBinding {
  std::vector<ValueHome> at;
  std::vector<std::pair<ir::ValueId, std::string>> outputCopies; ///< (value, output name)
};
DeviceBinding bindValues(const ir::Graph &g, const ir::MemoryPlan &plan);

/// The parts of flat_pack `pack` not computed in place: (part, byte offset
/// in the pack), copied (or, for a constant, filled) by a HostCopy launch.
std::vector<std::pair<ir::ValueId, int64_t>>
packCopies(const ir::Graph &g, const ir::MemoryPlan &plan, ir::ValueId pack);
/// A constant part of a pack has no memory: the 32 bits its place is
/// filled with; nullopt for any other part (copied, or computed in place).
std::optional<uint32_t> packFill(const ir::Graph &g, ir::ValueId part);

/// A convolution's geometry as a GCU_CONV record holds it (and cuDNN's
/// descriptors take it): always the forward convolution's x [n, c, h, w],
/// w [o, c, kh, kw], y [n, o, oh, ow], whichever of y, dx, dw `mode`
/// (GCU_CONV_*) computes; n is -1 for the batch.
struct ConvGeometry {
  int64_t mode = 0, n = 0, c = 0, h = 0, w = 0, o = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0,
          pw = 0, oh = 0, ow = 0;
};
ConvGeometry convGeometry(const ir::Graph &g, ir::ValueId conv);

/// The step split in two for data parallelism (the gradients and update
/// programs of passes/Optimizer.h), encoded beside the step when given.
struct SplitStep {
  const ir::Graph &gradients;
  const ir::MemoryPlan &gradientsPlan;
  const ir::Graph &update;
  const ir::MemoryPlan &updatePlan;
};

Expected<DeviceImage> encodeDevicePrograms(const ir::Graph &step, const ir::MemoryPlan &stepPlan,
                                           const ir::Graph &predict,
                                           const ir::MemoryPlan &predictPlan,
                                           const std::string &arch,
                                           const SplitStep *split = nullptr);
/// One graph as the image's step table (its predict table left empty), for
/// the tests' single-graph runs (grt_cuda_run_program).
Expected<DeviceImage> encodeDeviceProgram(const ir::Graph &g, const ir::MemoryPlan &plan,
                                          const std::string &arch, const std::string &prefix);

} // namespace graphc::codegen::cuda
