// runtime/cuda/Emulator.h - an emulated CUDA device for tests: the cuda
// target's real kernels and its whole runtime, run on the host.
//
// GRAPHC_CUDA_DEVICE=emulate makes driver() (Driver.h) answer with this
// table instead of libcuda's. It is a test device, not a target for users:
// it exists so that every line of the cuda target runs in CI on machines
// without a GPU (DESIGN.md decision 8).
//   - Memory is host memory; a CUdeviceptr is its address. Streams run
//     their work in order at once, except while a graph is being captured:
//     then it is recorded, and a graph launch replays the recording.
//   - A module is the CUDA C source of one kernel group (the encoder puts
//     source in place of PTX for the architecture "host"). It is compiled by
//     the system's C++ compiler with a prelude that supplies threadIdx,
//     blockIdx, blockDim, gridDim, __shared__ and __syncthreads, and loaded
//     with dlopen; compiled modules are cached by content.
//   - Kernels run with block semantics: a kernel that synchronises runs the
//     threads of a block concurrently, one OS thread each, meeting at a real
//     barrier (so a missing __syncthreads shows under ThreadSanitizer);
//     others run their threads one after another, a valid schedule for a
//     kernel whose threads never wait for each other, unless
//     GRAPHC_EMULATE_CONCURRENT=1 (then every block runs side by side, so
//     that TSan also sees threads of a barrier-free kernel that collide).
//   - cuBLASLt's matrix products are a host reference that honours the
//     descriptors (transposes, leading dimensions, the bias and ReLU-bias
//     epilogues) and refuses what cuBLASLt documents as invalid.
//   - cuDNN's convolutions likewise: the descriptors must agree (shapes,
//     pads, strides, fp32 NCHW), the workspace passed must be what the
//     algorithm asked for, every tensor inside an allocation; the work runs
//     on the handle's stream. GRAPHC_NO_CUDNN=1 makes cudnnCreate fail, as
//     on a machine without cuDNN.
//   - cuDNN's graph API (backend descriptors) likewise, for the one graph
//     graphc builds: a forward convolution, its bias add, maybe ReLU. Its
//     heuristics offer a TF32 tensor-core engine (which computes in TF32)
//     and an fp32 one that needs a workspace; GRAPHC_EMULATE_NO_FUSION=1
//     makes them offer none, as a GPU without such an engine, and
//     GRAPHC_EMULATE_FUSION_FAILS=1 makes running a plan fail.
#pragma once

#include "runtime/cuda/Driver.h"

#include <functional>

namespace graphc::runtime::cuda {

/// The architecture name the encoder treats as "CUDA C source, not PTX".
inline constexpr const char *kEmulatedArch = "host";

/// The emulated NCCL's way to the other processes of a data-parallel run:
/// an in-place sum of host floats over every process (false: it failed).
/// A communicator of more than one process needs it.
void setEmulatedNcclReduce(std::function<bool(float *, int64_t)> reduce);

/// True when GRAPHC_CUDA_DEVICE=emulate.
bool emulationRequested();

/// The emulated device's table (made once).
Expected<Driver *> loadEmulator();

} // namespace graphc::runtime::cuda
