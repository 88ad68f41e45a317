// ir/Dot.cpp - Graphviz output with kernel groups as clusters.
#include "ir/Dot.h"

#include "ir/Printer.h"

#include <fmt/format.h>

namespace graphc::ir {
namespace {

std::string escape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

const char *colour(const Graph &g, ValueId v) {
  const Node &n = g.node(v);
  if (n.op == Op::Param)
    return "#a6d96a"; // parameters: green
  if (n.op == Op::FlatPack)
    return "#fdae61"; // gradients: orange
  if (n.op == Op::Input) {
    std::string name = n.attrs.s("name");
    if (name == "params")
      return "#a6d96a";
    if (name.rfind("state.", 0) == 0 || name == "step")
      return "#c2a5cf"; // optimizer state: purple
    return "#abd9e9";   // data: blue
  }
  return "#ffffff";
}

/// The nodes, kernel-group clusters and edges of `g`, every id prefixed
/// with `p` so several graphs share one drawing.
std::string body(const Graph &g, const std::string &p) {
  std::string out;
  auto nodeLine = [&](ValueId v) {
    const Node &n = g.node(v);
    std::string label = fmt::format("{} = {}\\n{}", valueName(g, v), opName(n.op), str(n.type));
    if (n.op == Op::Param || n.op == Op::Input)
      label += "\\n" + escape(n.attrs.s("name"));
    return fmt::format("    {}n{} [label=\"{}\", fillcolor=\"{}\"];\n", p, v, label, colour(g, v));
  };
  for (size_t k = 0; k < g.groups().size(); ++k) {
    out += fmt::format("  subgraph cluster_{}k{} {{\n    label=\"@k{} {}: {}\";\n"
                       "    style=rounded; color=\"#2b83ba\"; fontsize=10;\n",
                       p, k, k, escape(g.groups()[k].kind), escape(g.groups()[k].reason));
    for (ValueId v = 0; v < g.size(); ++v)
      if (g.node(v).group == int(k))
        out += nodeLine(v);
    out += "  }\n";
  }
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).group < 0 && g.node(v).op != Op::Constant)
      out += nodeLine(v);
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId i : g.node(v).inputs)
      if (g.node(i).op != Op::Constant)
        out += fmt::format("  {0}n{1} -> {0}n{2};\n", p, i, v);
  for (const Output &o : g.outputs())
    out += fmt::format("  \"{0}out_{1}\" [label=\"{1}\", shape=ellipse];\n  {0}n{2} -> "
                       "\"{0}out_{1}\";\n",
                       p, o.name, o.value);
  return out;
}

std::string header(const std::string &name) {
  return fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n  node "
                     "[shape=box, style=filled, fontname=monospace, "
                     "fontsize=10];\n",
                     escape(name));
}

} // namespace

std::string toDot(const Graph &g) { return header(g.name()) + body(g, "") + "}\n"; }

std::string toDot(const std::vector<std::pair<std::string, const Graph *>> &graphs) {
  std::string out = header(graphs.empty() ? "" : graphs.front().second->name());
  for (size_t i = 0; i < graphs.size(); ++i)
    out += fmt::format("subgraph cluster_g{} {{\n  label=\"{}\"; style=dashed; "
                       "fontsize=14;\n{}}}\n",
                       i, escape(graphs[i].first), body(*graphs[i].second, fmt::format("g{}", i)));
  return out + "}\n";
}

} // namespace graphc::ir
