// ir/Verifier.cpp - graph invariants.
#include "ir/Verifier.h"

#include "ir/Printer.h"
#include "ir/ShapeInference.h"

#include <fmt/format.h>

#include <set>

namespace graphc::ir {

Status verify(const Graph &g) {
  auto bad = [&](ValueId v, const std::string &msg) {
    return error(
        fmt::format("verifier: node {} ({}): {}", valueName(g, v), opName(g.node(v).op), msg));
  };
  std::set<std::string> inputNames;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g.node(v);
    if (opArity(n.op) >= 0 && int(n.inputs.size()) != opArity(n.op))
      return bad(v, fmt::format("has {} operands, expects {}", n.inputs.size(), opArity(n.op)));
    for (ValueId in : n.inputs)
      if (in < 0 || in >= v)
        return bad(v, fmt::format("operand %{} is not defined before use", in));
    if (n.group < -1 || n.group >= int(g.groups().size()))
      return bad(v, fmt::format("kernel group {} does not exist", n.group));
    if (n.op == Op::Input) {
      std::string name = n.attrs.s("name");
      if (name.empty())
        return bad(v, "input without a name");
      if (!inputNames.insert(name).second)
        return bad(v, fmt::format("input name \"{}\" used twice", name));
      continue;
    }
    if (n.op == Op::Constant) {
      if (!n.attrs.has("value"))
        return bad(v, "constant without a value");
      continue;
    }
    std::vector<Type> in;
    for (ValueId i : n.inputs)
      in.push_back(g.type(i));
    auto t = inferType(n.op, in, n.attrs);
    if (!t)
      return bad(v, t.diag().message);
    if (!(*t == n.type))
      return bad(v, fmt::format("type is {} but its operands give {}", str(n.type), str(*t)));
  }
  std::set<std::string> outNames;
  for (const Output &o : g.outputs()) {
    if (o.value < 0 || o.value >= g.size())
      return error(fmt::format("verifier: output {} refers to undefined %{}", o.name, o.value));
    if (!outNames.insert(o.name).second)
      return error(fmt::format("verifier: output name {} used twice", o.name));
  }
  return {};
}

} // namespace graphc::ir
