// passes/Canonicalize.cpp - the canonicalisation rule table.
#include "passes/Canonicalize.h"

#include "ir/Interpreter.h"
#include "passes/Rewrite.h"

#include <cmath>

namespace graphc::passes {
namespace {

using namespace ir;

std::optional<double> scalarConst(const Graph &g, ValueId v) {
  const Node &n = g.node(v);
  if (n.op == Op::Constant)
    return n.attrs.f("value");
  return std::nullopt;
}

bool isConst(const Graph &g, ValueId v, double value) {
  auto c = scalarConst(g, v);
  return c && *c == value;
}

std::optional<ValueId> unaryRule(Graph &g, const Node &n) {
  if (auto c = scalarConst(g, n.inputs[0]))
    return g.constant(evalElementwise(n.op, &*c), n.type);
  if (n.op == Op::Neg && g.node(n.inputs[0]).op == Op::Neg)
    return g.node(n.inputs[0]).inputs[0];
  return std::nullopt;
}

std::optional<ValueId> binaryRule(Graph &g, const Node &n) {
  ValueId a = n.inputs[0], b = n.inputs[1];
  auto ca = scalarConst(g, a), cb = scalarConst(g, b);
  if (ca && cb) {
    const double operands[] = {*ca, *cb};
    return g.constant(evalElementwise(n.op, operands), n.type);
  }
  // Identities, only where they keep the result's type.
  auto same = [&](ValueId v) -> std::optional<ValueId> {
    if (g.type(v) == n.type)
      return v;
    return std::nullopt;
  };
  switch (n.op) {
  case Op::Add:
    if (isConst(g, b, 0))
      return same(a);
    if (isConst(g, a, 0))
      return same(b);
    break;
  case Op::Sub:
    if (isConst(g, b, 0))
      return same(a);
    break;
  case Op::Mul:
    if (isConst(g, b, 1))
      return same(a);
    if (isConst(g, a, 1))
      return same(b);
    break;
  case Op::Div:
    if (isConst(g, b, 1))
      return same(a);
    break;
  default: break;
  }
  return std::nullopt;
}

std::optional<ValueId> reshapeRule(Graph &g, const Node &n) {
  ValueId x = n.inputs[0];
  if (g.type(x) == n.type)
    return x;
  if (auto c = scalarConst(g, x)) // a constant is the same value in any shape
    return g.constant(*c, n.type);
  if (g.node(x).op == Op::Reshape)
    return g.add(Op::Reshape, {g.node(x).inputs[0]}, n.attrs);
  return std::nullopt;
}

std::optional<ValueId> broadcastRule(Graph &g, const Node &n) {
  if (g.type(n.inputs[0]) == n.type)
    return n.inputs[0];
  if (auto c = scalarConst(g, n.inputs[0]))
    return g.constant(*c, n.type);
  return std::nullopt;
}

std::optional<ValueId> transposeRule(Graph &g, const Node &n) {
  ValueId x = n.inputs[0];
  auto perm = n.attrs.ints("perm");
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i)
    identity &= perm[i] == int64_t(i);
  if (identity)
    return x;
  if (g.node(x).op == Op::Transpose) {
    auto inner = g.node(x).attrs.ints("perm");
    std::vector<int64_t> composed(perm.size());
    for (size_t i = 0; i < perm.size(); ++i)
      composed[i] = inner[size_t(perm[i])];
    return g.add(Op::Transpose, {g.node(x).inputs[0]}, {{"perm", composed}});
  }
  return std::nullopt;
}

std::optional<ValueId> matmulRule(Graph &g, const Node &n) {
  auto isT = [&](ValueId v) {
    const Node &p = g.node(v);
    return p.op == Op::Transpose && p.attrs.ints("perm") == std::vector<int64_t>{1, 0};
  };
  if (!isT(n.inputs[0]) && !isT(n.inputs[1]))
    return std::nullopt;
  std::vector<ValueId> ins = n.inputs;
  Attrs a = n.attrs;
  for (int i = 0; i < 2; ++i)
    if (isT(ins[size_t(i)])) {
      ins[size_t(i)] = g.node(ins[size_t(i)]).inputs[0];
      const char *flag = i == 0 ? "transA" : "transB";
      if (a.b(flag))
        a = [&] {
          Attrs b;
          for (auto &[k, v] : a.items())
            if (k != flag)
              b.set(k, v);
          return b;
        }();
      else
        a.set(flag, true);
    }
  return g.add(Op::MatMul, ins, a);
}

} // namespace

Graph canonicalize(const Graph &g) {
  RuleTable rules;
  for (int i = 0; i < kNumOps; ++i) {
    if (isUnaryMath(Op(i)))
      rules[Op(i)] = unaryRule;
    if (isBinaryMath(Op(i)))
      rules[Op(i)] = binaryRule;
  }
  rules[Op::Reshape] = reshapeRule;
  rules[Op::Broadcast] = broadcastRule;
  rules[Op::Transpose] = transposeRule;
  rules[Op::MatMul] = matmulRule;
  return rewriteToFixedPoint(g, rules);
}

} // namespace graphc::passes
