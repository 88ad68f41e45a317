// ir/Graph.h - the one IR: an SSA graph of typed tensor nodes.
//
// A `Graph` owns its nodes in a vector; a value is the index of the node that
// defines it, and operands always come earlier (SSA in topological order).
// Nodes are created through `add`, which infers and checks the result type
// (ir/ShapeInference.h) and deduplicates pure nodes, so an identical
// expression built twice is one node (CSE for free). Graphs are append-only:
// passes build a new graph instead of editing one in place.
//
// Fusion marks nodes with a kernel group; the printer shows each group as a
// `kernel @kN "reason" { ... }` block and the backends compile one kernel per
// group.
#pragma once

#include "ir/Attrs.h"
#include "ir/Error.h"
#include "ir/Op.h"
#include "ir/Type.h"

#include <string>
#include <unordered_map>
#include <vector>

namespace graphc::ir {

using ValueId = int32_t;

struct Node {
  Op op;
  Type type;
  std::vector<ValueId> inputs;
  Attrs attrs;
  int group = -1; ///< kernel group index, or -1 when not fused
};

/// A set of nodes compiled as one kernel, and why they were fused.
struct KernelGroup {
  std::string kind;   ///< e.g. "gemm", "elementwise", "logsoftmax_nll"
  std::string reason; ///< what fused and why, shown by the printer
};

/// A named graph result (`loss`, `output`, `params`, ...).
struct Output {
  std::string name;
  ValueId value;
  bool operator==(const Output &) const = default;
};

class Graph {
public:
  explicit Graph(std::string name = "main") : name_(std::move(name)) {}

  const std::string &name() const { return name_; }
  void setName(std::string name) { name_ = std::move(name); }

  /// Adds a node, inferring its type; a diagnostic when the operands do not fit.
  Expected<ValueId> tryAdd(Op op, std::vector<ValueId> inputs, Attrs attrs = {});
  /// Adds a node whose operands are known to fit (a failure is a graphc bug).
  ValueId add(Op op, std::vector<ValueId> inputs, Attrs attrs = {});
  /// Adds a node with an explicit type; used for sources and by the parser.
  ValueId addTyped(Op op, Type type, std::vector<ValueId> inputs, Attrs attrs);

  /// A run-time argument of the graph.
  ValueId input(const std::string &name, Type type);
  /// A scalar constant broadcast to `type` (default f32[]).
  ValueId constant(double value, Type type = {DType::F32, {}});

  const Node &node(ValueId v) const { return nodes_[size_t(v)]; }
  Node &node(ValueId v) { return nodes_[size_t(v)]; }
  const Type &type(ValueId v) const { return nodes_[size_t(v)].type; }
  int size() const { return int(nodes_.size()); }
  const std::vector<Node> &nodes() const { return nodes_; }

  void addOutput(const std::string &name, ValueId v) { outputs_.push_back({name, v}); }
  const std::vector<Output> &outputs() const { return outputs_; }
  std::vector<Output> &outputs() { return outputs_; }
  /// The output called `name`, or -1.
  ValueId output(const std::string &name) const;
  /// The input node called `name`, or -1.
  ValueId findInput(const std::string &name) const;
  /// All input nodes, in order of definition.
  std::vector<ValueId> inputs() const;

  int addGroup(KernelGroup g) {
    groups_.push_back(std::move(g));
    return int(groups_.size()) - 1;
  }
  const std::vector<KernelGroup> &groups() const { return groups_; }

private:
  ValueId append(Node n);

  std::string name_;
  std::vector<Node> nodes_;
  std::vector<Output> outputs_;
  std::vector<KernelGroup> groups_;
  std::unordered_map<std::string, ValueId> dedup_;
};

/// A reduction over the last axis with keepdims: a row kernel's building block.
bool isRowReduce(const Graph &g, ValueId v);

/// Whether node v reads its first input from memory although both are in
/// one kernel group: a max pool in a convolution's group, which pools the
/// bands of rows the convolution and its epilogue have stored. The memory
/// plan and the backends store such an input.
bool readsGroupMemberFromMemory(const Graph &g, ValueId v);

} // namespace graphc::ir
