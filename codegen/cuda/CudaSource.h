// codegen/cuda/CudaSource.h - kernel groups as CUDA C, one source per group.
//
// The same plans as the CPU backend (codegen/KernelPlan.h), printed for the
// GPU: range kernels as grid-stride loops over their elements; row kernels
// with a thread per row (and, when the loss sums over rows, one block whose
// partial sums combine in a fixed order, so results are deterministic);
// GEMM groups as a cuBLASLt matmul whose own epilogue takes a bias (and
// ReLU) where that is the whole epilogue, else a generated epilogue kernel
// over C, plus a generated column sum for a bias gradient; convolution
// groups as cuDNN's convolution into C and the same epilogue kernel, with
// the group's gather kernel for a device without cuDNN. Every kernel
// takes `void **ptrs` (one device pointer per IR value, as on the CPU) and
// the batch size `n`.
#pragma once

#include "codegen/KernelPlan.h"

#include <string>
#include <vector>

namespace graphc::codegen::cuda {

/// How the host launches a group's main kernel.
enum class Launch {
  Elements,    ///< a grid over the domain's elements: k(ptrs, n, total)
  Rows,        ///< a grid over the rows: k(ptrs, n, rows)
  SingleBlock, ///< one block of 256 threads: k(ptrs, n, rows)
  Gemm,        ///< cuBLASLt, then the epilogue k(ptrs, n, total) if any
  HostCopy,    ///< the parts of a gradient pack not computed in place
  /// A convolution (or gradient) group: cuDNN writes the convolution to C,
  /// then the epilogue kernel k(ptrs, n, total) if any; where cuDNN is
  /// missing, the main kernel computes the whole group as Elements. A
  /// forward convolution whose epilogue is its bias (and ReLU) may instead
  /// run as one cuDNN operation graph (`lt`, `bias`).
  Conv,
};

/// The library's own epilogue for a GEMM group (cuBLASLt's) or a forward
/// convolution group (cuDNN's graph API), when it is all the group does.
enum class LtEpilogue { None, Bias, ReluBias };

struct CudaKernel {
  KernelPlan plan;
  Launch launch = Launch::Elements;
  std::string name;     ///< the main (or epilogue) kernel; "" when none
  std::string colsum;   ///< GEMM: the bias-gradient kernel k(ptrs, n, cols), or ""
  std::string epilogue; ///< Conv: the kernel over C after cuDNN's convolution, or ""
  std::string source;   ///< CUDA C defining the group's kernels ("" for HostCopy)
  LtEpilogue lt = LtEpilogue::None;
  ir::ValueId bias = -1; ///< the bias cuBLASLt (a vector) or cuDNN (a [C,1,1] view) adds
};

/// Prints every kernel group of `g`; kernel names are `<prefix>k<N>`.
std::vector<CudaKernel> printKernels(const ir::Graph &g, const std::vector<bool> &stored,
                                     const std::string &prefix);

/// graphc's own kernels beside the generated ones: graphc_gather builds a
/// batch from a data set kept on the device; graphc_bias_add adds a bias
/// (and ReLU) where cuBLASLt's epilogue cannot.
const char *helperSource();

} // namespace graphc::codegen::cuda
