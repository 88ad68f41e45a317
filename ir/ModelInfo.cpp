// ir/ModelInfo.cpp - the parameter layout's sizes and Torch7's initial values.
#include "ir/ModelInfo.h"

#include "ir/Random.h"

#include <algorithm>

namespace graphc::ir {

int64_t ParamInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<float> initParams(const std::vector<ParamInfo> &layout, uint64_t seed) {
  int64_t total = 0;
  for (auto &p : layout)
    total = std::max(total, p.offset + p.numel());
  std::vector<float> flat(size_t(std::max<int64_t>(total, 1)), 0.0f);
  for (size_t t = 0; t < layout.size(); ++t) {
    const ParamInfo &p = layout[t];
    for (int64_t i = 0; i < p.numel(); ++i) {
      double u = uniform01(seed, t + 1, uint64_t(i));
      flat[size_t(p.offset + i)] = float((2 * u - 1) * p.initBound + p.initShift);
    }
  }
  return flat;
}

int64_t trainableNumel(const std::vector<ParamInfo> &layout) {
  int64_t n = 0;
  for (const ParamInfo &p : layout)
    if (p.trainable)
      n = std::max(n, p.offset + p.numel());
  return n;
}

} // namespace graphc::ir
