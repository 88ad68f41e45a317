// passes/MemoryPlan.cpp - liveness and greedy arena placement.
#include "passes/MemoryPlan.h"

#include "passes/Fusion.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <queue>

namespace graphc::passes {

using namespace ir;

namespace {

/// Buffers start on 64-byte boundaries: a cache line, a full AVX-512 vector.
int64_t alignUp(int64_t bytes) { return (bytes + 63) / 64 * 64; }

struct Slot {
  ValueId v;
  int64_t begin, size;
};

/// Up to this many buffers, each is placed, largest first, at the lowest
/// aligned offset clear of every buffer placed so far that is live at the
/// same time: tight arenas, at a cost quadratic in the buffers. Beyond it
/// (models of thousands of layers) the placement runs in time order over a
/// free list, in O(n log n).
constexpr size_t kExactPlacementLimit = 2000;

template <class Bytes, class Place>
void placeAroundLive(const std::vector<ValueId> &order, const std::vector<int> &first,
                     const std::vector<int> &last, Bytes bytes, const std::vector<Slot> &placed,
                     Place place) {
  for (ValueId v : order) {
    std::vector<Slot> clash;
    for (const Slot &s : placed)
      if (!(last[size_t(s.v)] < first[size_t(v)] || last[size_t(v)] < first[size_t(s.v)]))
        clash.push_back(s);
    std::sort(clash.begin(), clash.end(),
              [](const Slot &a, const Slot &b) { return a.begin < b.begin; });
    // Every candidate offset is aligned as it is formed, so the gap it is
    // tested against is the gap it will occupy.
    int64_t at = 0;
    for (const Slot &s : clash) {
      if (at + bytes(v) <= s.begin)
        break;
      at = std::max(at, alignUp(s.begin + s.size));
    }
    place(v, at);
  }
}

/// Linear-scan placement: buffers in order of birth; each takes the smallest
/// free block that holds it (blocks freed at a buffer's death, merged with
/// their free neighbours), or extends the arena.
template <class Bytes, class Place>
void placeInTimeOrder(std::vector<ValueId> order, const std::vector<int> &first,
                      const std::vector<int> &last, Bytes bytes, Place place) {
  std::stable_sort(order.begin(), order.end(),
                   [&](ValueId a, ValueId b) { return first[size_t(a)] < first[size_t(b)]; });
  std::map<int64_t, int64_t> freeAt;          // offset -> size
  std::multimap<int64_t, int64_t> freeBySize; // size -> offset
  auto unlist = [&](std::map<int64_t, int64_t>::iterator it) {
    auto [lo, hi] = freeBySize.equal_range(it->second);
    for (auto s = lo; s != hi; ++s)
      if (s->second == it->first) {
        freeBySize.erase(s);
        break;
      }
    return freeAt.erase(it);
  };
  auto release = [&](int64_t at, int64_t size) {
    auto next = freeAt.lower_bound(at);
    if (next != freeAt.end() && at + size == next->first) {
      size += next->second;
      next = unlist(next);
    }
    if (next != freeAt.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == at) {
        at = prev->first;
        size += prev->second;
        unlist(prev);
      }
    }
    freeAt[at] = size;
    freeBySize.insert({size, at});
  };
  using Death = std::pair<int, std::pair<int64_t, int64_t>>; // last, (offset, size)
  std::priority_queue<Death, std::vector<Death>, std::greater<>> live;
  int64_t top = 0;
  for (ValueId v : order) {
    while (!live.empty() && live.top().first < first[size_t(v)]) {
      release(live.top().second.first, live.top().second.second);
      live.pop();
    }
    const int64_t need = alignUp(bytes(v));
    int64_t at;
    if (auto fit = freeBySize.lower_bound(need); fit != freeBySize.end()) {
      at = fit->second;
      const int64_t size = fit->first;
      unlist(freeAt.find(at));
      if (size > need)
        release(at + need, size - need);
    } else if (!freeAt.empty() &&
               std::prev(freeAt.end())->first + std::prev(freeAt.end())->second == top) {
      at = std::prev(freeAt.end())->first; // the free block at the top grows
      unlist(std::prev(freeAt.end()));
      top = at + need;
    } else {
      at = top;
      top += need;
    }
    live.push({last[size_t(v)], {at, need}});
    place(v, at);
  }
}

} // namespace

MemoryPlan planMemory(const Graph &g, int64_t batch, Placement placement) {
  int n = g.size();
  MemoryPlan p;
  p.batch = batch;
  p.offset.assign(size_t(n), -1);
  p.aliasOf.resize(size_t(n));
  p.aliasOffset.assign(size_t(n), 0);
  auto bytes = [&](ValueId v) { return g.type(v).numel(batch) * 4; };

  // 1. Views alias what they view; a gradient's slot in the flat pack
  //    aliases the pack.
  for (ValueId v = 0; v < n; ++v) {
    p.aliasOf[size_t(v)] = v;
    const Node &nd = g.node(v);
    if (nd.op == Op::Param) {
      p.aliasOf[size_t(v)] = p.aliasOf[size_t(nd.inputs[0])];
      p.aliasOffset[size_t(v)] = nd.attrs.i("offset") * 4;
    } else if (nd.op == Op::Reshape) {
      p.aliasOf[size_t(v)] = p.aliasOf[size_t(nd.inputs[0])];
      p.aliasOffset[size_t(v)] = p.aliasOffset[size_t(nd.inputs[0])];
    }
  }
  for (ValueId v = n - 1; v >= 0; --v) {
    const Node &nd = g.node(v);
    if (nd.op != Op::FlatPack)
      continue;
    auto offsets = nd.attrs.ints("offsets");
    for (size_t i = 0; i < nd.inputs.size(); ++i) {
      ValueId part = nd.inputs[i];
      if (p.aliasOf[size_t(part)] == part && g.node(part).op != Op::Input) {
        p.aliasOf[size_t(part)] = p.aliasOf[size_t(v)];
        p.aliasOffset[size_t(part)] = p.aliasOffset[size_t(v)] + offsets[i] * 4;
      }
    }
  }

  // 2. Which values are stored: inputs, outputs, kernel results used
  //    outside their kernel.
  std::vector<bool> stored(size_t(n), false), external(size_t(n), false);
  for (ValueId v = 0; v < n; ++v)
    if (g.node(v).op == Op::Input)
      external[size_t(v)] = true;
  for (const Output &o : g.outputs())
    external[size_t(p.aliasOf[size_t(o.value)])] = true;
  for (ValueId v = 0; v < n; ++v) {
    for (ValueId i : g.node(v).inputs)
      if (g.node(i).group < 0 || g.node(i).group != g.node(v).group)
        stored[size_t(p.aliasOf[size_t(i)])] = true;
    if (readsGroupMemberFromMemory(g, v))
      stored[size_t(p.aliasOf[size_t(g.node(v).inputs[0])])] = true;
  }
  for (const Output &o : g.outputs())
    stored[size_t(p.aliasOf[size_t(o.value)])] = true;

  // 3. Live ranges in node order (groups are contiguous), through aliases.
  //    A kernel may write any of its results while it still reads any of
  //    its operands, so values are born at the start of their kernel and
  //    die at its end.
  std::vector<int> groupBegin(g.groups().size(), n), groupEnd(g.groups().size(), -1);
  for (ValueId v = 0; v < n; ++v)
    if (int k = g.node(v).group; k >= 0) {
      groupBegin[size_t(k)] = std::min(groupBegin[size_t(k)], int(v));
      groupEnd[size_t(k)] = std::max(groupEnd[size_t(k)], int(v));
    }
  auto begins = [&](ValueId v) {
    int k = g.node(v).group;
    return k >= 0 ? groupBegin[size_t(k)] : int(v);
  };
  auto ends = [&](ValueId v) {
    int k = g.node(v).group;
    return k >= 0 ? groupEnd[size_t(k)] : int(v);
  };
  std::vector<int> first(size_t(n), -1), last(size_t(n), -1);
  for (ValueId v = 0; v < n; ++v) {
    ValueId o = p.aliasOf[size_t(v)];
    if (first[size_t(o)] < 0 || begins(v) < first[size_t(o)])
      first[size_t(o)] = begins(v);
    last[size_t(o)] = std::max(last[size_t(o)], ends(v));
    for (ValueId i : g.node(v).inputs)
      last[size_t(p.aliasOf[size_t(i)])] = std::max(last[size_t(p.aliasOf[size_t(i)])], ends(v));
  }

  // 4. Placement: largest first around the buffers live at the same time,
  //    or in time order for very many buffers (kExactPlacementLimit);
  //    Placement::Separate puts each after the last, with no search.
  std::vector<ValueId> order;
  for (ValueId v = 0; v < n; ++v) {
    bool view = isFree(g.node(v).op) && g.node(v).op != Op::FlatPack && g.node(v).op != Op::Input;
    if (!stored[size_t(v)] || p.aliasOf[size_t(v)] != v || view)
      continue;
    if (external[size_t(v)])
      continue;
    order.push_back(v);
    p.totalBytes += bytes(v);
  }
  for (ValueId v = 0; v < n; ++v)
    if (external[size_t(v)] && p.aliasOf[size_t(v)] == v)
      p.externalBytes += bytes(v);
  std::stable_sort(order.begin(), order.end(),
                   [&](ValueId a, ValueId b) { return bytes(a) > bytes(b); });
  std::vector<Slot> placed;
  auto place = [&](ValueId v, int64_t at) {
    placed.push_back({v, at, bytes(v)});
    p.offset[size_t(v)] = at;
    p.arenaBytes = std::max(p.arenaBytes, at + bytes(v));
  };
  if (placement == Placement::Separate) {
    for (ValueId v : order)
      place(v, alignUp(p.arenaBytes));
  } else if (order.size() <= kExactPlacementLimit) {
    placeAroundLive(order, first, last, bytes, placed, place);
  } else {
    placeInTimeOrder(order, first, last, bytes, place);
  }

  // Peak live bytes: a sweep over the births and deaths.
  std::vector<int64_t> delta(size_t(n) + 1, 0);
  for (const Slot &s : placed) {
    delta[size_t(first[size_t(s.v)])] += s.size;
    delta[size_t(last[size_t(s.v)]) + 1] -= s.size;
  }
  int64_t live = 0;
  for (int64_t d : delta)
    p.peakBytes = std::max(p.peakBytes, live += d);
  return p;
}

} // namespace graphc::passes
