// ir/Op.h - the operation enum and its tables, generated from ir/ops.def.
#pragma once

#include <optional>
#include <string_view>

namespace graphc::ir {

enum class Op {
#define GRAPHC_OP(E, S, A, D, C) E,
#include "ir/ops.def"
#undef GRAPHC_OP
};

inline constexpr int kNumOps = 0
#define GRAPHC_OP(E, S, A, D, C) +1
#include "ir/ops.def"
#undef GRAPHC_OP
    ;

/// The op's spelling in the textual IR, e.g. "matmul".
std::string_view opName(Op op);
/// Number of operands, or -1 when variadic.
int opArity(Op op);
/// Whether autodiff has a VJP rule for the op.
bool opDifferentiable(Op op);
/// The op spelled `name`, if any.
std::optional<Op> opFromName(std::string_view name);

/// What kind of computation an op is: ops.def's last column.
enum class OpClass {
  Source,
  Constant,
  View,
  Meta,
  Generator,
  Movement,
  Broadcast,
  Unary,
  Binary,
  Ternary,
  Cast,
  Reduce,
  Row,
  MatMul,
  Loss,
  Gather
};
OpClass opClass(Op op);

/// Elementwise ops compute each output element from the same element of
/// their (broadcast) operands; fusion chains them (constants included).
bool isElementwise(Op op);
/// Ops that need no kernel: arguments, constants, views, run-time sizes.
bool isFree(Op op);
/// Ops a kernel computes element by element: elementwise ops other than
/// constants, and generators (one_hot, random_mask).
bool isPointwise(Op op);
/// Float math on one operand (neg, exp, ...), on two (add, ..., greater).
bool isUnaryMath(Op op);
bool isBinaryMath(Op op);
/// A sum over axes: reduce_sum, or reduce_mean (a sum, scaled).
bool isSum(Op op);

} // namespace graphc::ir
