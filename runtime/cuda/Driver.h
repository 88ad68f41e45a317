// runtime/cuda/Driver.h - the CUDA driver API, loaded when first needed.
//
// graphc must start, build and run its CPU target on machines without an
// NVIDIA driver (DESIGN.md decision 8), so it never links libcuda: the
// first use of the cuda target opens libcuda.so.1 with dlopen, initialises
// it, and looks every entry point up with cuGetProcAddress for the CUDA
// version graphc was built with. <cuda.h> gives the types and signatures
// only. A missing driver, the toolkit's stub library, or a machine without
// a GPU become one clear error line, never a crash.
#pragma once

#include "ir/Error.h"
#include "runtime/rt/graphc_cuda_api.h"

#include <cstdlib>
#include <string>

namespace graphc::runtime::cuda {

/// The driver's entry points (graphc_cuda_api.h's GRT_CUDA_DRIVER_FUNCTIONS),
/// resolved for CUDA_VERSION, cuBLASLt's (runtime/cuda/CublasLtLoader.cpp,
/// itself loaded on first use) and cuDNN's (opened with the driver; null
/// where it is missing): the table the C runtime's contexts call.
struct Driver : grt_cuda_api {
  Driver() : grt_cuda_api{} {}
  int version = 0;       ///< cuDriverGetVersion, e.g. 13000
  bool emulated = false; ///< GRAPHC_CUDA_DEVICE=emulate (runtime/cuda/Emulator.h)
  /// "cuDNN" when its members are filled, else why not ("no cuDNN (...)").
  std::string cudnnNote;

  /// "CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
  std::string describe(CUresult r) const;
  /// The error of a failed call: "CUDA error in WHAT: ...".
  Diag fail(CUresult r, const std::string &what) const;
};

/// True when GRAPHC_NO_CUDNN is set (and not "0"): the cuda target then
/// behaves as where cuDNN is missing, and runs its generated convolution
/// kernels. Asked when a context starts cuDNN, so a test may switch it.
inline bool cudnnRefused() {
  const char *e = std::getenv("GRAPHC_NO_CUDNN");
  return e && *e && std::string(e) != "0";
}

/// cuDNN's entry points alone, from the real library and without a CUDA
/// driver (every other member null; cudnnNote says why cuDNN's are null
/// where the library cannot be opened): for tests that check graphc's
/// cuDNN descriptors against cuDNN itself on machines without a GPU.
const Driver &cudnnLibrary();

/// True when GRAPHC_NO_NCCL is set (and not "0"): data-parallel training
/// on the cuda target then stages the gradient through the host, as where
/// NCCL is missing. Asked at each data-parallel start.
inline bool ncclRefused() {
  const char *e = std::getenv("GRAPHC_NO_NCCL");
  return e && *e && std::string(e) != "0";
}

/// "" when `d`'s NCCL members are there to use (libnccl.so.2, opened on
/// the first call; the emulated device's own), else why not: "no NCCL
/// (...)", "NCCL turned off (GRAPHC_NO_NCCL)".
std::string ncclMissing(const Driver &d);
/// "NCCL 2.28.9" (ncclGetVersion's), once ncclMissing said "".
std::string ncclName(const Driver &d);

/// The loaded and initialised driver, or why there is none (the same
/// answer every time). With GRAPHC_CUDA_DEVICE=emulate, the emulated
/// device's table (runtime/cuda/Emulator.h) instead.
Expected<const Driver *> driver();

/// The driver if it was loaded successfully before, else null. For
/// destructors, which must not load it.
const Driver *loadedDriver();

/// Device `ordinal` (CUDA_VISIBLE_DEVICES chooses which GPUs there are).
struct DeviceFacts {
  std::string name;
  std::string arch; ///< NVRTC's architecture, e.g. "sm_90"; "host" when emulated
  int multiprocessors = 0;
};
Expected<DeviceFacts> deviceFacts(const Driver &d, int ordinal = 0);

} // namespace graphc::runtime::cuda

/// Returns the driver's error (as a Diag, for Status or Expected) when a
/// call fails. `drv` is a `const Driver &`.
#define GRAPHC_CU(drv, call)                                                                       \
  do {                                                                                             \
    if (CUresult graphc_cu_r = (call); graphc_cu_r != CUDA_SUCCESS)                                \
      return (drv).fail(graphc_cu_r, #call);                                                       \
  } while (0)
