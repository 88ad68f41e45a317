// ir/Printer.cpp - graph to textual IR.
#include "ir/Printer.h"

#include <fmt/format.h>

namespace graphc::ir {
namespace {

bool isIdentifier(const std::string &s) {
  if (s.empty() || !(std::isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (char c : s)
    if (!(std::isalnum((unsigned char)c) || c == '_'))
      return false;
  return true;
}

} // namespace

std::string valueName(const Graph &g, ValueId v) {
  if (v < 0 || v >= g.size()) // a broken graph must still print
    return "%" + std::to_string(v);
  const Node &n = g.node(v);
  if (n.op == Op::Input) {
    // An input is %NAME when NAME is an identifier and no earlier input has
    // it; a second input of that name (which the verifier refuses) keeps its
    // number, so the text still parses (found by fuzzing the IR parser).
    std::string name = n.attrs.s("name");
    if (isIdentifier(name) && g.findInput(name) == v)
      return "%" + name;
  }
  return "%" + std::to_string(v);
}

std::string printNode(const Graph &g, ValueId v) {
  const Node &n = g.node(v);
  std::string line = valueName(g, v) + " = " + std::string(opName(n.op));
  for (size_t i = 0; i < n.inputs.size(); ++i)
    line += (i ? ", " : " ") + valueName(g, n.inputs[i]);
  if (!n.attrs.empty())
    line += " " + str(n.attrs);
  return line + " : " + str(n.type);
}

std::string print(const Graph &g) {
  std::string out = "graph @" + g.name() + " {\n";
  int open = -1;
  for (ValueId v = 0; v < g.size(); ++v) {
    int grp = g.node(v).group;
    if (grp != open && open >= 0) {
      out += "  }\n";
      open = -1;
    }
    if (grp >= 0 && grp != open) {
      KernelGroup k{"?", "no such kernel group"};
      if (grp < int(g.groups().size()))
        k = g.groups()[size_t(grp)];
      out += fmt::format("  kernel @k{} {} {} {{\n", grp, k.kind, str(AttrValue(k.reason)));
      open = grp;
    }
    out += (open >= 0 ? "    " : "  ") + printNode(g, v) + "\n";
  }
  if (open >= 0)
    out += "  }\n";
  out += "  return";
  for (size_t i = 0; i < g.outputs().size(); ++i)
    out += fmt::format("{} {} = {}", i ? "," : "", g.outputs()[i].name,
                       valueName(g, g.outputs()[i].value));
  return out + "\n}\n";
}

} // namespace graphc::ir
