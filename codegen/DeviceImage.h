// codegen/DeviceImage.h - a model's GPU programs as data, for the archive
// that `graphc compile --target cuda --emit lib` writes.
//
// codegen/cuda/AotProgram.cpp fills it (PTX from NVRTC and the launch
// tables of runtime/rt/graphc_cuda_model.h); codegen/cpu/Aot.cpp puts it
// into the library's object file as constants. Plain data: neither side
// needs the other's headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace graphc::codegen {

struct DeviceImage {
  std::vector<int64_t> step, predict; ///< the two programs' tables
  /// The step split in two (data parallelism), empty unless compiled: the
  /// gradients and update programs' tables (<name>_compute_gradients and
  /// <name>_apply_update in a library).
  std::vector<int64_t> gradients, update;
  std::vector<std::string> strings; ///< PTX modules and names the tables index
  std::string helpersPtx;           ///< graphc_bias_add and friends
  std::string arch;                 ///< e.g. "sm_90"
  bool tf32 = false;                ///< cuBLASLt may multiply in TF32 (--tf32)
};

} // namespace graphc::codegen
