// ir/Graph.cpp - node creation with type inference and deduplication.
#include "ir/Graph.h"

#include "ir/ShapeInference.h"

namespace graphc::ir {
namespace {

std::string dedupKey(const Node &n) {
  std::string key = std::string(opName(n.op)) + "|" + str(n.type) + "|";
  for (ValueId v : n.inputs)
    key += std::to_string(v) + ",";
  return key + "|" + str(n.attrs);
}

} // namespace

ValueId Graph::append(Node n) {
  if (n.op != Op::Input) {
    std::string key = dedupKey(n);
    auto [it, fresh] = dedup_.try_emplace(key, ValueId(nodes_.size()));
    if (!fresh)
      return it->second;
  }
  nodes_.push_back(std::move(n));
  return ValueId(nodes_.size() - 1);
}

Expected<ValueId> Graph::tryAdd(Op op, std::vector<ValueId> inputs, Attrs attrs) {
  std::vector<Type> types;
  for (ValueId v : inputs) {
    GRAPHC_CHECK(v >= 0 && v < size(), "operand %{} of {} is undefined", v, opName(op));
    types.push_back(type(v));
  }
  auto t = inferType(op, types, attrs);
  if (!t)
    return t.diag();
  return append(Node{op, *t, std::move(inputs), std::move(attrs)});
}

ValueId Graph::add(Op op, std::vector<ValueId> inputs, Attrs attrs) {
  auto v = tryAdd(op, std::move(inputs), std::move(attrs));
  GRAPHC_CHECK(bool(v), "{}", v ? "" : v.diag().message);
  return *v;
}

ValueId Graph::addTyped(Op op, Type type, std::vector<ValueId> inputs, Attrs attrs) {
  return append(Node{op, std::move(type), std::move(inputs), std::move(attrs)});
}

ValueId Graph::input(const std::string &name, Type type) {
  return addTyped(Op::Input, std::move(type), {}, {{"name", name}});
}

ValueId Graph::constant(double value, Type type) {
  return addTyped(Op::Constant, std::move(type), {}, {{"value", value}});
}

ValueId Graph::output(const std::string &name) const {
  for (const Output &o : outputs_)
    if (o.name == name)
      return o.value;
  return -1;
}

ValueId Graph::findInput(const std::string &name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].op == Op::Input && nodes_[i].attrs.s("name") == name)
      return ValueId(i);
  return -1;
}

std::vector<ValueId> Graph::inputs() const {
  std::vector<ValueId> out;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].op == Op::Input)
      out.push_back(ValueId(i));
  return out;
}

bool readsGroupMemberFromMemory(const Graph &g, ValueId v) {
  const Node &n = g.node(v);
  if (n.op != Op::MaxPool2d || n.group < 0)
    return false;
  for (ValueId m = v - 1; m >= 0 && g.node(m).group == n.group; --m) // groups are contiguous
    if (g.node(m).op == Op::Conv2d)
      return true;
  return false;
}

bool isRowReduce(const Graph &g, ValueId v) {
  const Node &n = g.node(v);
  if (opClass(n.op) != OpClass::Reduce)
    return false;
  auto axes = n.attrs.ints("axes");
  int rank = g.type(n.inputs[0]).rank();
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == rank - 1) && n.attrs.b("keepdims") &&
         rank >= 1;
}

} // namespace graphc::ir
