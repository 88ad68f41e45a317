// ir/Op.cpp - op tables generated from ir/ops.def.
#include "ir/Op.h"

namespace graphc::ir {
namespace {

struct OpInfo {
  std::string_view name;
  int arity;
  bool differentiable;
};

constexpr OpInfo kInfo[] = {
#define GRAPHC_OP(E, S, A, D) {S, A, D},
#include "ir/ops.def"
#undef GRAPHC_OP
};

} // namespace

std::string_view opName(Op op) { return kInfo[int(op)].name; }
int opArity(Op op) { return kInfo[int(op)].arity; }
bool opDifferentiable(Op op) { return kInfo[int(op)].differentiable; }

std::optional<Op> opFromName(std::string_view name) {
  for (int i = 0; i < kNumOps; ++i)
    if (kInfo[i].name == name)
      return Op(i);
  return std::nullopt;
}

bool isElementwise(Op op) {
  switch (op) {
  case Op::Add: case Op::Sub: case Op::Mul: case Op::Div: case Op::Max:
  case Op::Min: case Op::Greater: case Op::Select: case Op::Neg: case Op::Exp:
  case Op::Log: case Op::Sqrt: case Op::Square: case Op::Relu: case Op::Tanh:
  case Op::Sigmoid: case Op::Cast: case Op::Constant: case Op::Broadcast:
    return true;
  default:
    return false;
  }
}

} // namespace graphc::ir
