// passes/Fusion.h - partitions the step graph into explicit kernel groups.
//
// Every node that computes something ends up in exactly one kernel group;
// only sources and free views (inputs, constants, param views, reshapes,
// the flat gradient pack, the batch size) stay outside. Each group records
// its kind and why it fused. The fusions, in the order they are tried
// (DESIGN.md decision 6):
//   1. GEMM epilogues: elementwise ops applied to a matmul's result (bias
//      add, ReLU, the ReLU mask of an incoming gradient), with their
//      single-use elementwise operands (the mask compare) pulled in.
//   2. Bias gradients: the column sum of dY joins the weight-gradient GEMM
//      that reads the same dY.
//   3. LogSoftMax + ClassNLL forward: one row kernel.
//   4. Row kernels: last-axis reductions with the elementwise ops around
//      them over the same rows (the LogSoftMax+ClassNLL backward).
//   5. Elementwise chains over one shape (the whole optimizer update),
//      then (with FusionOptions::reductions) the sums over all but some
//      leading axes of a chain's values (BatchNorm's channel sums) join the
//      chain: one pass computes the chain and its sums, and a value only
//      summed is never stored.
//   6. (With FusionOptions::pools) a max pool joins the elementwise chain
//      that makes its input, computed from each plane the chain has just
//      made; its gradient joins the chain of sums that is its only reader:
//      never stored, its planes are computed where the chain reads them.
// A merge that would make the group graph cyclic is refused; each refusal
// is recorded with its reason, since "why did this not fuse" is what users
// of a fusing compiler ask most.
#pragma once

#include "ir/Graph.h"

#include <string>
#include <vector>

namespace graphc::passes {

struct FusionResult {
  ir::Graph graph;                ///< reordered so each group is contiguous
  std::vector<std::string> notes; ///< fusions refused, and why
};

struct FusionOptions {
  /// Rule 5's reductions into their chains. A backend runs such a group as
  /// a loop over the sums' outputs, each reading its whole slice: the CPU's
  /// cores take a channel each, but a GPU would leave most of its threads
  /// idle, so the cuda target turns it off.
  bool reductions = true;
  /// Rule 6: a max pool whose windows tile the planes (stride = kernel, no
  /// padding) joins the elementwise chain that makes its input (BatchNorm's
  /// normalisation and ReLU), and its gradient the chain of sums that reads
  /// it (the ReLU mask and the BatchNorm or bias sums of the layer below).
  /// The CPU runs such groups plane by plane; the cuda printer has no such
  /// kernels, so the cuda target turns this off.
  bool pools = true;
};

FusionResult fuse(const ir::Graph &g, const FusionOptions &options = {});

} // namespace graphc::passes
