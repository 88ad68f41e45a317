// codegen/KernelPlan.cpp - classifying kernel groups.
#include "codegen/KernelPlan.h"

#include <set>

namespace graphc::codegen {

using namespace ir;

std::vector<bool> storedValues(const Graph &g) {
  std::vector<bool> st(size_t(g.size()), false);
  auto free = [&](ValueId v) {
    return g.node(v).op == Op::Constant || g.node(v).op == Op::BatchSize;
  };
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g.node(v);
    if (isFree(n.op) && !free(v))
      st[size_t(v)] = true; // inputs and views: the host points at them
    if (readsGroupMemberFromMemory(g, v))
      st[size_t(n.inputs[0])] = true;
    if (n.op == Op::BatchSize)
      continue; // it reads its input's shape, never its values
    for (ValueId i : n.inputs)
      if ((g.node(i).group < 0 || g.node(i).group != n.group) && !free(i))
        st[size_t(i)] = true;
  }
  for (const Output &o : g.outputs())
    st[size_t(o.value)] = true;
  return st;
}

namespace {

KernelPlan plan(const Graph &g, const std::vector<bool> &stored, int group,
                std::vector<ValueId> members) {
  KernelPlan k;
  k.group = group;
  k.members = std::move(members);
  for (ValueId v : k.members)
    if (g.node(v).op == Op::MatMul)
      k.matmul = v;
  if (k.matmul >= 0) {
    const Node &m = g.node(k.matmul);
    k.kind = KernelKind::Gemm;
    k.domain = m.type;
    k.a = m.inputs[0];
    k.b = m.inputs[1];
    k.transA = m.attrs.b("transA");
    k.transB = m.attrs.b("transB");
    for (ValueId v : k.members) {
      if (v == k.matmul)
        continue;
      if (g.node(v).op == Op::ReduceSum && g.type(v).shape != m.type.shape)
        k.colsum = v;
      else
        k.epilogue.push_back(v);
    }
    // C: the product's own buffer when it is stored, else the first stored
    // epilogue result of the product's shape.
    if (stored[size_t(k.matmul)])
      k.c = k.matmul;
    for (ValueId v : k.epilogue)
      if (k.c < 0 && stored[size_t(v)] && g.type(v).shape == m.type.shape)
        k.c = v;
    GRAPHC_CHECK(k.c >= 0, "GEMM group k{} stores nothing of shape {}", group, str(m.type.shape));
    return k;
  }
  for (ValueId v : k.members) {
    Op op = g.node(v).op;
    if (op == Op::LogSoftMax || op == Op::SoftMax || op == Op::NllLoss || isRowReduce(g, v)) {
      k.kind = KernelKind::Rows;
      k.parallel = false;
      k.domain = {DType::F32, g.type(g.node(v).inputs[0]).shape};
      return k;
    }
  }
  k.kind = KernelKind::Range;
  k.domain = {DType::F32, {}};
  for (ValueId v : k.members)
    if (!g.type(v).shape.empty())
      k.domain.shape = g.type(v).shape;
  std::set<ValueId> inGroup(k.members.begin(), k.members.end());
  for (ValueId v : k.members)
    if (g.node(v).op == Op::MaxPool2d && inGroup.count(g.node(v).inputs[0])) {
      k.poolAfter = v;
      k.domain.shape = g.type(g.node(v).inputs[0]).shape;
      for (ValueId m : k.members)
        GRAPHC_CHECK(m == v || ((isPointwise(g.node(m).op) || g.node(m).op == Op::Conv2d) &&
                                g.type(m).shape == k.domain.shape),
                     "{} {} in the group k{} of a chain and its max pool", opName(g.node(m).op),
                     str(g.type(m).shape), group);
    }
  for (ValueId v : k.members) {
    const Node &n = g.node(v);
    if (isSum(n.op) && inGroup.count(n.inputs[0])) {
      k.reduceOver = g.type(n.inputs[0]).shape;
      k.domain.shape = n.type.shape;
    }
  }
  for (ValueId v : k.members) {
    const Node &n = g.node(v);
    const bool sum = isSum(n.op);
    if (!k.reduceOver.empty() && n.op == Op::MaxPool2dGrad && n.type.shape == k.reduceOver &&
        k.poolGrad < 0) {
      k.poolGrad = v;
      continue;
    }
    GRAPHC_CHECK(k.reduceOver.empty() ||
                     (sum ? n.type.shape == k.domain.shape && inGroup.count(n.inputs[0])
                          : isPointwise(n.op) && n.type.shape == k.reduceOver),
                 "{} {} in the group k{} of sums over {}", opName(n.op), str(n.type.shape), group,
                 str(k.reduceOver));
    if (!k.reduceOver.empty())
      (sum ? k.sums : k.chain).push_back(v);
  }
  for (ValueId v : k.members) {
    Op op = g.node(v).op;
    if (op == Op::Conv2d || op == Op::Conv2dGradInput || op == Op::Conv2dGradWeight)
      k.conv = v;
  }
  if (k.conv >= 0) {
    // As for a GEMM: C is the convolution's own buffer when stored, else
    // the first stored epilogue result of its shape.
    const Shape &shape = g.type(k.conv).shape;
    GRAPHC_CHECK(k.poolAfter < 0 || g.node(k.conv).op == Op::Conv2d,
                 "a max pool in the group k{} of a convolution's gradient", group);
    for (ValueId v : k.members)
      if (v != k.conv && v != k.poolAfter) {
        GRAPHC_CHECK(isPointwise(g.node(v).op) && g.type(v).shape == shape,
                     "{} {} in the convolution group k{}", opName(g.node(v).op),
                     str(g.type(v).shape), group);
        k.epilogue.push_back(v);
      }
    if (stored[size_t(k.conv)])
      k.c = k.conv;
    for (ValueId v : k.epilogue)
      if (k.c < 0 && stored[size_t(v)])
        k.c = v;
    GRAPHC_CHECK(k.c >= 0, "convolution group k{} stores nothing of shape {}", group, str(shape));
  }
  return k;
}

} // namespace

std::vector<KernelPlan> planKernels(const Graph &g, const std::vector<bool> &stored) {
  std::vector<KernelPlan> out;
  int grp = -1;
  std::vector<ValueId> members;
  auto flush = [&] {
    if (grp >= 0)
      out.push_back(plan(g, stored, grp, members));
    members.clear();
  };
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node &n = g.node(v);
    if (n.group != grp) {
      flush();
      grp = n.group;
    }
    if (n.group >= 0) {
      members.push_back(v);
    } else if (n.op == Op::FlatPack) {
      KernelPlan k;
      k.kind = KernelKind::Pack;
      k.domain = n.type;
      k.parallel = false;
      k.pack = v;
      out.push_back(k);
    }
  }
  flush();
  return out;
}

} // namespace graphc::codegen
