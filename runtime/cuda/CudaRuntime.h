// runtime/cuda/CudaRuntime.h - the cuda target, as the rest of graphc sees it.
//
// No CUDA header here: graphc's other libraries and the tests include this
// without the toolkit's include paths. Everything that touches the driver
// loads it at run time (runtime/cuda/Driver.h), so each function below
// answers with a clear error on a machine without an NVIDIA GPU.
#pragma once

#include "runtime/CompiledModel.h"

#include <map>
#include <string>

namespace graphc::runtime::cuda {

/// The cuda target's executable: NVRTC kernels, cuBLASLt products, the step
/// captured once per batch size as a CUDA graph. Fails with "no CUDA driver
/// (...)" or "no CUDA device: ..." where there is no usable GPU.
Expected<std::unique_ptr<Executable>> makeCudaExecutable(CompiledModel model,
                                                         const ExecutableOptions &options);

/// Succeeds when a CUDA device can be used here; else says why not.
Status deviceAvailable();

/// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), driver CUDA 13.0", or the
/// reason there is none.
Expected<std::string> describeDevice();

/// What runs convolutions on this device: "cuDNN" (or "cuDNN (emulated)")
/// when it loaded, else why not ("no cuDNN (...)"; the generated kernels
/// then run); the driver's error when there is no device.
Expected<std::string> cudnnNote();

/// Where checkConvGraph builds its graph: the real cuDNN library (opened
/// without a driver or a device), or the emulated device's.
enum class CudnnCheck { Library, Emulated };

/// How many of cuDNN's engines claim an operation graph, and how many
/// engine configurations its heuristics rank for it.
struct ConvGraphEngines {
  int64_t engines = 0, ranked = 0;
};

/// Builds the cuDNN operation graph that the runtime would fuse for
/// convolution record `record` (runtime/rt/graphc_cuda_model.h: a forward
/// GCU_CONV record with GK_LT set) at batch n, finalizing every descriptor
/// and the heuristics without a handle, and answers their counts. An
/// error says what cuDNN refused, or "no cuDNN (...)" where the library
/// cannot be opened. For tests on machines without a GPU.
Expected<ConvGraphEngines> checkConvGraph(const int64_t *record, int64_t n, CudnnCheck where);

/// cuBLASLt's and NVRTC's versions; touches no driver.
std::string toolkitVersions();

/// Runs fused graph `g` with its memory plan once on the GPU at batch
/// `batch`, for tests: `io` maps each input's name, and "out:NAME" for each
/// output, to host memory of that batch (as tests/JitRunner.h takes it).
Status runGraph(const ir::Graph &g, const ir::MemoryPlan &plan, int64_t batch,
                const std::map<std::string, void *> &io, bool tf32 = false);

} // namespace graphc::runtime::cuda
