// ir/ShapeInference.h - the result type of an op from its operand types.
//
// The single source of typing rules: node builders call it as nodes are made,
// and the verifier calls it again after every pass to recheck each node.
#pragma once

#include "ir/Attrs.h"
#include "ir/Error.h"
#include "ir/Op.h"
#include "ir/Type.h"

#include <vector>

namespace graphc::ir {

/// The type of `op` applied to operands of types `in`, or a message saying
/// which operand does not fit and why.
Expected<Type> inferType(Op op, const std::vector<Type> &in, const Attrs &attrs);

/// Numpy-style broadcast of two shapes (N broadcasts only against N or 1).
Expected<Shape> broadcastShapes(const Shape &a, const Shape &b);

/// Output spatial size of a convolution or pooling window; `padEnd` is
/// pooling's extra padding after the input (Torch7's ceil mode).
int64_t windowOut(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t padEnd = 0);

} // namespace graphc::ir
