// runtime/NonFinite.h - where in a training step a value first went NaN or
// infinite: the kernel group, its ops and the phase of the step.
//
// The trainer checks only the loss after each step (cheap). After a failure
// it replays the step one kernel group at a time through
// Executable::diagnoseStep, and every backend describes the first
// non-finite value it finds the same way, from the fused step graph.
#pragma once

#include "ir/Graph.h"

#include <cstdint>
#include <string>
#include <vector>

namespace graphc::runtime {

/// The first non-finite value of one training step.
struct NonFiniteReport {
  bool found = false;
  int group = -1;                  ///< the kernel group (@kN), or -1 for an input
  std::string kind, reason;        ///< the group's kind and why it fused, as the IR prints them
  std::vector<std::string> ops;    ///< the group's ops in order, each once
  std::vector<std::string> params; ///< the parameters it reads (their names)
  std::string phase;               ///< "forward", "backward", "optimizer update" or "input"
  std::string value;               ///< the IR value: "%12", "%params"
  int64_t element = -1;            ///< its first non-finite element
  float bad = 0;                   ///< that element

  /// `kernel group @k0 gemm "..." (forward: matmul, add, relu; reads 1.weight,
  /// 1.bias): %7 element 3 = inf`.
  std::string str() const;
};

/// The index of the first NaN or infinity of p[0..n), or -1.
int64_t firstNonFinite(const float *p, int64_t n);

/// The report for element `element` (= `bad`) of value `v` of the fused
/// step graph `g`.
NonFiniteReport nonFiniteAt(const ir::Graph &g, ir::ValueId v, int64_t element, float bad);

} // namespace graphc::runtime
