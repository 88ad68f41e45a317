// passes/Fusion.cpp - kernel-group formation, then a reorder that makes each
// group contiguous.
#include "passes/Fusion.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace graphc::passes {

using namespace ir;

namespace {

bool pointwise(Op op) { return isPointwise(op); }

bool isScalar(const Type &t) { return t.shape.empty(); }

bool lastAxisReduce(const Graph &g, ValueId v) { return isRowReduce(g, v); }

class Fuser {
public:
  Fuser(const Graph &g, const FusionOptions &options)
      : g_(g), options_(options), grp_(size_t(g.size()), -1), seen_(size_t(g.size()), 0) {
    users_.resize(size_t(g.size()));
    for (ValueId v = 0; v < g.size(); ++v)
      for (ValueId i : g.node(v).inputs)
        if (users_[size_t(i)].empty() || users_[size_t(i)].back() != v)
          users_[size_t(i)].push_back(v);
    output_.assign(size_t(g.size()), false);
    for (const Output &o : g.outputs())
      output_[size_t(o.value)] = true;
  }

  FusionResult run() {
    gemmEpilogues();
    biasGradients();
    logSoftMaxNll();
    rowKernels();
    elementwiseChains();
    sinkIntoConsumers();
    reductionsIntoChains();
    poolsIntoChains();
    poolGradientsIntoChains();
    leftovers();
    std::vector<ValueId> map;
    Graph out = reorder(map);
    return {std::move(out), resolveNotes(map)};
  }

private:
  // --- groups -------------------------------------------------------------
  int newGroup(ValueId v, std::string kind, std::string reason) {
    kinds_.push_back({std::move(kind), std::move(reason)});
    members_.push_back({});
    int id = int(members_.size()) - 1;
    join(id, v);
    return id;
  }
  void join(int grp, ValueId v) {
    grp_[size_t(v)] = grp;
    members_[size_t(grp)].push_back(v);
    if (size_t(grp) >= lo_.size()) {
      lo_.resize(size_t(grp) + 1, v);
      hi_.resize(size_t(grp) + 1, v);
    }
    lo_[size_t(grp)] = std::min(lo_[size_t(grp)], v);
    hi_[size_t(grp)] = std::max(hi_[size_t(grp)], v);
  }
  bool free(ValueId v) const { return grp_[size_t(v)] < 0; }
  /// A placeholder for `v` in a note; resolved to its final number after
  /// the reorder renumbers the nodes.
  std::string name(ValueId v) const { return fmt::format("\x01{}\x02", v); }

  std::vector<std::string> resolveNotes(const std::vector<ValueId> &map) const {
    std::vector<std::string> out;
    for (const std::string &note : notes_) {
      std::string text;
      for (size_t i = 0; i < note.size(); ++i) {
        if (note[i] != '\x01') {
          text += note[i];
          continue;
        }
        size_t end = note.find('\x02', i);
        ValueId v = std::stoi(note.substr(i + 1, end - i - 1));
        text += fmt::format("%{} ({})", map[size_t(v)], opName(g_.node(v).op));
        i = end;
      }
      out.push_back(text);
    }
    return out;
  }

  /// Whether adding `v` to group `grp` keeps the group graph acyclic: no path
  /// may leave the group and come back into it through an outside node.
  ///
  /// Every group has that property already (it starts as one node and grows
  /// only through this check), so a new such path must start or end at `v`:
  /// from v through outside nodes into the group, or from the group through
  /// outside nodes into v. Node ids are a topological order, so the first
  /// search stops above the group's last node and the second below its
  /// first: the cost is the span of the group, not the size of the graph.
  bool acyclicWith(int grp, ValueId v) {
    const ValueId lo = std::min(lo_[size_t(grp)], v), hi = std::max(hi_[size_t(grp)], v);
    auto inside = [&](ValueId w) { return grp_[size_t(w)] == grp || w == v; };
    auto reaches = [&](bool forward) {
      auto next = [&](ValueId u) -> const std::vector<ValueId> & {
        return forward ? users_[size_t(u)] : g_.node(u).inputs;
      };
      ++stamp_;
      std::vector<ValueId> stack;
      for (ValueId w : next(v))
        if (!inside(w))
          stack.push_back(w);
      while (!stack.empty()) {
        ValueId u = stack.back();
        stack.pop_back();
        if (seen_[size_t(u)] == stamp_ || (forward ? u > hi : u < lo))
          continue;
        seen_[size_t(u)] = stamp_;
        for (ValueId w : next(u)) {
          if (inside(w))
            return true;
          stack.push_back(w);
        }
      }
      return false;
    };
    return !reaches(true) && !reaches(false);
  }

  bool tryJoin(int grp, ValueId v, const char *why) {
    if (!acyclicWith(grp, v)) {
      notes_.push_back(fmt::format("{} not fused into {} group of {}: it would "
                                   "make the kernel order cyclic ({})",
                                   name(v), kinds_[size_t(grp)].kind,
                                   name(members_[size_t(grp)][0]), why));
      return false;
    }
    join(grp, v);
    return true;
  }

  // --- 1. GEMM epilogues ----------------------------------------------------
  void gemmEpilogues() {
    for (ValueId m = 0; m < g_.size(); ++m) {
      Op op = g_.node(m).op;
      if ((op != Op::MatMul && op != Op::Conv2d) || !free(m))
        continue;
      const Shape &shape = g_.type(m).shape;
      int grp = newGroup(m, op == Op::MatMul ? "gemm" : "conv", "");
      std::vector<std::string> epi;
      ValueId tail = m;
      while (true) {
        const auto &us = users_[size_t(tail)];
        if (output_[size_t(tail)] || us.size() != 1) {
          if (tail != m && (output_[size_t(tail)] || us.size() > 1))
            notes_.push_back(
                fmt::format("epilogue of {} ends at {}: {}", name(m), name(tail),
                            output_[size_t(tail)]
                                ? std::string("its result is a graph output and is stored")
                                : fmt::format("its result has {} uses and is stored", us.size())));
          break;
        }
        ValueId c = us[0];
        if (!pointwise(g_.node(c).op) || !free(c) || g_.type(c).shape != shape)
          break;
        if (!tryJoin(grp, c, "epilogue"))
          break;
        epi.push_back(describeEpilogue(c, tail, shape));
        for (ValueId p : g_.node(c).inputs)
          if (p != tail && pointwise(g_.node(p).op) && free(p) && users_[size_t(p)].size() == 1 &&
              !output_[size_t(p)] && g_.type(p).shape == shape)
            tryJoin(grp, p, "epilogue operand");
        tail = c;
      }
      kinds_[size_t(grp)].reason = epi.empty()
                                       ? std::string("matrix product")
                                       : fmt::format("{} as {} epilogue", fmt::join(epi, ", then "),
                                                     op == Op::MatMul ? "GEMM" : "convolution");
    }
  }

  std::string describeEpilogue(ValueId c, ValueId tail, const Shape &shape) {
    const Node &n = g_.node(c);
    if (n.op == Op::Add)
      for (ValueId p : n.inputs)
        if (p != tail && g_.type(p).shape != shape)
          return "bias add";
    if (n.op == Op::Relu)
      return "ReLU";
    if (n.op == Op::Select && g_.node(n.inputs[0]).op == Op::Greater)
      return "ReLU mask of the gradient";
    return std::string(opName(n.op));
  }

  // --- 2. bias gradients ----------------------------------------------------
  void biasGradients() {
    for (ValueId r = 0; r < g_.size(); ++r) {
      const Node &n = g_.node(r);
      if (n.op != Op::ReduceSum || !free(r) || n.attrs.b("keepdims") ||
          n.attrs.ints("axes") != std::vector<int64_t>{0} || g_.type(n.inputs[0]).rank() != 2)
        continue;
      ValueId dy = n.inputs[0];
      for (ValueId m : users_[size_t(dy)]) {
        const Node &mm = g_.node(m);
        if (mm.op != Op::MatMul || grp_[size_t(m)] < 0 || !mm.attrs.b("transA") ||
            mm.inputs[0] != dy)
          continue;
        int grp = grp_[size_t(m)];
        if (tryJoin(grp, r, "bias gradient")) {
          std::string &reason = kinds_[size_t(grp)].reason;
          reason = (reason == "matrix product" ? "weight gradient" : reason) +
                   " with the bias gradient (column sums of dY) alongside";
        }
        break;
      }
    }
  }

  // --- 3. LogSoftMax + ClassNLL forward ---------------------------------------
  void logSoftMaxNll() {
    for (ValueId v = 0; v < g_.size(); ++v) {
      const Node &n = g_.node(v);
      if (n.op != Op::NllLoss || !free(v))
        continue;
      ValueId lsm = n.inputs[0];
      if (g_.node(lsm).op != Op::LogSoftMax || !free(lsm)) {
        notes_.push_back(fmt::format("{} not fused with its log-probabilities {}: "
                                     "they are not a free LogSoftMax",
                                     name(v), name(lsm)));
        continue;
      }
      int grp = newGroup(lsm, "logsoftmax_nll",
                         "LogSoftMax + ClassNLL forward: row max, log-sum-exp, "
                         "gather, mean");
      tryJoin(grp, v, "loss");
    }
  }

  // --- 4. row kernels -------------------------------------------------------
  void rowKernels() {
    for (ValueId r = 0; r < g_.size(); ++r) {
      Op op = g_.node(r).op;
      bool rowOp = lastAxisReduce(g_, r) || op == Op::SoftMax || op == Op::LogSoftMax;
      if (!rowOp || !free(r))
        continue;
      const Shape rows = g_.type(g_.node(r).inputs[0]).shape;
      Shape reduced = rows;
      reduced.back() = 1;
      auto fits = [&](ValueId u) {
        const Type &t = g_.type(u);
        bool row = lastAxisReduce(g_, u) || g_.node(u).op == Op::SoftMax ||
                   g_.node(u).op == Op::LogSoftMax;
        return (pointwise(g_.node(u).op) || row) &&
               (t.shape == rows || t.shape == reduced || isScalar(t));
      };
      int grp = newGroup(r, "row", "");
      grow(grp, fits, "row kernel");
      bool backward = false;
      for (ValueId m : members_[size_t(grp)])
        backward |= g_.node(m).op == Op::OneHot;
      kinds_[size_t(grp)].reason = backward
                                       ? "LogSoftMax + ClassNLL backward: (exp(logp) - onehot) / N "
                                         "with its row sum, in one pass over the rows"
                                       : "row reductions with the elementwise ops around them";
    }
  }

  /// Grows `grp` with free neighbours accepted by `fits` until it stops.
  template <class F> void grow(int grp, F fits, const char *why) {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < members_[size_t(grp)].size(); ++i) {
        ValueId m = members_[size_t(grp)][i];
        std::vector<ValueId> near = users_[size_t(m)];
        near.insert(near.end(), g_.node(m).inputs.begin(), g_.node(m).inputs.end());
        for (ValueId u : near)
          if (free(u) && !isFree(g_.node(u).op) && fits(u) && tryJoin(grp, u, why))
            changed = true;
      }
    }
  }

  // --- 5. elementwise chains --------------------------------------------------
  void elementwiseChains() {
    for (ValueId v = 0; v < g_.size(); ++v) {
      if (!free(v) || !pointwise(g_.node(v).op) || isScalar(g_.type(v)))
        continue;
      const Shape shape = g_.type(v).shape;
      int grp = newGroup(v, "elementwise", "");
      grow(
          grp,
          [&](ValueId u) {
            return pointwise(g_.node(u).op) && (g_.type(u).shape == shape || isScalar(g_.type(u)));
          },
          "elementwise chain");
      bool update = false;
      for (const Output &o : g_.outputs())
        update |= o.name == "params" && grp_[size_t(o.value)] == grp;
      if (update)
        kinds_[size_t(grp)] = {"update",
                               "the whole optimizer update over the flat parameter buffer"};
      else
        describeChain(grp);
    }
  }
  void describeChain(int grp) {
    kinds_[size_t(grp)].reason =
        fmt::format("elementwise chain of {} ops over {}", members_[size_t(grp)].size(),
                    str(g_.type(members_[size_t(grp)][0]).shape));
  }

  // --- 5b. values recomputed where they are used ---------------------------------
  // A chain grows over every same-shape neighbour, so a forward chain takes
  // values that only the backward pass uses, computed from values the
  // forward pass stores anyway: BatchNorm's 2(x - mean) for its variance's
  // gradient, ReLU's mask `y > 0`. Stored, each costs a write and a read of
  // a whole activation and keeps it alive from forward to backward. Such a
  // value moves into the one chain that uses it, which computes it from its
  // inputs instead.
  void sinkIntoConsumers() {
    for (ValueId v = 0; v < g_.size(); ++v) {
      const int from = grp_[size_t(v)];
      if (from < 0 || kinds_[size_t(from)].kind != "elementwise" || output_[size_t(v)] ||
          users_[size_t(v)].empty())
        continue;
      const int to = grp_[size_t(users_[size_t(v)][0])];
      bool movable = to >= 0 && to != from && kinds_[size_t(to)].kind == "elementwise" &&
                     g_.type(members_[size_t(to)][0]).shape == g_.type(v).shape;
      for (ValueId u : users_[size_t(v)])
        movable &= grp_[size_t(u)] == to;
      // Each input the value reads must be stored already: from outside its
      // chain, or used outside the chain by something besides the value.
      for (ValueId i : g_.node(v).inputs) {
        if (!movable || isScalar(g_.type(i)) || grp_[size_t(i)] != from)
          continue;
        bool stored = output_[size_t(i)];
        for (ValueId u : users_[size_t(i)])
          stored |= u != v && grp_[size_t(u)] != from;
        movable = stored;
      }
      if (!movable)
        continue;
      auto &m = members_[size_t(from)];
      m.erase(std::find(m.begin(), m.end(), v));
      grp_[size_t(v)] = -1;
      if (m.empty() || !acyclicWith(to, v)) { // keep it where it was
        grp_[size_t(v)] = from;
        m.push_back(v);
        std::sort(m.begin(), m.end());
        continue;
      }
      join(to, v);
      describeChain(from);
      describeChain(to);
    }
  }

  // --- 5c. sums of a chain's values, in the chain's pass --------------------------
  // BatchNorm sums over the batch and the plane of each channel: the mean and
  // variance forward; the gradient's sum and its sum against the normalised
  // input backward. Each such sum of a chain's value joins the chain, so that
  // one pass computes the chain and all its sums, and a value that is only
  // summed is never stored (backward, that halves the traffic of each
  // BatchNorm). The sums of one group share their axes, which include the
  // last: a backend runs the group over the sums' outputs, each reading the
  // contiguous planes of its slice.
  void reductionsIntoChains() {
    if (!options_.reductions)
      return;
    std::vector<std::vector<int64_t>> groupAxes(members_.size());
    for (ValueId r = 0; r < g_.size(); ++r) {
      const Node &n = g_.node(r);
      if (!isSum(n.op) || !free(r) || n.attrs.b("keepdims") || lastAxisReduce(g_, r))
        continue;
      const ValueId x = n.inputs[0];
      const int grp = grp_[size_t(x)];
      const Shape &shape = g_.type(x).shape;
      if (grp < 0 || shape.size() < 2 ||
          (kinds_[size_t(grp)].kind != "elementwise" &&
           kinds_[size_t(grp)].kind != "elementwise_reduce"))
        continue;
      std::vector<int64_t> axes;
      for (int64_t a : n.attrs.ints("axes"))
        axes.push_back(a < 0 ? a + int64_t(shape.size()) : a);
      std::sort(axes.begin(), axes.end());
      // The last axis summed, some axis kept, and every member of the chain
      // over the same shape (no scalar bookkeeping riding along).
      if (axes.empty() || axes.back() != int64_t(shape.size()) - 1 || axes.size() == shape.size() ||
          (!groupAxes[size_t(grp)].empty() && groupAxes[size_t(grp)] != axes))
        continue;
      bool same = true;
      for (ValueId m : members_[size_t(grp)])
        same &=
            g_.type(m).shape == shape || (groupAxes[size_t(grp)] == axes && isSum(g_.node(m).op));
      if (!same || !tryJoin(grp, r, "sum of the chain"))
        continue;
      groupAxes[size_t(grp)] = axes;
      size_t sums = 0;
      for (ValueId m : members_[size_t(grp)])
        sums += g_.type(m).shape != shape;
      kinds_[size_t(grp)] = {"elementwise_reduce",
                             fmt::format("elementwise chain of {} ops over {} with {} sum{} of "
                                         "it, in one pass",
                                         members_[size_t(grp)].size() - sums, str(shape), sums,
                                         sums == 1 ? "" : "s")};
    }
  }

  // --- 5d. max pools and their gradients into the chains next to them ----------
  // Where a max pool's windows tile the planes of its input, a kernel can
  // take the pool, or its gradient, a plane at a time beside a chain that
  // runs over those planes, through a buffer of one plane.
  static constexpr int64_t kPoolPlaneLimit = 16384; ///< floats, the buffer of one plane

  /// Whether max pool or max-pool gradient `n` has windows that tile the
  /// planes of its input (stride = kernel, no padding; floor mode may leave
  /// the last rows and columns in none) of at most kPoolPlaneLimit floats.
  bool tilesPlanes(const Node &n) const {
    const Shape &in = g_.type(n.inputs[0]).shape;
    const auto k = n.attrs.ints("kernel"), st = n.attrs.ints("stride", {1, 1}),
               pad = n.attrs.ints("pad", {0, 0}), padEnd = n.attrs.ints("pad_end", {0, 0});
    return in.size() == 4 && st == k && !pad[0] && !pad[1] && !padEnd[0] && !padEnd[1] &&
           in[2] * in[3] <= kPoolPlaneLimit;
  }

  // Forward, BatchNorm's normalisation and ReLU make the pool's input in one
  // elementwise chain. The pool joins it: the kernel runs plane by plane,
  // the chain over a plane and then the windows over what it has just made,
  // instead of a second pass that reads the whole activation back. Where a
  // convolution and its epilogue (bias, ReLU) make the input, the pool joins
  // that group: the convolution finishes bands of whole windows' rows, and
  // pools each band while it is still in cache.
  void poolsIntoChains() {
    if (!options_.pools)
      return;
    for (ValueId v = 0; v < g_.size(); ++v) {
      const Node &n = g_.node(v);
      if (n.op != Op::MaxPool2d || !free(v) || !tilesPlanes(n))
        continue;
      const ValueId x = n.inputs[0];
      const int from = grp_[size_t(x)];
      if (from >= 0 && kinds_[size_t(from)].kind == "conv") {
        if (!tryJoin(from, v, "max pool"))
          continue;
        const auto k = n.attrs.ints("kernel");
        std::string &why = kinds_[size_t(from)].reason;
        why = fmt::format("{}, then its {}x{} max pool by bands of rows",
                          why == "matrix product" ? "convolution" : why, k[0], k[1]);
        continue;
      }
      if (from < 0 || kinds_[size_t(from)].kind != "elementwise")
        continue;
      bool same = true; // no scalar bookkeeping, nothing of another shape
      for (ValueId m : members_[size_t(from)])
        same &= g_.type(m).shape == g_.type(x).shape;
      if (!same || !tryJoin(from, v, "max pool"))
        continue;
      const auto k = n.attrs.ints("kernel");
      kinds_[size_t(from)] = {
          "elementwise_pool",
          fmt::format(
              "elementwise chain of {} ops over {}, then its {}x{} max pool, plane by plane",
              members_[size_t(from)].size() - 1, str(g_.type(x).shape), k[0], k[1])};
    }
  }

  // Backward, a max pool's gradient is read by one chain only: the ReLU mask
  // of the layer below and its bias or BatchNorm sums. Stored, it costs a
  // write and a read of a whole activation. Where that chain's sums run
  // plane by plane (their axes are the batch and the plane), the gradient
  // joins it: a backend computes each plane of it just before the chain's
  // pass over that plane.
  void poolGradientsIntoChains() {
    if (!options_.reductions || !options_.pools)
      return;
    for (ValueId v = 0; v < g_.size(); ++v) {
      const Node &n = g_.node(v);
      if (n.op != Op::MaxPool2dGrad || !free(v) || output_[size_t(v)] || users_[size_t(v)].empty())
        continue;
      const Shape &shape = g_.type(v).shape;
      if (!tilesPlanes(n))
        continue;
      const int to = grp_[size_t(users_[size_t(v)][0])];
      if (to < 0 || kinds_[size_t(to)].kind != "elementwise_reduce")
        continue;
      bool fits = true;
      for (ValueId u : users_[size_t(v)])
        fits &= grp_[size_t(u)] == to;
      for (ValueId m : members_[size_t(to)]) {
        if (!isSum(g_.node(m).op)) {
          fits &= g_.type(m).shape == shape;
          continue;
        }
        auto axes = g_.node(m).attrs.ints("axes");
        for (int64_t &a : axes)
          a = a < 0 ? a + 4 : a;
        std::sort(axes.begin(), axes.end());
        fits &= axes == std::vector<int64_t>{0, 2, 3};
      }
      if (!fits || !tryJoin(to, v, "max-pool gradient"))
        continue;
      kinds_[size_t(to)].reason =
          "max-pool gradient plane by plane, then the " + kinds_[size_t(to)].reason;
    }
  }

  // --- 6. what is left --------------------------------------------------------
  void leftovers() {
    // Scalar bookkeeping (the step counter) rides along with the last
    // elementwise kernel instead of costing a launch of its own.
    int host = -1;
    for (size_t k = 0; k < kinds_.size(); ++k)
      if (kinds_[k].kind == "update" || kinds_[k].kind == "elementwise")
        host = int(k);
    for (ValueId v = 0; v < g_.size(); ++v) {
      if (!free(v) || isFree(g_.node(v).op))
        continue;
      if (host >= 0 && pointwise(g_.node(v).op) && isScalar(g_.type(v)) &&
          tryJoin(host, v, "scalar"))
        continue;
      newGroup(v, std::string(opName(g_.node(v).op)), "no fusion rule applies");
    }
  }

  // --- reorder ----------------------------------------------------------------
  /// Kahn's algorithm over units (a group, or a single ungrouped node),
  /// always taking the ready unit with the smallest first node, so the
  /// order stays close to the original.
  Graph reorder(std::vector<ValueId> &map) {
    int n = g_.size();
    auto unit = [&](ValueId v) {
      return grp_[size_t(v)] >= 0 ? grp_[size_t(v)] : int(members_.size()) + v;
    };
    int units = int(members_.size()) + n;
    std::vector<int> pending(size_t(units), 0);
    std::vector<std::vector<ValueId>> nodes(static_cast<size_t>(units));
    for (ValueId v = 0; v < n; ++v)
      nodes[size_t(unit(v))].push_back(v);
    std::vector<std::set<int>> next(static_cast<size_t>(units));
    for (ValueId v = 0; v < n; ++v)
      for (ValueId i : g_.node(v).inputs)
        if (unit(i) != unit(v) && next[size_t(unit(i))].insert(unit(v)).second)
          ++pending[size_t(unit(v))];
    std::set<std::pair<ValueId, int>> ready;
    for (int u = 0; u < units; ++u)
      if (!nodes[size_t(u)].empty() && pending[size_t(u)] == 0)
        ready.insert({nodes[size_t(u)][0], u});
    Graph out(g_.name());
    map.assign(size_t(n), -1);
    while (!ready.empty()) {
      int u = ready.begin()->second;
      ready.erase(ready.begin());
      int newGroupId = -1;
      if (u < int(members_.size())) {
        newGroupId = out.addGroup({kinds_[size_t(u)].kind, kinds_[size_t(u)].reason});
      }
      for (ValueId v : nodes[size_t(u)]) {
        Node copy = g_.node(v);
        for (ValueId &i : copy.inputs)
          i = map[size_t(i)];
        size_t before = size_t(out.size());
        map[size_t(v)] = out.addTyped(copy.op, copy.type, copy.inputs, copy.attrs);
        GRAPHC_CHECK(size_t(out.size()) == before + 1, "fusion input must be deduplicated ({})",
                     name(v));
        out.node(map[size_t(v)]).group = newGroupId;
      }
      for (int w : next[size_t(u)])
        if (--pending[size_t(w)] == 0)
          ready.insert({nodes[size_t(w)][0], w});
    }
    GRAPHC_CHECK(out.size() == n, "kernel groups form a cycle");
    for (const Output &o : g_.outputs())
      out.addOutput(o.name, map[size_t(o.value)]);
    return out;
  }

  const Graph &g_;
  FusionOptions options_;
  std::vector<int> grp_;
  std::vector<std::vector<ValueId>> users_;
  std::vector<bool> output_;
  std::vector<KernelGroup> kinds_;
  std::vector<std::vector<ValueId>> members_;
  std::vector<ValueId> lo_, hi_; ///< each group's first and last node
  std::vector<uint32_t> seen_;   ///< == stamp_: visited by the current search
  uint32_t stamp_ = 0;
  std::vector<std::string> notes_;
};

} // namespace

FusionResult fuse(const Graph &g, const FusionOptions &options) { return Fuser(g, options).run(); }

} // namespace graphc::passes
