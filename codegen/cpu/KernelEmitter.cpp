// codegen/cpu/KernelEmitter.cpp - range, row and GEMM-epilogue kernels.
#include "codegen/cpu/KernelEmitter.h"

#include "codegen/cpu/Emitter.h"
#include "codegen/cpu/GatherOps.h"

#include <fmt/format.h>

#include <map>
#include <set>

namespace graphc::codegen::cpu {

using namespace ir;

namespace {

class GroupEmitter {
public:
  GroupEmitter(Emitter &e, std::string prefix) : e_(e), prefix_(std::move(prefix)) {}

  KernelInfo emit(const KernelPlan &plan) {
    plan_ = plan;
    grp_ = plan.group;
    members_ = plan.members;
    inGroup_ = std::set<ValueId>(members_.begin(), members_.end());
    switch (plan.kind) {
    case KernelKind::Gemm: return gemm();
    case KernelKind::Rows: return rows();
    case KernelKind::Range:
      if (plan_.conv >= 0)
        return conv();
      if (!plan_.reduceOver.empty())
        return chainSums();
      if (auto k = poolGradByWindow())
        return *k;
      if (plan_.poolAfter >= 0)
        return chainThenPool();
      return range();
    case KernelKind::Pack: return {plan, "", {}};
    }
    return {plan, "", {}};
  }

private:
  const Graph &g() const { return e_.g; }
  std::string name(const char *suffix) const {
    return fmt::format("{}k{}{}", prefix_, grp_, suffix);
  }
  bool isRowReduce(ValueId v) const { return ir::isRowReduce(g(), v); }

  /// Operand `v` of pointwise node `user` at element e of `domain`.
  llvm::Value *operand(ValueId user, ValueId v, const Shape &domain, llvm::Value *e,
                       std::map<ValueId, llvm::Value *> &vals) {
    auto it = vals.find(v);
    if (it != vals.end())
      return it->second;
    auto stream = streams_.find(v);
    if (stream != streams_.end())
      return e_.load(v, e_.b.CreateSub(e, stream->second));
    return e_.operandOf(user, v, domain, e);
  }

  // --- range kernels ---------------------------------------------------------

  /// The operands `nodes` read from outside the kernel by broadcast:
  /// neither constants nor the batch size nor values of the domain's shape.
  std::vector<ValueId> broadcastOperands(const std::vector<ValueId> &nodes,
                                         const Shape &domain) const {
    std::set<ValueId> out;
    for (ValueId v : nodes)
      for (ValueId o : g().node(v).inputs) {
        const Node &on = g().node(o);
        if (!inGroup_.count(o) && on.op != Op::Constant && on.op != Op::BatchSize &&
            on.type.shape != domain)
          out.insert(o);
      }
    return {out.begin(), out.end()};
  }

  /// Whether `nodes` may run split into runs of their domain: all pointwise,
  /// and no one_hot (which reads its labels by row).
  bool runsSplit(const std::vector<ValueId> &nodes) const {
    return std::all_of(nodes.begin(), nodes.end(), [&](ValueId v) {
      return isPointwise(g().node(v).op) && g().node(v).op != Op::OneHot;
    });
  }

  /// How many consecutive elements of `domain` every one of `operands`
  /// stays the same over: the product of the trailing dimensions where each
  /// has size 1 ([C,1,1] over [N,C,H,W]: H*W), so that a run of them is one
  /// load per operand and plain streams for the rest, which LLVM
  /// vectorises. 1 when some operand changes along the last dimension, or
  /// `nodes` are not all pointwise (one_hot reads its labels by row).
  int64_t constantRun(const std::vector<ValueId> &nodes, const Shape &domain,
                      const std::vector<ValueId> &operands) const {
    if (!runsSplit(nodes))
      return 1;
    int64_t run = 0; // no operand yet
    for (ValueId o : operands) {
      const Shape &from = g().type(o).shape;
      const size_t lead = domain.size() - std::min(domain.size(), from.size());
      int64_t r = 1;
      for (size_t d = domain.size(); d-- > 0;) {
        const int64_t f = d >= lead && d - lead < from.size() ? from[d - lead] : 1;
        if (f != 1 || domain[d] == kBatch)
          break;
        r *= domain[d];
      }
      run = run == 0 ? r : std::min(run, r); // suffix products: the least divides the rest
    }
    return run;
  }

  /// How many consecutive elements of `domain` every one of `operands`
  /// runs along with, a whole copy of the operand per run: the product of
  /// the trailing dimensions where each operand has the domain's size, every
  /// dimension before them 1 (a bias [O] over [N,O]: O). Within a run,
  /// element e reads the operand at e minus the run's start, a stream LLVM
  /// vectorises, where the index was e mod O. 1 when the operands differ.
  int64_t streamRun(const std::vector<ValueId> &nodes, const Shape &domain,
                    const std::vector<ValueId> &operands) const {
    if (!runsSplit(nodes))
      return 1;
    int64_t run = 0;
    for (ValueId o : operands) {
      const Shape &from = g().type(o).shape;
      const size_t lead = domain.size() - std::min(domain.size(), from.size());
      int64_t r = 1;
      size_t d = domain.size();
      for (; d > lead && from[d - 1 - lead] == domain[d - 1] && domain[d - 1] != kBatch; --d)
        r *= domain[d - 1];
      for (; d > lead; --d)
        if (from[d - 1 - lead] != 1)
          return 1;
      if (run != 0 && r != run)
        return 1;
      run = r;
    }
    return run;
  }

  /// body(e) for e in [lo, hi), split into runs where that lets the
  /// broadcast operands be read without an index computation per element:
  /// where they stay the same over runs of elements (constantRun), each is
  /// loaded once per run into `hoisted`; where each run reads a whole copy
  /// of them (streamRun), as streams from the run's start (streams_).
  void streamLoop(const std::vector<ValueId> &nodes, llvm::Value *lo, llvm::Value *hi,
                  const Shape &domain, std::map<ValueId, llvm::Value *> &hoisted, bool parallel,
                  const std::function<void(llvm::Value *)> &body) {
    const std::vector<ValueId> operands = broadcastOperands(nodes, domain);
    const int64_t constant = operands.empty() ? 1 : constantRun(nodes, domain, operands);
    const int64_t stream =
        constant > 1 || operands.empty() ? 1 : streamRun(nodes, domain, operands);
    const int64_t run = std::max(constant, stream);
    if (run <= 1) {
      e_.loop(lo, hi, body, parallel);
      return;
    }
    auto &b = e_.b;
    llvm::Value *r = e_.i64(run);
    llvm::Value *first = b.CreateUDiv(lo, r);
    llvm::Value *last = b.CreateUDiv(b.CreateAdd(hi, e_.i64(run - 1)), r);
    e_.loop(first, last, [&](llvm::Value *k) {
      llvm::Value *start = b.CreateMul(k, r);
      llvm::Value *from = b.CreateSelect(b.CreateICmpSGT(lo, start), lo, start);
      llvm::Value *end = b.CreateAdd(start, r);
      llvm::Value *to = b.CreateSelect(b.CreateICmpSLT(hi, end), hi, end);
      for (ValueId o : operands)
        if (constant > 1)
          hoisted[o] = e_.external(o, domain, from);
        else
          streams_[o] = start;
      e_.loop(from, to, body, parallel);
      hoisted.clear();
      streams_.clear();
    });
  }

  KernelInfo range() {
    const Shape domain = plan_.domain.shape;
    KernelInfo k{plan_, name(""), {}};
    auto &b = e_.b;
    e_.begin(k.fn, {b.getInt64Ty(), b.getInt64Ty()});
    std::map<ValueId, llvm::Value *> hoisted;
    // A chain of pointwise ops reads element i of its operands (or an
    // operand's broadcast, which no member writes) and writes element i: its
    // iterations are independent even where an output is an input's buffer
    // (the optimizer's update of the parameters and their state, in place).
    // A gather op reads its operands anywhere, so its loop makes no promise.
    const bool parallel = std::all_of(members_.begin(), members_.end(),
                                      [&](ValueId v) { return isPointwise(g().node(v).op); });
    // Scalar members over a larger domain (the optimizer's step count beside
    // its update) read only scalars: each call computes them once, before
    // its loop, and the call whose range starts the domain stores them.
    // Computed in the loop and stored at element 0, they cost a store under
    // a condition per element, which LLVM vectorises as a masked scatter per
    // vector (microcoded on AMD: it made Adagrad's update 2-3x slower).
    std::map<ValueId, llvm::Value *> scalars;
    std::vector<ValueId> perElement;
    for (ValueId v : members_) {
      const Node &n = g().node(v);
      if (!n.type.shape.empty() || domain.empty() || !isPointwise(n.op)) {
        perElement.push_back(v);
        continue;
      }
      std::vector<llvm::Value *> in;
      for (ValueId o : n.inputs)
        in.push_back(operand(v, o, Shape{}, e_.i64(0), scalars));
      llvm::Value *x = e_.pointwise(v, in, e_.i64(0));
      scalars[v] = x;
      if (e_.stored[size_t(v)])
        e_.ifThen(b.CreateICmpEQ(e_.arg(2), e_.i64(0)), [&] { e_.store(v, e_.i64(0), x); });
    }
    streamLoop(perElement, e_.arg(2), e_.arg(3), domain, hoisted, parallel, [&](llvm::Value *i) {
      std::map<ValueId, llvm::Value *> vals = hoisted;
      vals.insert(scalars.begin(), scalars.end());
      for (ValueId v : perElement) {
        const Node &n = g().node(v);
        llvm::Value *x;
        if (isPointwise(n.op)) {
          std::vector<llvm::Value *> in;
          for (ValueId o : n.inputs)
            in.push_back(operand(v, o, domain, i, vals));
          x = e_.pointwise(v, in, i);
        } else {
          // A gather op (a convolution with its epilogue, say) computes the
          // element of the domain from operands outside the kernel.
          GRAPHC_CHECK(n.type.shape == domain, "gather op {} {} in a kernel over {}", opName(n.op),
                       str(n.type.shape), str(domain));
          for (ValueId o : n.inputs)
            GRAPHC_CHECK(!inGroup_.count(o), "gather op {} reads %{} of its own kernel",
                         opName(n.op), o);
          x = emitGather(e_, v, i);
        }
        vals[v] = x;
        if (e_.stored[size_t(v)])
          e_.store(v, i, x);
      }
    });
    e_.finish();
    return k;
  }

  /// The pointwise `chain` at element e of `domain` into `vals` (which may
  /// hold values already: hoisted operands), each stored where another
  /// kernel reads it.
  void computeChain(const std::vector<ValueId> &chain, const Shape &domain, llvm::Value *e,
                    std::map<ValueId, llvm::Value *> &vals) {
    for (ValueId v : chain) {
      std::vector<llvm::Value *> in;
      for (ValueId o : g().node(v).inputs)
        in.push_back(operand(v, o, domain, e, vals));
      vals[v] = e_.pointwise(v, in, e);
      if (e_.stored[size_t(v)])
        e_.store(v, e, vals[v]);
    }
  }

  /// An "elementwise_pool" group (KernelPlan::poolAfter): a chain over
  /// [N,C,H,W] and a max pool of one of its values whose windows tile the
  /// planes, run over the planes: the chain's pass over a plane (as range()
  /// runs it, storing what other kernels read and keeping the pool's input
  /// in a buffer of one plane), then each window's maximum from the buffer
  /// (the first of equal maxima, as maxPool keeps it).
  KernelInfo chainThenPool() {
    const Shape domain = plan_.domain.shape;
    const ValueId pool = plan_.poolAfter, in = g().node(pool).inputs[0];
    const Shape &ys = g().type(pool).shape;
    const auto k = g().node(pool).attrs.ints("kernel");
    const int64_t h = domain[2], w = domain[3], oh = ys[2], ow = ys[3], kh = k[0], kw = k[1];
    std::vector<ValueId> chain;
    for (ValueId v : members_)
      if (v != pool)
        chain.push_back(v);
    KernelInfo info{plan_, name(""), {}};
    info.iterations = Shape{domain[0], domain[1]};
    auto &b = e_.b;
    llvm::Type *f32 = b.getFloatTy();
    e_.begin(info.fn, {b.getInt64Ty(), b.getInt64Ty()});
    llvm::Value *plane = e_.slot(f32, "plane", unsigned(h * w));
    e_.loop(e_.arg(2), e_.arg(3), [&](llvm::Value *p) {
      llvm::Value *at = b.CreateMul(p, e_.i64(h * w));
      std::map<ValueId, llvm::Value *> hoisted;
      streamLoop(chain, at, b.CreateAdd(at, e_.i64(h * w)), domain, hoisted, true,
                 [&](llvm::Value *i) {
                   std::map<ValueId, llvm::Value *> vals = hoisted;
                   computeChain(chain, domain, i, vals);
                   b.CreateStore(vals.at(in), b.CreateInBoundsGEP(f32, plane, b.CreateSub(i, at)));
                 });
      llvm::Value *out = b.CreateMul(p, e_.i64(oh * ow));
      forEachWindow(e_.i64(0), e_.i64(oh), ow, kh, kw, w,
                    [&](llvm::Value *window, llvm::Value *corner) {
                      llvm::Value *best = windowMaximum(kh, kw, w, [&](int64_t at) {
                        return b.CreateLoad(
                            f32, b.CreateInBoundsGEP(f32, plane, b.CreateAdd(corner, e_.i64(at))));
                      });
                      e_.store(pool, b.CreateAdd(out, window), best);
                    });
    });
    e_.finish();
    return info;
  }

  /// An "elementwise_reduce" group over the outputs of its sums (a
  /// BatchNorm's channels): for output i, one walk over its slice of the
  /// chain's shape computes the chain there, stores what other kernels read,
  /// and adds each sum's operand in the order a lone sum adds it (walkSum),
  /// so the sums are the bits they were unfused. The broadcast operands are
  /// loaded once per contiguous run where they stay the same over it.
  KernelInfo chainSums() {
    const Shape &shape = plan_.reduceOver;
    const std::vector<ValueId> &chain = plan_.chain, &sums = plan_.sums;
    const auto axes = g().node(sums[0]).attrs.ints("axes");
    KernelInfo k{plan_, name(""), {}};
    auto &b = e_.b;
    e_.begin(k.fn, {b.getInt64Ty(), b.getInt64Ty()});
    llvm::Type *f32 = b.getFloatTy();
    llvm::Type *v32 = llvm::FixedVectorType::get(f32, 32), *v8 = llvm::FixedVectorType::get(f32, 8);
    // Each sum in a scalar and in 32 and 8 lanes (walkSum's chunks), each
    // lane its own running sum.
    std::map<ValueId, llvm::Value *> acc, acc32, acc8;
    for (ValueId r : sums) {
      acc[r] = e_.slot(f32, fmt::format("acc{}", r));
      acc32[r] = e_.slot(f32, fmt::format("acc32_{}", r), 32);
      acc8[r] = e_.slot(f32, fmt::format("acc8_{}", r), 8);
    }
    // The innermost run of the walk: the trailing summed dimensions.
    int64_t inner = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      bool summed = false;
      for (int64_t a : axes)
        summed |= size_t(a < 0 ? a + int64_t(shape.size()) : a) == d;
      if (!summed || shape[d] == kBatch)
        break;
      inner *= shape[d];
    }
    const std::vector<ValueId> operands = broadcastOperands(chain, shape);
    const int64_t same = operands.empty() ? 0 : constantRun(chain, shape, operands);
    const bool hoist = !operands.empty() && same > 1 && same % inner == 0;
    std::map<ValueId, llvm::Value *> hoisted;
    // A max-pool gradient the chain reads: each plane computed into a
    // buffer of one plane at the start of the chain's pass over it.
    const ValueId pool = plan_.poolGrad;
    llvm::Value *poolPlane = nullptr, *planeStart = nullptr;
    if (pool >= 0) {
      const Shape &ps = g().type(pool).shape;
      poolPlane = e_.slot(f32, "pool_plane", unsigned(ps[2] * ps[3]));
      planeStart = e_.slot(b.getInt64Ty(), "plane_start");
    }
    // The chain at element e: its values, each stored where another kernel reads it.
    auto compute = [&](llvm::Value *e) {
      std::map<ValueId, llvm::Value *> vals = hoisted;
      if (pool >= 0)
        vals[pool] = b.CreateLoad(
            f32, b.CreateInBoundsGEP(f32, poolPlane,
                                     b.CreateSub(e, b.CreateLoad(b.getInt64Ty(), planeStart))));
      computeChain(chain, shape, e, vals);
      return vals;
    };
    auto summand = [&](std::map<ValueId, llvm::Value *> &vals, ValueId r) {
      return vals.at(g().node(r).inputs[0]);
    };
    e_.loop(e_.arg(2), e_.arg(3), [&](llvm::Value *i) {
      for (ValueId r : sums) {
        b.CreateStore(e_.f32(0), acc[r]);
        b.CreateAlignedStore(llvm::Constant::getNullValue(v32), acc32[r], llvm::Align(4));
        b.CreateAlignedStore(llvm::Constant::getNullValue(v8), acc8[r], llvm::Align(4));
      }
      walkSum(
          e_, shape, axes, i, true,
          [&](llvm::Value *at, int lanes) {
            // Each lane's element and running sum alone (the chain is
            // pointwise): a parallel loop, kept whole for the vectoriser.
            e_.loop(
                e_.i64(0), e_.i64(lanes),
                [&](llvm::Value *j) {
                  auto vals = compute(b.CreateAdd(at, j));
                  for (ValueId r : sums) {
                    llvm::Value *to = b.CreateInBoundsGEP(f32, lanes == 32 ? acc32[r] : acc8[r], j);
                    b.CreateStore(b.CreateFAdd(b.CreateLoad(f32, to), summand(vals, r)), to);
                  }
                },
                true, true);
          },
          [&](llvm::Value *at) {
            auto vals = compute(at);
            for (ValueId r : sums)
              b.CreateStore(b.CreateFAdd(b.CreateLoad(f32, acc[r]), summand(vals, r)), acc[r]);
          },
          [&](llvm::Value *at) {
            if (pool >= 0)
              poolGradPlane(pool, at, poolPlane, planeStart);
            if (hoist)
              for (ValueId o : operands)
                hoisted[o] = e_.external(o, shape, at);
          });
      hoisted.clear();
      for (ValueId r : sums) {
        llvm::Value *x = b.CreateLoad(f32, acc[r]);
        x = b.CreateFAddReduce(x, b.CreateAlignedLoad(v32, acc32[r], llvm::Align(4)));
        x = b.CreateFAddReduce(x, b.CreateAlignedLoad(v8, acc8[r], llvm::Align(4)));
        if (g().node(r).op == Op::ReduceMean) {
          llvm::Value *count = b.CreateUDiv(e_.numel(shape), e_.numel(g().type(r).shape));
          x = b.CreateFDiv(x, b.CreateSIToFP(count, f32));
        }
        e_.store(r, i, x);
      }
    });
    e_.finish();
    return k;
  }

  /// A max-pool gradient alone in its kernel, over windows that tile the
  /// input (stride = kernel, no padding, floor mode: LeNet's and VGG's): one pass over
  /// the windows, each finding its maximum once, as the forward pass does
  /// (the first of equal maxima), and writing its kh x kw block of the input
  /// gradient: the window's gradient at the maximum, zeros elsewhere. The
  /// rows and columns no window covers (floor mode) get their zeros from the
  /// last window of their row or column. The per-element form searches each
  /// window kh kw times.
  std::optional<KernelInfo> poolGradByWindow() {
    if (members_.size() != 1)
      return std::nullopt;
    const ValueId v = members_[0];
    const Node &n = g().node(v);
    if (n.op != Op::MaxPool2dGrad || !e_.stored[size_t(v)])
      return std::nullopt;
    const auto k = n.attrs.ints("kernel"), st = n.attrs.ints("stride", {1, 1}),
               pad = n.attrs.ints("pad", {0, 0}), padEnd = n.attrs.ints("pad_end", {0, 0});
    if (st != k || pad[0] != 0 || pad[1] != 0 || padEnd[0] != 0 || padEnd[1] != 0)
      return std::nullopt; // (ceil mode's last window overhangs the input)
    const ValueId x = n.inputs[0], grad = n.inputs[1];
    const Shape &xs = g().type(x).shape, &gs = g().type(grad).shape;
    const int64_t kh = k[0], kw = k[1];
    KernelInfo info{plan_, name(""), {}};
    info.iterations = gs;
    auto &b = e_.b;
    e_.begin(info.fn, {b.getInt64Ty(), b.getInt64Ty()});
    e_.loop(e_.arg(2), e_.arg(3), [&](llvm::Value *w) {
      auto idx = e_.unravel(gs, w); // b, c, oy, ox
      llvm::Value *plane = b.CreateMul(b.CreateAdd(b.CreateMul(idx[0], e_.i64(xs[1])), idx[1]),
                                       e_.i64(xs[2] * xs[3]));
      llvm::Value *y0 = b.CreateMul(idx[2], e_.i64(kh)), *x0 = b.CreateMul(idx[3], e_.i64(kw));
      llvm::Value *corner = b.CreateAdd(plane, b.CreateAdd(b.CreateMul(y0, e_.i64(xs[3])), x0));
      std::vector<llvm::Value *> at;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx)
          at.push_back(b.CreateAdd(corner, e_.i64(ky * xs[3] + kx)));
      llvm::Value *best = firstMaximum(x, at);
      llvm::Value *gv = e_.load(grad, w);
      for (size_t t = 0; t < at.size(); ++t)
        e_.store(v, at[t], b.CreateSelect(b.CreateICmpEQ(best, e_.i64(int64_t(t))), gv, e_.f32(0)));
      // Zeros for what floor mode leaves uncovered, right of and below the windows.
      const int64_t coveredW = gs[3] * kw, coveredH = gs[2] * kh;
      llvm::Value *lastCol = b.CreateICmpEQ(idx[3], e_.i64(gs[3] - 1));
      llvm::Value *lastRow = b.CreateICmpEQ(idx[2], e_.i64(gs[2] - 1));
      auto zeros = [&](llvm::Value *y, llvm::Value *xFrom, llvm::Value *xTo) {
        llvm::Value *row = b.CreateAdd(plane, b.CreateMul(y, e_.i64(xs[3])));
        e_.loop(xFrom, xTo, [&](llvm::Value *xx) { e_.store(v, b.CreateAdd(row, xx), e_.f32(0)); });
      };
      if (coveredW < xs[3])
        e_.ifThen(lastCol, [&] {
          e_.loop(y0, b.CreateAdd(y0, e_.i64(kh)),
                  [&](llvm::Value *y) { zeros(y, e_.i64(coveredW), e_.i64(xs[3])); });
        });
      if (coveredH < xs[2])
        e_.ifThen(lastRow, [&] {
          llvm::Value *to = b.CreateSelect(lastCol, e_.i64(xs[3]), b.CreateAdd(x0, e_.i64(kw)));
          e_.loop(e_.i64(coveredH), e_.i64(xs[2]), [&](llvm::Value *y) { zeros(y, x0, to); });
        });
    });
    e_.finish();
    return info;
  }

  /// body(window, corner) for every window in rows [rowBegin, rowEnd) of a
  /// grid of kh x kw windows, ow to a row, that tile a plane w wide:
  /// `window` its index in the grid, `corner` its first element's in the
  /// plane; from column `firstColumn` of each row on. The loop along a row
  /// of windows is parallel (each writes its own elements).
  void forEachWindow(llvm::Value *rowBegin, llvm::Value *rowEnd, int64_t ow, int64_t kh, int64_t kw,
                     int64_t w, const std::function<void(llvm::Value *, llvm::Value *)> &body,
                     int64_t firstColumn = 0) {
    auto &b = e_.b;
    e_.loop(rowBegin, rowEnd, [&](llvm::Value *oy) {
      e_.loop(
          e_.i64(firstColumn), e_.i64(ow),
          [&](llvm::Value *ox) {
            body(b.CreateAdd(b.CreateMul(oy, e_.i64(ow)), ox),
                 b.CreateAdd(b.CreateMul(oy, e_.i64(kh * w)), b.CreateMul(ox, e_.i64(kw))));
          },
          true);
    });
  }

  /// The maximum of a kh x kw window of a plane w wide, element (ky, kx)
  /// read by load(ky * w + kx): a later element wins only when greater, as
  /// maxPool keeps the first.
  llvm::Value *windowMaximum(int64_t kh, int64_t kw, int64_t w,
                             const std::function<llvm::Value *(int64_t)> &load) {
    auto &b = e_.b;
    llvm::Value *best = nullptr;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        llvm::Value *v = load(ky * w + kx);
        best = best ? b.CreateSelect(b.CreateFCmpOGT(v, best), v, best) : v;
      }
    return best;
  }

  /// Which of the elements `at` of x holds their first maximum (a later one
  /// wins only when greater, as the forward pass and poolArgmax decide).
  llvm::Value *firstMaximum(ValueId x, const std::vector<llvm::Value *> &at) {
    std::vector<llvm::Value *> vals;
    for (llvm::Value *a : at)
      vals.push_back(e_.load(x, a));
    return firstMaximumOf(vals, [&](int64_t t) { return e_.i64(t); });
  }

  /// Which of `vals` (scalars, or vectors lane by lane) is their first
  /// maximum, as index(t) gives index t.
  llvm::Value *firstMaximumOf(const std::vector<llvm::Value *> &vals,
                              const std::function<llvm::Value *(int64_t)> &index) {
    auto &b = e_.b;
    llvm::Value *best = index(0), *bestV = vals[0];
    for (size_t t = 1; t < vals.size(); ++t) {
      llvm::Value *better = b.CreateFCmpOGT(vals[t], bestV);
      best = b.CreateSelect(better, index(int64_t(t)), best);
      bestV = b.CreateSelect(better, vals[t], bestV);
    }
    return best;
  }

  /// The plane of max-pool gradient `v` (windows that tile it: stride =
  /// kernel, no padding) that starts at element `at`, into `buf`, as
  /// poolGradByWindow computes it: the window's gradient at its first
  /// maximum, zeros elsewhere, and zeros where no window reaches (floor
  /// mode); windows two wide 8 or 4 at a time (poolGradWindows: LeNet's pool
  /// gradients 4.0 -> 2.3 and 0.9 -> 0.5 ms a step on Zen 5, where scalar
  /// code found each window's maximum). `at` goes to `startSlot`, for the
  /// chain's reads.
  void poolGradPlane(ValueId v, llvm::Value *at, llvm::Value *buf, llvm::Value *startSlot) {
    auto &b = e_.b;
    llvm::Type *f32 = b.getFloatTy();
    const Node &n = g().node(v);
    const ValueId x = n.inputs[0], grad = n.inputs[1];
    const Shape &xs = g().type(x).shape, &gs = g().type(grad).shape;
    const auto k = n.attrs.ints("kernel");
    const int64_t kh = k[0], kw = k[1], h = xs[2], w = xs[3], oh = gs[2], ow = gs[3];
    b.CreateStore(at, startSlot);
    if (oh * kh < h || ow * kw < w)
      e_.loop(
          e_.i64(0), e_.i64(h * w),
          [&](llvm::Value *q) { b.CreateStore(e_.f32(0), b.CreateInBoundsGEP(f32, buf, q)); },
          true);
    // The gradient's plane: the same image and channel, at (at / (H W)) (OH OW).
    llvm::Value *gradPlane = b.CreateMul(b.CreateUDiv(at, e_.i64(h * w)), e_.i64(oh * ow));
    // Windows two wide (LeNet's, VGG's) go 8, then 4 at a time, as vectors
    // (poolGradWindows); the rest, and other widths, one at a time.
    const int64_t eights = kw == 2 ? ow / 8 : 0, fours = kw == 2 ? ow % 8 / 4 : 0;
    if (eights + fours > 0)
      e_.loop(e_.i64(0), e_.i64(oh), [&](llvm::Value *oy) {
        if (eights > 0)
          e_.loop(e_.i64(0), e_.i64(eights), [&](llvm::Value *blk) {
            poolGradWindows(x, grad, at, gradPlane, buf, oy, b.CreateMul(blk, e_.i64(8)), 8, kh, w,
                            ow);
          });
        if (fours > 0)
          poolGradWindows(x, grad, at, gradPlane, buf, oy, e_.i64(eights * 8), 4, kh, w, ow);
      });
    if (eights * 8 + fours * 4 < ow)
      forEachWindow(
          e_.i64(0), e_.i64(oh), ow, kh, kw, w,
          [&](llvm::Value *window, llvm::Value *corner) {
            std::vector<llvm::Value *> in, from;
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                in.push_back(b.CreateAdd(corner, e_.i64(ky * w + kx)));
                from.push_back(b.CreateAdd(at, in.back()));
              }
            llvm::Value *best = firstMaximum(x, from);
            llvm::Value *gv = e_.load(grad, b.CreateAdd(gradPlane, window));
            for (size_t t = 0; t < in.size(); ++t)
              b.CreateStore(b.CreateSelect(b.CreateICmpEQ(best, e_.i64(int64_t(t))), gv, e_.f32(0)),
                            b.CreateInBoundsGEP(f32, buf, in[t]));
          },
          eights * 8 + fours * 4);
  }

  /// Windows [ox0, ox0 + lanes) of row oy of a max-pool gradient plane (2
  /// wide, kh high, stride = kernel) as vectors, each lane one window: row
  /// ky of the windows is one load of 2 lanes floats, split into its even
  /// and odd elements; the first maximum is found lane by lane in the order
  /// firstMaximum takes (a later element wins only when greater), and each
  /// row's gradients, interleaved back, are one store into `buf`.
  void poolGradWindows(ValueId x, ValueId grad, llvm::Value *at, llvm::Value *gradPlane,
                       llvm::Value *buf, llvm::Value *oy, llvm::Value *ox0, int lanes, int64_t kh,
                       int64_t w, int64_t ow) {
    auto &b = e_.b;
    llvm::Type *f32 = b.getFloatTy();
    auto *row = llvm::FixedVectorType::get(f32, unsigned(2 * lanes));
    auto *vec = llvm::FixedVectorType::get(f32, unsigned(lanes));
    std::vector<int> even, odd, interleave;
    for (int l = 0; l < lanes; ++l) {
      even.push_back(2 * l);
      odd.push_back(2 * l + 1);
      interleave.push_back(l);
      interleave.push_back(lanes + l);
    }
    // Element (ky, kx) of each window: its offset in the plane is rowAt(ky) + 2 lane + kx.
    auto rowAt = [&](int64_t ky) {
      return b.CreateAdd(
          b.CreateMul(b.CreateAdd(b.CreateMul(oy, e_.i64(kh)), e_.i64(ky)), e_.i64(w)),
          b.CreateMul(ox0, e_.i64(2)));
    };
    std::vector<llvm::Value *> vals;
    for (int64_t ky = 0; ky < kh; ++ky) {
      llvm::Value *p = b.CreateInBoundsGEP(f32, e_.buffer(x), b.CreateAdd(at, rowAt(ky)));
      llvm::Value *r = b.CreateAlignedLoad(row, p, llvm::Align(4));
      vals.push_back(b.CreateShuffleVector(r, even));
      vals.push_back(b.CreateShuffleVector(r, odd));
    }
    auto index = [&](int64_t t) {
      return b.CreateVectorSplat(unsigned(lanes), b.getInt32(int32_t(t)));
    };
    llvm::Value *best = firstMaximumOf(vals, index);
    llvm::Value *gp =
        b.CreateInBoundsGEP(f32, e_.buffer(grad),
                            b.CreateAdd(gradPlane, b.CreateAdd(b.CreateMul(oy, e_.i64(ow)), ox0)));
    llvm::Value *gv = b.CreateAlignedLoad(vec, gp, llvm::Align(4));
    llvm::Value *zero = llvm::ConstantAggregateZero::get(vec);
    auto out = [&](int64_t t) { return b.CreateSelect(b.CreateICmpEQ(best, index(t)), gv, zero); };
    for (int64_t ky = 0; ky < kh; ++ky) {
      llvm::Value *r = b.CreateShuffleVector(out(2 * ky), out(2 * ky + 1), interleave);
      b.CreateAlignedStore(r, b.CreateInBoundsGEP(f32, buf, rowAt(ky)), llvm::Align(4));
    }
  }

  // --- row kernels -----------------------------------------------------------
  KernelInfo rows() {
    const Shape rowsShape = plan_.domain.shape;
    const int64_t c = rowsShape.back();
    Shape reduced = rowsShape;
    reduced.back() = 1;
    KernelInfo k{plan_, name(""), {}};
    auto &b = e_.b;
    e_.begin(k.fn, {});
    llvm::Value *rowCount = b.CreateUDiv(e_.numel(rowsShape), e_.i64(c));
    std::map<ValueId, llvm::Value *> temps; // per-row [C] arrays
    std::map<ValueId, llvm::Value *> accs;  // cross-row sums (nll_loss)
    for (ValueId v : members_) {
      const Shape &s = g().type(v).shape;
      if (s == rowsShape)
        temps[v] = e_.slot(b.getFloatTy(), fmt::format("t{}", v), unsigned(c));
      if (g().node(v).op == Op::NllLoss) {
        accs[v] = e_.slot(b.getFloatTy(), fmt::format("acc{}", v));
        b.CreateStore(e_.f32(0), accs[v]);
      }
    }
    auto elem = [&](ValueId user, ValueId v, llvm::Value *row, llvm::Value *col,
                    std::map<ValueId, llvm::Value *> &vals) -> llvm::Value * {
      if (temps.count(v))
        return b.CreateLoad(b.getFloatTy(), b.CreateInBoundsGEP(b.getFloatTy(), temps[v], col));
      auto it = vals.find(v);
      if (it != vals.end())
        return it->second;
      llvm::Value *e = b.CreateAdd(b.CreateMul(row, e_.i64(c)), col);
      return e_.operandOf(user, v, rowsShape, e);
    };
    e_.loop(e_.i64(0), rowCount, [&](llvm::Value *r) {
      std::map<ValueId, llvm::Value *> vals; // per-row and scalar values
      for (ValueId v : members_) {
        const Node &n = g().node(v);
        const Shape &s = n.type.shape;
        if (n.op == Op::NllLoss) {
          llvm::Value *label = e_.loadI32(n.inputs[1], r);
          llvm::Value *col = b.CreateSExt(label, b.getInt64Ty());
          llvm::Value *lp = elem(v, n.inputs[0], r, col, vals);
          b.CreateStore(b.CreateFSub(b.CreateLoad(b.getFloatTy(), accs[v]), lp), accs[v]);
          continue;
        }
        if (n.op == Op::LogSoftMax || n.op == Op::SoftMax) {
          rowSoftMax(v, r, c, temps[v],
                     [&](llvm::Value *col) { return elem(v, n.inputs[0], r, col, vals); });
        } else if (isRowReduce(v)) {
          llvm::Value *acc = e_.slot(b.getFloatTy(), fmt::format("r{}", v));
          bool isMax = n.op == Op::ReduceMax;
          b.CreateStore(e_.f32(isMax ? -INFINITY : 0.0), acc);
          e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *col) {
            llvm::Value *x = elem(v, n.inputs[0], r, col, vals);
            llvm::Value *a = b.CreateLoad(b.getFloatTy(), acc);
            b.CreateStore(isMax ? e_.maxf(x, a) : b.CreateFAdd(a, x), acc);
          });
          llvm::Value *sum = b.CreateLoad(b.getFloatTy(), acc);
          vals[v] = n.op == Op::ReduceMean ? b.CreateFDiv(sum, e_.f32(double(c))) : sum;
        } else if (s == rowsShape) {
          GRAPHC_CHECK(isPointwise(n.op), "{} in a row kernel", opName(n.op));
          e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *col) {
            std::vector<llvm::Value *> in;
            for (ValueId o : n.inputs)
              in.push_back(elem(v, o, r, col, vals));
            llvm::Value *e = b.CreateAdd(b.CreateMul(r, e_.i64(c)), col);
            b.CreateStore(e_.pointwise(v, in, e),
                          b.CreateInBoundsGEP(b.getFloatTy(), temps[v], col));
          });
        } else {
          // Per-row ([R,1]) or scalar pointwise values.
          GRAPHC_CHECK(isPointwise(n.op) && (s == reduced || s.empty()),
                       "{} {} in a row kernel over {}", opName(n.op), str(s), str(rowsShape));
          std::vector<llvm::Value *> in;
          for (ValueId o : n.inputs)
            in.push_back(elem(v, o, r, e_.i64(0), vals));
          vals[v] = e_.pointwise(v, in, r);
        }
        if (!e_.stored[size_t(v)])
          continue;
        if (s == rowsShape) {
          e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *col) {
            llvm::Value *x =
                b.CreateLoad(b.getFloatTy(), b.CreateInBoundsGEP(b.getFloatTy(), temps[v], col));
            e_.store(v, b.CreateAdd(b.CreateMul(r, e_.i64(c)), col), x);
          });
        } else if (s == reduced) {
          e_.store(v, r, vals[v]);
        } else {
          e_.ifThen(b.CreateICmpEQ(r, e_.i64(0)), [&] { e_.store(v, e_.i64(0), vals[v]); });
        }
      }
    });
    for (auto &[v, acc] : accs)
      if (e_.stored[size_t(v)]) {
        llvm::Value *rowsF = b.CreateSIToFP(rowCount, b.getFloatTy());
        e_.store(v, e_.i64(0), b.CreateFDiv(b.CreateLoad(b.getFloatTy(), acc), rowsF));
      }
    e_.finish();
    return k;
  }

  template <class F> void rowSoftMax(ValueId v, llvm::Value *r, int64_t c, llvm::Value *out, F in) {
    auto &b = e_.b;
    bool log = g().node(v).op == Op::LogSoftMax;
    llvm::Value *mx = e_.slot(b.getFloatTy(), "max"), *sum = e_.slot(b.getFloatTy(), "sum");
    b.CreateStore(e_.f32(-INFINITY), mx);
    b.CreateStore(e_.f32(0), sum);
    e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *col) {
      b.CreateStore(e_.maxf(in(col), b.CreateLoad(b.getFloatTy(), mx)), mx);
    });
    llvm::Value *m = b.CreateLoad(b.getFloatTy(), mx);
    e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *col) {
      llvm::Value *x = e_.call(llvm::Intrinsic::exp, b.CreateFSub(in(col), m));
      b.CreateStore(b.CreateFAdd(b.CreateLoad(b.getFloatTy(), sum), x), sum);
    });
    llvm::Value *s = b.CreateLoad(b.getFloatTy(), sum);
    llvm::Value *lse = b.CreateFAdd(m, e_.call(llvm::Intrinsic::log, s));
    e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *col) {
      llvm::Value *x = in(col);
      llvm::Value *y = log ? b.CreateFSub(x, lse)
                           : b.CreateFDiv(e_.call(llvm::Intrinsic::exp, b.CreateFSub(x, m)), s);
      b.CreateStore(y, b.CreateInBoundsGEP(b.getFloatTy(), out, col));
    });
    (void)r;
  }

  // --- GEMM kernels ----------------------------------------------------------
  KernelInfo gemm() {
    KernelInfo k{plan_, "", {}};
    if (!plan_.epilogue.empty())
      k.fn = emitEpilogue(plan_.matmul, plan_.epilogue, plan_.domain.shape);
    return k; // the bias gradient beside it is grt_colsum's (StepFunction.cpp)
  }

  // --- convolutions: the implicit GEMM of grt_conv -------------------------
  KernelInfo conv() {
    KernelInfo k{plan_, "", {}};
    if (!plan_.epilogue.empty())
      k.fn = emitEpilogue(plan_.conv, plan_.epilogue, plan_.domain.shape);
    if (plan_.poolAfter >= 0)
      k.poolFn = convPool();
    return k;
  }

  /// The max pool of a convolution's group (KernelPlan::poolAfter), as
  /// grt_pool_fn: pooled rows [r0, r1) of every channel of one image, each
  /// window's maximum from what the convolution and its epilogue stored (a
  /// later element wins only when greater, as maxPool keeps the first).
  std::string convPool() {
    auto &b = e_.b;
    const ValueId pool = plan_.poolAfter, in = g().node(pool).inputs[0];
    const Shape &xs = g().type(in).shape, &ys = g().type(pool).shape;
    const auto k = g().node(pool).attrs.ints("kernel");
    const int64_t c = xs[1], h = xs[2], w = xs[3], oh = ys[2], ow = ys[3], kh = k[0], kw = k[1];
    std::string fn = name("_pool");
    e_.begin(fn, {b.getInt64Ty(), b.getInt64Ty(), b.getInt64Ty()});
    llvm::Value *image = e_.arg(2);
    e_.loop(e_.i64(0), e_.i64(c), [&](llvm::Value *ch) {
      llvm::Value *plane = b.CreateAdd(b.CreateMul(image, e_.i64(c)), ch);
      llvm::Value *from = b.CreateMul(plane, e_.i64(h * w)),
                  *to = b.CreateMul(plane, e_.i64(oh * ow));
      forEachWindow(e_.arg(3), e_.arg(4), ow, kh, kw, w,
                    [&](llvm::Value *window, llvm::Value *corner) {
                      llvm::Value *at = b.CreateAdd(from, corner);
                      llvm::Value *best = windowMaximum(kh, kw, w, [&](int64_t d) {
                        return e_.load(in, b.CreateAdd(at, e_.i64(d)));
                      });
                      e_.store(pool, b.CreateAdd(to, window), best);
                    });
    });
    e_.finish();
    return fn;
  }

  std::string emitEpilogue(ValueId mm, const std::vector<ValueId> &epi, const Shape &shape) {
    auto &b = e_.b;
    std::string fn = name("_epilogue");
    auto *i64t = b.getInt64Ty();
    e_.begin(fn, {b.getPtrTy(), i64t, i64t, i64t, i64t, i64t});
    // Element (i, j) of C is element i * ldc + j of the result: of a
    // product's [M, N] matrix, or of a convolution's NCHW tensor, whose
    // driver shifts j by image (grt_conv).
    llvm::Value *c = e_.arg(2), *ldc = e_.arg(3);
    std::map<ValueId, llvm::Value *> hoisted;
    e_.loop(e_.arg(4), e_.arg(5), [&](llvm::Value *i) {
      llvm::Value *row = b.CreateMul(i, ldc);
      // Pointwise, element e read and written alone, the product's own
      // element included: a parallel loop (Emitter::loop).
      streamLoop(epi, b.CreateAdd(row, e_.arg(6)), b.CreateAdd(row, e_.arg(7)), shape, hoisted,
                 true, [&](llvm::Value *e) {
                   std::map<ValueId, llvm::Value *> vals = hoisted;
                   vals[mm] =
                       b.CreateLoad(b.getFloatTy(), b.CreateInBoundsGEP(b.getFloatTy(), c, e));
                   for (ValueId v : epi) {
                     std::vector<llvm::Value *> in;
                     for (ValueId o : g().node(v).inputs)
                       in.push_back(operand(v, o, shape, e, vals));
                     vals[v] = e_.pointwise(v, in, e);
                   }
                   for (ValueId v : epi)
                     if (e_.stored[size_t(v)])
                       e_.store(v, e, vals[v]);
                 });
    });
    e_.finish();
    return fn;
  }

  Emitter &e_;
  std::string prefix_;
  KernelPlan plan_;
  int grp_ = -1;
  std::vector<ValueId> members_;
  std::set<ValueId> inGroup_;
  /// streamLoop's stream operands, each with the start of the current run.
  std::map<ValueId, llvm::Value *> streams_;
};

} // namespace

std::vector<KernelInfo> emitKernels(llvm::Module &m, const Graph &g,
                                    const std::vector<bool> &stored, const std::string &prefix) {
  Emitter e(m, g, stored);
  GroupEmitter ge(e, prefix);
  std::vector<KernelInfo> out;
  for (const KernelPlan &plan : planKernels(g, stored))
    out.push_back(ge.emit(plan));
  return out;
}

} // namespace graphc::codegen::cpu
