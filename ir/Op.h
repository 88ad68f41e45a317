// ir/Op.h - the operation enum and its tables, generated from ir/ops.def.
#pragma once

#include <optional>
#include <string_view>

namespace graphc::ir {

enum class Op {
#define GRAPHC_OP(E, S, A, D) E,
#include "ir/ops.def"
#undef GRAPHC_OP
};

inline constexpr int kNumOps = 0
#define GRAPHC_OP(E, S, A, D) +1
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

/// Elementwise ops compute each output element from the same element of
/// their (broadcast) operands; fusion chains them.
bool isElementwise(Op op);

} // namespace graphc::ir
