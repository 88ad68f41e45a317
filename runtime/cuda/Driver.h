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

#include <cuda.h>

#include <string>

namespace graphc::runtime::cuda {

// Every driver entry point graphc calls. Names are cuda.h's (some are
// macros for versioned symbols, e.g. cuMemAlloc -> cuMemAlloc_v2: the
// member takes the versioned name, the lookup asks for the base name).
#define GRAPHC_CUDA_DRIVER_FUNCTIONS(X)                                                            \
  X(cuGetErrorString)                                                                              \
  X(cuGetErrorName)                                                                                \
  X(cuInit)                                                                                        \
  X(cuDriverGetVersion)                                                                            \
  X(cuDeviceGetCount)                                                                              \
  X(cuDeviceGet)                                                                                   \
  X(cuDeviceGetName)                                                                               \
  X(cuDeviceGetAttribute)                                                                          \
  X(cuDevicePrimaryCtxRetain)                                                                      \
  X(cuDevicePrimaryCtxRelease)                                                                     \
  X(cuCtxSetCurrent)                                                                               \
  X(cuMemAlloc)                                                                                    \
  X(cuMemFree)                                                                                     \
  X(cuMemAllocHost)                                                                                \
  X(cuMemFreeHost)                                                                                 \
  X(cuMemsetD8Async)                                                                               \
  X(cuMemsetD32Async)                                                                              \
  X(cuMemcpyHtoD)                                                                                  \
  X(cuMemcpyDtoH)                                                                                  \
  X(cuMemcpyHtoDAsync)                                                                             \
  X(cuMemcpyDtoHAsync)                                                                             \
  X(cuMemcpyDtoDAsync)                                                                             \
  X(cuStreamCreate)                                                                                \
  X(cuStreamDestroy)                                                                               \
  X(cuStreamSynchronize)                                                                           \
  X(cuStreamBeginCapture)                                                                          \
  X(cuStreamEndCapture)                                                                            \
  X(cuGraphInstantiateWithFlags)                                                                   \
  X(cuGraphLaunch)                                                                                 \
  X(cuGraphExecDestroy)                                                                            \
  X(cuGraphDestroy)                                                                                \
  X(cuModuleLoadDataEx)                                                                            \
  X(cuModuleUnload)                                                                                \
  X(cuModuleGetFunction)                                                                           \
  X(cuLaunchKernel)

/// The driver's entry points, resolved for CUDA_VERSION.
struct Driver {
#define GRAPHC_CUDA_MEMBER(name) decltype(&::name) name = nullptr;
  GRAPHC_CUDA_DRIVER_FUNCTIONS(GRAPHC_CUDA_MEMBER)
#undef GRAPHC_CUDA_MEMBER
  int version = 0; ///< cuDriverGetVersion, e.g. 13000

  /// "CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
  std::string describe(CUresult r) const;
  /// The error of a failed call: "CUDA error in WHAT: ...".
  Diag fail(CUresult r, const std::string &what) const;
};

/// The loaded and initialised driver, or why there is none (the same
/// answer every time).
Expected<const Driver *> driver();

/// The driver if it was loaded successfully before, else null. For
/// destructors, which must not load it.
const Driver *loadedDriver();

} // namespace graphc::runtime::cuda

/// Returns the driver's error (as a Diag, for Status or Expected) when a
/// call fails. `drv` is a `const Driver &`.
#define GRAPHC_CU(drv, call)                                                                       \
  do {                                                                                             \
    if (CUresult graphc_cu_r = (call); graphc_cu_r != CUDA_SUCCESS)                                \
      return (drv).fail(graphc_cu_r, #call);                                                       \
  } while (0)
