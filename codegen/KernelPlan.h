// codegen/KernelPlan.h - what each kernel group of a fused graph is, for any
// backend.
//
// The fusion pass marks groups; this decides, once for every backend, how
// each group runs: a GEMM with an epilogue (and maybe a bias gradient), a
// pass over the rows of an [R, C] domain, or a range kernel over the
// elements of one domain; plus the host copies a gradient pack needs. The
// LLVM and CUDA emitters print the same plans.
#pragma once

#include "ir/Graph.h"

#include <string>
#include <vector>

namespace graphc::codegen {

enum class KernelKind { Range, Rows, Gemm, Pack };

struct KernelPlan {
  KernelKind kind = KernelKind::Range;
  int group = -1;
  std::vector<ir::ValueId> members; ///< the group's nodes, in order
  ir::Type domain;                  ///< range: elements; rows: [R, C]; gemm: C
  bool parallel = true;             ///< rows: false (the loss sums over rows)
  // GEMM: C = op(A) op(B), the epilogue's nodes, the bias-gradient node.
  ir::ValueId matmul = -1, a = -1, b = -1, c = -1, colsum = -1;
  bool transA = false, transB = false;
  std::vector<ir::ValueId> epilogue;
  ir::ValueId pack = -1; ///< Pack: the flat_pack whose parts need copies
  /// Range over a convolution or one of its gradients: that op, which a
  /// backend may run as an implicit GEMM into `c`, the other members
  /// (`epilogue`) following on each finished block; -1 otherwise.
  ir::ValueId conv = -1;
  /// Range over the outputs of sums of the group's own chain (an
  /// "elementwise_reduce" group: BatchNorm's channel sums): the chain's
  /// shape, whose elements each output sums over its slice (the domain is
  /// the sums' shape); empty otherwise.
  ir::Shape reduceOver;
  /// With reduceOver: the sums, and the chain's members (of that shape).
  std::vector<ir::ValueId> sums, chain;
  /// With reduceOver: a max-pool gradient the chain reads (windows that
  /// tile the planes, sums over the batch and the plane), which a backend
  /// computes plane by plane before the chain's pass over that plane; -1
  /// otherwise. It is in `members`, not in `chain`.
  ir::ValueId poolGrad = -1;
  /// Range over an elementwise chain that ends in a max pool of one of its
  /// values (windows that tile the planes): that pool, which a backend runs
  /// plane by plane after the chain's pass over the plane; the domain is
  /// the chain's. With `conv`: a max pool of the convolution or of its
  /// epilogue, run on each band of output rows the convolution finishes
  /// (not in `epilogue`). -1 otherwise.
  ir::ValueId poolAfter = -1;
};

/// Which values of `g` need a buffer: inputs, outputs, views and everything
/// read by another kernel.
std::vector<bool> storedValues(const ir::Graph &g);

/// One plan per kernel group (and per flat_pack), in execution order.
std::vector<KernelPlan> planKernels(const ir::Graph &g, const std::vector<bool> &stored);

} // namespace graphc::codegen
