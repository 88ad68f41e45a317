// ir/Elementwise.h - the value of every elementwise math op (classes Unary,
// Binary and Ternary of ir/ops.def), written once.
//
// Each formula is a template over a scalar algebra `S` that every consumer
// provides: the reference interpreter computes in double
// (ir/Interpreter.cpp), the CPU backend builds LLVM IR (codegen/cpu/Emitter.cpp)
// and the CUDA printer writes C expressions (codegen/cuda/CudaSource.cpp).
// A new elementwise op is therefore its line in ops.def, its formula here and
// its VJP rule in passes/Autodiff.cpp; it needs a new primitive below only
// when no composition of the existing ones computes it.
//
// The algebra: `using V` (a value), and
//   V lit(double)                          a constant
//   V add(V, V), sub, mul, div, pow        IEEE float arithmetic, C's pow
//   V neg(V), exp, log, sqrt, tanh         as C's; tanh may be any
//                                          formula accurate to float
//   V greater(V a, V b, V x, V y)          a > b ? x : y  (false on NaN)
//   V less(V a, V b, V x, V y)             a < b ? x : y  (false on NaN)
//   V nonzero(V c, V x, V y)               c != 0 ? x : y (true on NaN)
#pragma once

#include "ir/Error.h"
#include "ir/Op.h"

namespace graphc::ir {

/// Whether `elementwise` computes `op` (its class is Unary, Binary or Ternary).
inline bool isElementwiseMath(Op op) {
  OpClass c = opClass(op);
  return c == OpClass::Unary || c == OpClass::Binary || c == OpClass::Ternary;
}

/// The value of the elementwise math op `op` on its operands `in` (arity of
/// the op), in the algebra `s`.
template <class S> typename S::V elementwise(S &s, Op op, const typename S::V *in) {
  switch (op) {
  // Binary.
  case Op::Add: return s.add(in[0], in[1]);
  case Op::Sub: return s.sub(in[0], in[1]);
  case Op::Mul: return s.mul(in[0], in[1]);
  case Op::Div: return s.div(in[0], in[1]);
  case Op::Max: return s.greater(in[0], in[1], in[0], in[1]);
  case Op::Min: return s.less(in[0], in[1], in[0], in[1]);
  case Op::Greater: return s.greater(in[0], in[1], s.lit(1), s.lit(0));
  case Op::Pow: return s.pow(in[0], in[1]);
  // Ternary.
  case Op::Select: return s.nonzero(in[0], in[1], in[2]);
  // Unary.
  case Op::Neg: return s.neg(in[0]);
  case Op::Exp: return s.exp(in[0]);
  case Op::Log: return s.log(in[0]);
  case Op::Sqrt: return s.sqrt(in[0]);
  case Op::Square: return s.mul(in[0], in[0]);
  case Op::Relu: return s.greater(in[0], s.lit(0), in[0], s.lit(0));
  case Op::Tanh: return s.tanh(in[0]);
  case Op::Sigmoid: return s.div(s.lit(1), s.add(s.lit(1), s.exp(s.neg(in[0]))));
  default: break;
  }
  GRAPHC_CHECK(false, "{} is not elementwise math", opName(op));
  return s.lit(0);
}

} // namespace graphc::ir
