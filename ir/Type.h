// ir/Type.h - tensor types: a dtype and a shape whose leading dim may be the
// symbolic batch size N.
//
// Every dimension is a compile-time constant except the batch dimension,
// which stays symbolic (kBatch) so that one compiled step serves every batch
// size, including the short last batch of an epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace graphc::ir {

enum class DType { F32, I32 };

/// The symbolic batch dimension, printed `N`. Only ever the leading dim.
inline constexpr int64_t kBatch = -1;

using Shape = std::vector<int64_t>;

struct Type {
  DType dtype = DType::F32;
  Shape shape;

  bool operator==(const Type &) const = default;
  int rank() const { return int(shape.size()); }
  bool batched() const { return !shape.empty() && shape[0] == kBatch; }
  /// Number of elements with N replaced by `batch`.
  int64_t numel(int64_t batch = 1) const;
  /// Number of elements per batch row (all dims but a symbolic leading N).
  int64_t rowNumel() const;
};

/// The most elements a type may hold in its static dimensions (2^40), so
/// that numel() times any batch graphc plans (at most 2^20) fits int64_t.
inline constexpr int64_t kMaxElements = int64_t(1) << 40;

/// Whether the static dimensions of `s` hold at most kMaxElements elements
/// (computed without overflow; N and negative sizes are skipped).
bool withinMaxElements(const Shape &s);

std::string_view dtypeName(DType t);
/// `f32[N,1000]`, `i32[N]`, `f32[]`.
std::string str(const Type &t);
/// `[N,1000]`.
std::string str(const Shape &s);
/// Shape with N replaced by a concrete batch size.
Shape concrete(const Shape &s, int64_t batch);

} // namespace graphc::ir
