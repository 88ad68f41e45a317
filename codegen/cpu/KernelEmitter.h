// codegen/cpu/KernelEmitter.h - kernel groups to LLVM IR functions.
//
// Three kernel shapes cover every group the fusion pass makes:
//  - range kernels `void k(ptr ptrs, i64 n, i64 begin, i64 end)` compute
//    elements [begin, end) of one domain: elementwise chains, the optimizer
//    update, and single gather ops (pooling, reductions) written as
//    "compute output element i";
//  - row kernels `void k(ptr ptrs, i64 n)` walk the rows of an [R, C] domain
//    with per-row temporaries: LogSoftMax + ClassNLL forward and backward;
//  - GEMM kernels: the packed, threaded driver (runtime/rt/graphc_rt.c) calls
//    the generated micro-kernel, then the group's generated epilogue
//    `void e(ptr ptrs, i64 n, ptr c, i64 ldc, i64 i0, i64 i1, i64 j0, i64 j1)`
//    on each finished region; a bias gradient is a generated column sum;
//  - convolutions and their gradients (a range plan with `conv` set): the
//    same driver's implicit GEMM (grt_conv) with the same micro-kernel and
//    an epilogue of the same signature.
// `ptrs` holds one pointer per IR value (null where a value has no buffer):
// every buffer, view and caller array is found by the value's id.
#pragma once

#include "codegen/KernelPlan.h"
#include "ir/Graph.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace graphc::ir {
struct MemoryPlan;
}

namespace graphc::codegen::cpu {

/// One vector ISA graphc generates CPU code for, and the micro-kernel tile
/// blocked for its registers (Jit.h lists them).
struct VectorTarget {
  int width = 4; ///< floats per vector register: 16 (AVX-512), 8 (AVX2), 4 (SSE2)
  int mr = 4, nr = 8;
  std::string name = "generic"; ///< "avx512", "avx2" or "generic" (GRAPHC_CPU, --cpu)
  std::string cpu = "x86-64";   ///< the LLVM CPU whose features the code may use
  int level = 1;                ///< the x86-64 ISA level it needs (grt_cpu_level)
  /// Copies of each packed A value the micro-kernel reads: 1 where the ISA
  /// broadcasts from memory in a load (AVX's vbroadcastss), the vector
  /// width where it cannot (SSE2 would spend a shuffle per row and step on
  /// the ports its multiplies and adds need), so the driver packs A pre-broadcast.
  int aCopies = 1;
};

/// A kernel group's plan and the LLVM functions that carry it out.
struct KernelInfo {
  KernelPlan plan;
  std::string fn; ///< range / rows function, or the GEMM epilogue ("" if none)
  /// Range: what the function's [begin, end) counts, where it is not the
  /// elements of the plan's domain (a max-pool gradient runs over windows).
  std::optional<ir::Shape> iterations;
  /// A convolution's max pool after its epilogue (KernelPlan::poolAfter),
  /// grt_pool_fn's: "" if none.
  std::string poolFn = {};
};

/// Emits every kernel group of `g` into `m`, names prefixed with `prefix`.
/// `stored[v]` says whether value v has a buffer (crosses a kernel boundary
/// or is an input, output or view).
std::vector<KernelInfo> emitKernels(llvm::Module &m, const ir::Graph &g,
                                    const std::vector<bool> &stored, const std::string &prefix);

/// Emits the GEMM micro-kernel for `t` as `name`.
void emitMicroKernel(llvm::Module &m, const VectorTarget &t, const std::string &name);

/// Emits `void <prefix>run(void **io, i64 n, ptr arena, ptr pool)`, which
/// binds every buffer and launches `kernels` in order (StepFunction.cpp);
/// `stepwise`: its twin `<prefix>run_kernels`, which launches a range of
/// the kernels and leaves the buffer table to its caller.
void emitRunFunction(llvm::Module &m, const ir::Graph &g, const ir::MemoryPlan &plan,
                     const std::vector<bool> &stored, const std::vector<KernelInfo> &kernels,
                     const std::string &prefix, const std::string &micro, const VectorTarget &t,
                     bool stepwise = false);

} // namespace graphc::codegen::cpu
