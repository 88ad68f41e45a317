// ir/ModelInfo.cpp - the parameter layout's sizes and Torch7's initial values.
#include "ir/ModelInfo.h"

#include "ir/Random.h"

#include <algorithm>
#include <cmath>

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
      double v;
      if (p.initNormal) { // Box-Muller on two draws of the element's stream
        double u1 = uniform01(seed, t + 1, 2 * uint64_t(i)),
               u2 = uniform01(seed, t + 1, 2 * uint64_t(i) + 1);
        v = p.initShift +
            p.initBound * std::sqrt(-2 * std::log(1 - u1)) * std::cos(6.283185307179586 * u2);
      } else {
        v = (2 * uniform01(seed, t + 1, uint64_t(i)) - 1) * p.initBound + p.initShift;
      }
      flat[size_t(p.offset + i)] = float(v);
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
