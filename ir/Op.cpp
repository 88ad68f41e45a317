// ir/Op.cpp - op tables generated from ir/ops.def.
#include "ir/Op.h"

namespace graphc::ir {
namespace {

struct OpInfo {
  std::string_view name;
  int arity;
  bool differentiable;
  OpClass cls;
};

constexpr OpInfo kInfo[] = {
#define GRAPHC_OP(E, S, A, D, C) {S, A, D, OpClass::C},
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

OpClass opClass(Op op) { return kInfo[int(op)].cls; }

bool isElementwise(Op op) {
  switch (opClass(op)) {
  case OpClass::Unary:
  case OpClass::Binary:
  case OpClass::Ternary:
  case OpClass::Cast:
  case OpClass::Constant:
  case OpClass::Broadcast: return true;
  default: return false;
  }
}

bool isFree(Op op) {
  switch (opClass(op)) {
  case OpClass::Source:
  case OpClass::Constant:
  case OpClass::View:
  case OpClass::Meta: return true;
  default: return false;
  }
}

bool isPointwise(Op op) {
  return (isElementwise(op) && opClass(op) != OpClass::Constant) ||
         opClass(op) == OpClass::Generator;
}

bool isUnaryMath(Op op) { return opClass(op) == OpClass::Unary; }
bool isBinaryMath(Op op) { return opClass(op) == OpClass::Binary; }
bool isSum(Op op) { return op == Op::ReduceSum || op == Op::ReduceMean; }

} // namespace graphc::ir
