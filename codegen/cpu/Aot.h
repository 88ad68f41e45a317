// codegen/cpu/Aot.h - ahead-of-time output: a static library and a C header
// that put the compiled training step into another program.
//
// `graphc compile M -o out/mlp` writes out/mlp.h, out/libmlp.a and
// out/mlp.safetensors (the initial weights; driver/EmitLibrary.cpp writes
// the files). The archive holds the model's object file (its kernels, run
// functions, a descriptor and `mlp_*` entry points) and graphc's C runtime
// (runtime/rt), so a program links it with libc, libm and pthreads only.
// Every symbol the model defines is prefixed with its name, so two models
// link into one program.
#pragma once

#include "codegen/DeviceImage.h"
#include "codegen/cpu/Jit.h"
#include "ir/ModelInfo.h"

#include <string>

namespace graphc::codegen::cpu {

/// A library's two files, made in memory: the caller writes them.
struct LibraryFiles {
  std::string archivePath, archive; ///< lib<name>.a next to `out`, and its bytes
  std::string headerPath, header;   ///< <out>.h and its text
};

/// `<out>.h` and `lib<stem>.a` for the model `info`, whose step and predict
/// programs have graphs and plans set; a fresh context starts from the
/// weights of `seed` (graphc train --seed). With `device` (the cuda target)
/// the archive runs that image on the GPU through graphc_cuda_model.c
/// instead of CPU code. The CPU code is built for each ISA of `isas` (see
/// emitCode); `<name>_create` takes the best the CPU executes and refuses
/// when there is none. Every library has <name>_compute_gradients and
/// <name>_apply_update: they run the step split in two, `gradients` and
/// `update` (CPU code) or the device image's tables of the same name, and
/// return an error where neither was compiled (an optimizer without a
/// split form).
Expected<LibraryFiles> buildLibrary(const ir::ModelInfo &info, Program &step, Program &predict,
                                    int64_t maxBatch, uint64_t seed, const std::string &out,
                                    const std::vector<VectorTarget> &isas,
                                    const DeviceImage *device = nullptr,
                                    Program *gradients = nullptr, Program *update = nullptr);

/// The header's text for a model called `name`.
std::string libraryHeader(const ir::ModelInfo &info, int64_t maxBatch, const std::string &name,
                          bool cuda = false, const std::string &isas = "");

} // namespace graphc::codegen::cpu
