// codegen/cuda/Nvrtc.h - CUDA C to PTX with NVRTC, no GPU needed.
#pragma once

#include "ir/Error.h"

#include <string>

namespace graphc::codegen::cuda {

/// PTX for `arch` (e.g. "sm_90") of one kernel group's source; a failure
/// carries NVRTC's program log.
Expected<std::string> compileToPtx(const std::string &source, const std::string &name,
                                   const std::string &arch);

/// NVRTC's version, e.g. "13.0".
std::string nvrtcVersion();

} // namespace graphc::codegen::cuda
