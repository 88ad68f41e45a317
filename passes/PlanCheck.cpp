// passes/PlanCheck.cpp - replays a fused graph against its memory plan.
//
// Deliberately written apart from the planner: its own step numbering, its
// own idea of what each step reads and writes, and lifetimes measured on
// the bytes themselves rather than on values.
#include "passes/PlanCheck.h"

#include "ir/Printer.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <queue>
#include <unordered_map>

namespace graphc::passes {

using namespace ir;

namespace {

/// Bytes [begin, end) of one memory.
struct Range {
  int64_t begin = 0, end = 0;
};

bool intersects(Range a, Range b) { return a.begin < b.end && b.begin < a.end; }

std::string str(Range r) { return fmt::format("[{}, {})", r.begin, r.end); }

int64_t elementBytes(DType t) {
  switch (t) {
  case DType::F32: return 4;
  case DType::I32: return 4;
  }
  return 4;
}

/// Where a value's bytes are.
enum class Home {
  None,   ///< nowhere: an error if anything outside its kernel reads it
  Inline, ///< a constant or the batch size, emitted into the code
  Arena,  ///< the plan's arena
  Caller, ///< an input or output buffer the caller passes in
};

/// First and last step at which a buffer's bytes are touched.
struct Life {
  int firstWrite = -1, firstRead = -1, last = -1;
  int firstReader = -1; ///< the value whose read came first
};

class Checker {
public:
  Checker(const Graph &g, const MemoryPlan &p) : g_(g), p_(p), n_(g.size()) {}

  std::vector<std::string> run() {
    if (!consistentSizes())
      return problems_;
    numberSteps();
    findCallerBuffers();
    checkViews();
    checkArenaPlacement();
    recordAccesses();
    checkLifetimes();
    return problems_;
  }

private:
  // 1. The plan has an entry for every value.
  bool consistentSizes() {
    auto sized = [&](size_t s) { return s == size_t(n_); };
    if (!sized(p_.offset.size()) || !sized(p_.aliasOf.size()) || !sized(p_.aliasOffset.size()))
      problem(fmt::format("the plan has {}/{}/{} offsets/aliases/alias offsets for "
                          "{} values",
                          p_.offset.size(), p_.aliasOf.size(), p_.aliasOffset.size(), n_));
    else if (p_.batch < 1)
      problem(fmt::format("the plan is for batch {}", p_.batch));
    else
      for (ValueId v = 0; v < n_; ++v)
        if (ValueId r = p_.aliasOf[size_t(v)]; r < 0 || r >= n_)
          problem(fmt::format("{} aliases value {}, which does not exist", name(v), r));
    return problems_.empty();
  }

  // 2. Steps as the backends run them: one per kernel group, one per
  //    flat pack (its copies) and per ungrouped computing node; sources,
  //    views and inline scalars are no step.
  void numberSteps() {
    step_.assign(size_t(n_), -1);
    std::vector<int> ofGroup(g_.groups().size(), -1);
    for (ValueId v = 0; v < n_; ++v) {
      const Node &nd = g_.node(v);
      if (nd.group >= 0) {
        int &s = ofGroup[size_t(nd.group)];
        if (s < 0) {
          s = int(stepNames_.size());
          stepNames_.push_back(fmt::format("@k{}", nd.group));
        } else if (s != int(stepNames_.size()) - 1) {
          problem(fmt::format("kernel @k{} is not contiguous: {} comes after {}", nd.group,
                              valueName(g_, v), stepNames_.back()));
        }
        step_[size_t(v)] = s;
      } else if (!source(nd.op) && !view(nd.op) && !inlined(nd.op)) {
        step_[size_t(v)] = int(stepNames_.size());
        stepNames_.push_back(fmt::format("{} {}", opName(nd.op), valueName(g_, v)));
      }
    }
    stepNames_.push_back("the copy of the outputs");
  }

  // 3. The caller's buffers: the inputs, the outputs and what outputs view.
  void findCallerBuffers() {
    callerOwned_.assign(size_t(n_), false);
    for (ValueId v = 0; v < n_; ++v)
      if (g_.node(v).op == Op::Input)
        callerOwned_[size_t(v)] = true;
    for (const Output &o : g_.outputs())
      callerOwned_[size_t(root(o.value))] = callerOwned_[size_t(o.value)] = true;
  }

  // 4. Memory is shared only by views, at the bytes they view.
  void checkViews() {
    for (ValueId v = 0; v < n_; ++v) {
      ValueId r = root(v);
      if (r != v && root(r) != r)
        problem(fmt::format("{} aliases {}, itself a view of {}: alias chains must "
                            "end at an owner",
                            name(v), name(r), name(root(r))));
      if (r != v && p_.offset[size_t(v)] >= 0)
        problem(fmt::format("{} is a view of {} and has its own arena offset {}", name(v), name(r),
                            p_.offset[size_t(v)]));
      if (r == v)
        continue;
      int64_t off = p_.aliasOffset[size_t(v)];
      if (off < 0 || off % 4 != 0 || off + bytes(v) > bytes(r))
        problem(fmt::format("{} views bytes {} of {}, whose buffer is {} bytes", name(v),
                            str({off, off + bytes(v)}), name(r), bytes(r)));
      if (!legitimateView(v))
        problem(fmt::format("{} ({}) shares the memory of {} at byte {}, but a {} "
                            "cannot compute in place: only param, reshape and "
                            "flat-pack slots may share memory",
                            name(v), opName(g_.node(v).op), name(r), off, opName(g_.node(v).op)));
    }
  }

  bool legitimateView(ValueId v) const {
    const Node &nd = g_.node(v);
    auto at = [&](ValueId r, int64_t off) {
      return root(v) == r && p_.aliasOffset[size_t(v)] == off;
    };
    if (nd.op == Op::Param)
      return at(root(nd.inputs[0]),
                p_.aliasOffset[size_t(nd.inputs[0])] + nd.attrs.i("offset") * 4);
    if (nd.op == Op::Reshape)
      return at(root(nd.inputs[0]), p_.aliasOffset[size_t(nd.inputs[0])]);
    for (ValueId u = v + 1; u < n_; ++u)
      if (g_.node(u).op == Op::FlatPack && packSlot(u, v))
        return true;
    return false;
  }

  /// Whether `part` is computed in place in its slot of flat pack `pack`.
  bool packSlot(ValueId pack, ValueId part) const {
    const Node &pk = g_.node(pack);
    auto offsets = pk.attrs.ints("offsets");
    for (size_t i = 0; i < pk.inputs.size() && i < offsets.size(); ++i)
      if (pk.inputs[i] == part && root(part) == root(pack) &&
          p_.aliasOffset[size_t(part)] == p_.aliasOffset[size_t(pack)] + offsets[i] * 4)
        return true;
    return false;
  }

  // 5. Arena buffers inside the arena, on 64 bytes.
  void checkArenaPlacement() {
    for (ValueId v = 0; v < n_; ++v) {
      int64_t off = p_.offset[size_t(v)];
      if (off < 0 || root(v) != v)
        continue;
      if (off % 64 != 0)
        problem(fmt::format("{} {} at {} is not 64-byte aligned", name(v), str(g_.type(v)),
                            str(bytesOf(v))));
      if (off + bytes(v) > p_.arenaBytes)
        problem(fmt::format("{} {} at {} lies outside the arena of {} bytes", name(v),
                            str(g_.type(v)), str(bytesOf(v)), p_.arenaBytes));
    }
  }

  // 6. What each step reads and writes, and so each owning buffer's life.
  void recordAccesses() {
    life_.assign(size_t(n_), Life{});
    std::vector<std::vector<ValueId>> reads(stepNames_.size()), writes(stepNames_.size());
    std::vector<bool> homeless(size_t(n_), false);
    for (ValueId v = 0; v < n_; ++v) {
      int s = step_[size_t(v)];
      if (s < 0)
        continue;
      const Node &nd = g_.node(v);
      for (ValueId i : nd.inputs) {
        if (step_[size_t(i)] == s || home(i) == Home::Inline)
          continue;
        if (nd.op == Op::FlatPack && packSlot(v, i))
          continue; // computed in place, nothing to copy
        if (home(i) == Home::None && !homeless[size_t(i)]) {
          homeless[size_t(i)] = true;
          problem(fmt::format("{} {} is read by {} but has no memory", name(i), str(g_.type(i)),
                              stepNames_[size_t(s)]));
        }
        reads[size_t(s)].push_back(i);
      }
      writes[size_t(s)].push_back(v);
    }
    for (const Output &o : g_.outputs())
      reads.back().push_back(o.value);
    for (size_t s = 0; s < stepNames_.size(); ++s) {
      for (ValueId v : reads[s])
        touch(v, int(s), true);
      for (ValueId v : writes[s])
        touch(v, int(s), false);
      // Only an operand and a result in the same buffer can clash: compare
      // those, not every pair of a kernel of thousands of nodes.
      std::unordered_map<ValueId, std::vector<ValueId>> written;
      for (ValueId result : writes[s])
        written[root(result)].push_back(result);
      for (ValueId operand : reads[s])
        if (auto it = written.find(root(operand)); it != written.end())
          for (ValueId result : it->second)
            checkInPlace(operand, result, int(s));
    }
  }

  void touch(ValueId v, int s, bool reading) {
    if (home(v) != Home::Arena)
      return;
    Life &l = life_[size_t(root(v))];
    if (reading && l.firstRead < 0) {
      l.firstRead = s;
      l.firstReader = v;
    }
    if (!reading && l.firstWrite < 0)
      l.firstWrite = s;
    l.last = s;
  }

  /// A kernel reading `operand` while it writes `result` into the same buffer.
  void checkInPlace(ValueId operand, ValueId result, int s) {
    Home h = home(result);
    if (h != home(operand) || (h != Home::Arena && h != Home::Caller) ||
        root(operand) != root(result) || !intersects(viewBytes(operand), viewBytes(result)))
      return;
    problem(fmt::format("{} reads {} at bytes {} of {} while it writes {} at bytes {} "
                        "of the same buffer: that kernel cannot compute in place",
                        stepNames_[size_t(s)], name(operand), str(viewBytes(operand)),
                        name(root(operand)), name(result), str(viewBytes(result))));
  }

  // 7. Buffers live at the same step share no byte.
  void checkLifetimes() {
    std::vector<ValueId> live;
    for (ValueId v = 0; v < n_; ++v) {
      if (root(v) != v || p_.offset[size_t(v)] < 0)
        continue;
      const Life &l = life_[size_t(v)];
      if (l.firstRead >= 0 && (l.firstWrite < 0 || l.firstRead < l.firstWrite)) {
        problem(fmt::format("{} {} at {} is read by {} (through {}) before anything "
                            "writes it",
                            name(v), str(g_.type(v)), str(bytesOf(v)),
                            stepNames_[size_t(l.firstRead)], name(l.firstReader)));
        continue;
      }
      if (l.firstWrite >= 0)
        live.push_back(v);
    }
    // A sweep over the steps: buffers join the active set, ordered by
    // offset, at their first write and leave it after their last step; a
    // joining buffer is compared with the active ones whose bytes can reach
    // its own, so every overlapping pair is found once, without comparing
    // all pairs.
    std::sort(live.begin(), live.end(), [&](ValueId a, ValueId b) {
      return life_[size_t(a)].firstWrite < life_[size_t(b)].firstWrite;
    });
    int64_t widest = 0;
    for (ValueId v : live)
      widest = std::max(widest, bytesOf(v).end - bytesOf(v).begin);
    std::multimap<int64_t, ValueId> active;  // by first byte
    using Leaving = std::pair<int, ValueId>; // last step, buffer
    std::priority_queue<Leaving, std::vector<Leaving>, std::greater<>> leaving;
    for (ValueId b : live) {
      const Life &lb = life_[size_t(b)];
      while (!leaving.empty() && leaving.top().first < lb.firstWrite) {
        auto [lo, hi] = active.equal_range(bytesOf(leaving.top().second).begin);
        for (auto it = lo; it != hi; ++it)
          if (it->second == leaving.top().second) {
            active.erase(it);
            break;
          }
        leaving.pop();
      }
      const Range rb = bytesOf(b);
      for (auto it = active.lower_bound(rb.begin - widest);
           it != active.end() && it->first < rb.end; ++it) {
        ValueId a = it->second;
        if (intersects(bytesOf(a), rb))
          problem(fmt::format("{} and {} are live at the same time and overlap: {} at "
                              "{}, live {}; {} at {}, live {}",
                              name(a), name(b), describe(a), str(bytesOf(a)), lifeOf(a),
                              describe(b), str(bytesOf(b)), lifeOf(b)));
      }
      active.insert({rb.begin, b});
      leaving.push({lb.last, b});
    }
  }

  std::string lifeOf(ValueId owner) const {
    const Life &l = life_[size_t(owner)];
    if (l.firstWrite == l.last)
      return "in " + stepNames_[size_t(l.last)];
    return fmt::format("from {} to {}", stepNames_[size_t(l.firstWrite)],
                       stepNames_[size_t(l.last)]);
  }

  std::string describe(ValueId v) const { return fmt::format("{} {}", name(v), str(g_.type(v))); }

  ValueId root(ValueId v) const { return p_.aliasOf[size_t(v)]; }

  Home home(ValueId v) const {
    ValueId r = root(v);
    if (p_.offset[size_t(r)] >= 0)
      return Home::Arena;
    if (callerOwned_[size_t(r)])
      return Home::Caller;
    if (inlined(g_.node(v).op))
      return Home::Inline;
    return Home::None;
  }

  int64_t bytes(ValueId v) const {
    return g_.type(v).numel(p_.batch) * elementBytes(g_.type(v).dtype);
  }

  /// An owner's bytes in the arena.
  Range bytesOf(ValueId owner) const {
    int64_t at = p_.offset[size_t(owner)];
    return {at, at + bytes(owner)};
  }

  /// A value's bytes inside its owner's buffer (in the arena when it is there).
  Range viewBytes(ValueId v) const {
    int64_t at = std::max<int64_t>(p_.offset[size_t(root(v))], 0) + p_.aliasOffset[size_t(v)];
    return {at, at + bytes(v)};
  }

  std::string name(ValueId v) const { return valueName(g_, v); }

  static bool source(Op op) { return op == Op::Input; }
  static bool view(Op op) { return op == Op::Param || op == Op::Reshape; }
  static bool inlined(Op op) { return op == Op::Constant || op == Op::BatchSize; }

  void problem(std::string text) { problems_.push_back(std::move(text)); }

  const Graph &g_;
  const MemoryPlan &p_;
  const int n_;
  std::vector<int> step_;              ///< per value: the step computing it, or -1
  std::vector<std::string> stepNames_; ///< per step, and a last one: the output copies
  std::vector<Life> life_;             ///< per owning buffer
  std::vector<bool> callerOwned_;      ///< inputs, outputs and what outputs view
  std::vector<std::string> problems_;
};

#ifdef NDEBUG
std::atomic<bool> checksOn{false};
#else
std::atomic<bool> checksOn{true};
#endif

} // namespace

std::vector<std::string> planProblems(const Graph &g, const MemoryPlan &plan) {
  return Checker(g, plan).run();
}

Status checkPlan(const Graph &g, const MemoryPlan &plan) {
  std::vector<std::string> problems = planProblems(g, plan);
  if (problems.empty())
    return {};
  std::string more =
      problems.size() > 1 ? fmt::format(" ({} problems in all)", problems.size()) : std::string();
  return error(fmt::format("memory plan of @{} at batch {}: {}{}", g.name(), plan.batch,
                           problems.front(), more));
}

bool planChecksEnabled() { return checksOn.load(); }

void enablePlanChecks(bool on) { checksOn.store(on); }

void requireSoundPlan(const Graph &g, const MemoryPlan &plan) {
  if (!planChecksEnabled())
    return;
  Status sound = checkPlan(g, plan);
  GRAPHC_CHECK(sound, "{}", sound.diag().message);
}

} // namespace graphc::passes
