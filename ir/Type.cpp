// ir/Type.cpp - printing and sizes of tensor types.
#include "ir/Type.h"

#include <fmt/format.h>

namespace graphc::ir {

int64_t Type::numel(int64_t batch) const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d == kBatch ? batch : d;
  return n;
}

int64_t Type::rowNumel() const {
  int64_t n = 1;
  for (size_t i = batched() ? 1 : 0; i < shape.size(); ++i)
    n *= shape[i];
  return n;
}

bool withinMaxElements(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d <= 0)
      continue;
    if (n > kMaxElements / d)
      return false;
    n *= d;
  }
  return true;
}

std::string_view dtypeName(DType t) { return t == DType::F32 ? "f32" : "i32"; }

std::string str(const Shape &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i)
      out += ",";
    out += s[i] == kBatch ? std::string("N") : std::to_string(s[i]);
  }
  return out + "]";
}

std::string str(const Type &t) { return std::string(dtypeName(t.dtype)) + str(t.shape); }

Shape concrete(const Shape &s, int64_t batch) {
  Shape out = s;
  for (int64_t &d : out)
    if (d == kBatch)
      d = batch;
  return out;
}

} // namespace graphc::ir
