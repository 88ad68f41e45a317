// driver/EmitLibrary.h - what `graphc compile` writes: a library to link
// (a header, a static archive and the initial weights) for the cpu or the
// cuda target, or the CPU code as LLVM IR or assembly text.
//
// Every output is made from the compiled model's own graphs and plans: the
// library runs exactly what the JIT runs.
#pragma once

#include "driver/Compile.h"

#include <string>
#include <vector>

namespace graphc::driver {

/// What a library build wrote and checked.
struct LibraryReport {
  std::vector<std::string> files; ///< <out>.h, lib<name>.a, <out>.safetensors
  int assembled = -1;             ///< cuda: PTX modules ptxas assembled (-1: no ptxas)
};

/// The cpu target's library at path prefix `out` (-o out/mlp: out/mlp.h,
/// out/libmlp.a, out/mlp.safetensors). Its code is for options.cpu, or by
/// default avx2 with avx512 where the CPU running it has it.
Status writeCpuLibrary(const runtime::CompiledModel &model, const BuildOptions &options,
                       const std::string &out, LibraryReport *report = nullptr);

/// The cuda target's library: the same header and weights, an archive whose
/// step runs on the GPU, its kernels PTX for options.arch. Where the
/// toolkit's ptxas is installed every module is assembled before anything
/// is written.
Status writeCudaLibrary(const runtime::CompiledModel &model, const BuildOptions &options,
                        const std::string &out, LibraryReport *report = nullptr);

enum class CpuText { LlvmIr, Assembly };

/// The CPU code the JIT would run here (options.cpu, GRAPHC_CPU or the
/// host's best ISA), as optimised LLVM IR or assembly.
Expected<std::string> emitCpuText(const runtime::CompiledModel &model, const BuildOptions &options,
                                  CpuText what);

/// Every CUDA kernel of both programs as CUDA C, one section per kernel
/// group (the groups cuBLASLt runs with its own epilogue noted as such).
Expected<std::string> emitCudaSource(const runtime::CompiledModel &model);

/// Every CUDA kernel compiled by NVRTC to PTX for `arch`, written as
/// `dir/<kernel>.ptx`; returns how many.
Expected<int> writeCudaPtx(const runtime::CompiledModel &model, const std::string &arch,
                           const std::string &dir);

} // namespace graphc::driver
