// runtime/NonFinite.cpp - describing the first non-finite value of a step.
#include "runtime/NonFinite.h"

#include "ir/Printer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace graphc::runtime {

using namespace ir;

namespace {

/// Marks `v` and everything it is computed from.
void markAncestors(const Graph &g, ValueId v, std::vector<bool> &mark) {
  std::vector<ValueId> work{v};
  while (!work.empty()) {
    ValueId u = work.back();
    work.pop_back();
    if (mark[size_t(u)])
      continue;
    mark[size_t(u)] = true;
    for (ValueId in : g.node(u).inputs)
      work.push_back(in);
  }
}

/// Forward: what the loss and the output are computed from; backward: the
/// rest of what the flat gradient (flat_pack) is computed from; the
/// optimizer update: everything else.
std::string phaseOf(const Graph &g, ValueId v) {
  if (g.node(v).op == Op::Input)
    return "input";
  std::vector<bool> forward(size_t(g.size()), false), gradient(size_t(g.size()), false);
  for (const Output &o : g.outputs())
    if (o.name == "loss" || o.name == "output")
      markAncestors(g, o.value, forward);
  if (forward[size_t(v)])
    return "forward";
  for (ValueId u = 0; u < g.size(); ++u)
    if (g.node(u).op == Op::FlatPack)
      markAncestors(g, u, gradient);
  return gradient[size_t(v)] ? "backward" : "optimizer update";
}

} // namespace

int64_t firstNonFinite(const float *p, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]))
      return i;
  return -1;
}

NonFiniteReport nonFiniteAt(const Graph &g, ValueId v, int64_t element, float bad) {
  NonFiniteReport r;
  r.found = true;
  r.value = valueName(g, v);
  r.element = element;
  r.bad = bad;
  r.phase = phaseOf(g, v);
  r.group = g.node(v).group;
  if (r.group < 0 || r.group >= int(g.groups().size())) {
    r.group = -1;
    r.ops = {std::string(opName(g.node(v).op))};
    return r;
  }
  r.kind = g.groups()[size_t(r.group)].kind;
  r.reason = g.groups()[size_t(r.group)].reason;
  auto once = [](std::vector<std::string> &list, std::string s) {
    if (std::find(list.begin(), list.end(), s) == list.end())
      list.push_back(std::move(s));
  };
  for (ValueId u = 0; u < g.size(); ++u) {
    if (g.node(u).group != r.group)
      continue;
    once(r.ops, std::string(opName(g.node(u).op)));
    for (ValueId in : g.node(u).inputs)
      if (g.node(in).op == Op::Param)
        once(r.params, g.node(in).attrs.s("name"));
  }
  return r;
}

std::string NonFiniteReport::str() const {
  std::string contents = fmt::format("{}", fmt::join(ops, ", "));
  if (!params.empty())
    contents += fmt::format("; reads {}", fmt::join(params, ", "));
  std::string where = group >= 0 ? fmt::format("kernel group @k{} {} \"{}\"", group, kind, reason)
                      : phase == "input" ? std::string("the step's input")
                                         : std::string("a value outside any kernel group");
  return fmt::format("{} ({}: {}): {} element {} = {}", where, phase, contents, value, element,
                     bad);
}

} // namespace graphc::runtime
