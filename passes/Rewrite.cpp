// passes/Rewrite.cpp - rebuild with DCE, CSE and a rule table.
#include "passes/Rewrite.h"

#include "ir/Printer.h"

namespace graphc::passes {

using namespace ir;

Graph rebuild(const Graph &g, const RuleTable &rules, bool dropUnusedInputs) {
  std::vector<bool> live(size_t(g.size()), false);
  for (const Output &o : g.outputs())
    live[size_t(o.value)] = true;
  for (ValueId v = g.size() - 1; v >= 0; --v) {
    if (g.node(v).op == Op::Input && !dropUnusedInputs)
      live[size_t(v)] = true;
    if (live[size_t(v)])
      for (ValueId i : g.node(v).inputs)
        live[size_t(i)] = true;
  }
  Graph out(g.name());
  for (const KernelGroup &k : g.groups())
    out.addGroup(k);
  std::vector<ValueId> map(size_t(g.size()), -1);
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!live[size_t(v)])
      continue;
    Node n = g.node(v);
    for (ValueId &i : n.inputs)
      i = map[size_t(i)];
    auto it = rules.find(n.op);
    if (it != rules.end())
      if (auto r = it->second(out, n)) {
        map[size_t(v)] = *r;
        continue;
      }
    ValueId nv = out.addTyped(n.op, n.type, n.inputs, n.attrs);
    out.node(nv).group = n.group;
    map[size_t(v)] = nv;
  }
  for (const Output &o : g.outputs())
    out.addOutput(o.name, map[size_t(o.value)]);
  return out;
}

Graph rewriteToFixedPoint(const Graph &g, const RuleTable &rules, int maxRounds) {
  Graph cur = rebuild(g, rules);
  std::string text = print(cur);
  for (int round = 1; round < maxRounds; ++round) {
    Graph next = rebuild(cur, rules);
    std::string nextText = print(next);
    if (nextText == text)
      break;
    cur = std::move(next);
    text = std::move(nextText);
  }
  return cur;
}

} // namespace graphc::passes
