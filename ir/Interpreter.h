// ir/Interpreter.h - the reference interpreter: every op, in double precision.
//
// The oracle that passes and backends are tested against. It is written to be
// obviously correct, not fast: plain loops over row-major tensors.
#pragma once

#include "ir/Graph.h"

#include <map>
#include <string>
#include <vector>

namespace graphc::ir {

/// A concrete row-major tensor; integer tensors hold their values as doubles.
struct Tensor {
  Shape shape; ///< concrete, no N
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(Shape s, double fill = 0.0);
  int64_t numel() const { return int64_t(data.size()); }
};

/// The value of an elementwise math op (ir/Elementwise.h) on its operands
/// (as many as the op's arity), in double.
double evalElementwise(Op op, const double *in);

/// Values for a graph's inputs, by input name.
using Bindings = std::map<std::string, Tensor>;

/// The value of every node, indexed by ValueId. The batch size N is taken
/// from the inputs' leading dimensions, which must agree.
Expected<std::vector<Tensor>> evaluate(const Graph &g, const Bindings &inputs);

/// The graph's outputs, by name.
Expected<std::map<std::string, Tensor>> run(const Graph &g, const Bindings &inputs);

} // namespace graphc::ir
