// codegen/cuda/Nvrtc.h - CUDA C to PTX with NVRTC, no GPU needed.
#pragma once

#include "ir/Error.h"

#include <string>

namespace graphc::codegen::cuda {

/// PTX for `arch` (e.g. "sm_90") of one kernel group's source; a failure
/// carries NVRTC's program log.
Expected<std::string> compileToPtx(const std::string &source, const std::string &name,
                                   const std::string &arch);

/// Whether the toolkit's ptxas (found at build time) is there to assemble
/// PTX without a GPU.
bool havePtxas();

/// Assembles `ptx` (module `name`) with ptxas for `arch`, as the driver
/// would on the device; an error carries ptxas's output.
Status assemblePtx(const std::string &ptx, const std::string &name, const std::string &arch);

/// NVRTC's version, e.g. "13.0".
std::string nvrtcVersion();

} // namespace graphc::codegen::cuda
