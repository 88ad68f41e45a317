// tests/TestUtil.h - shared helpers: random tensors, comparisons, the seed MLP.
#pragma once

#include "frontend/Trace.h"
#include "ir/Interpreter.h"

#include <cmath>
#include <random>
#include <string>

namespace graphc::test {

inline ir::Tensor randomTensor(ir::Shape shape, std::mt19937 &rng, double lo = -1,
                               double hi = 1) {
  ir::Tensor t(std::move(shape));
  std::uniform_real_distribution<double> u(lo, hi);
  for (double &x : t.data)
    x = u(rng);
  return t;
}

inline ir::Tensor randomLabels(int64_t n, int64_t classes, std::mt19937 &rng) {
  ir::Tensor t({n});
  std::uniform_int_distribution<int64_t> u(0, classes - 1);
  for (double &x : t.data)
    x = double(u(rng));
  return t;
}

/// ||a - b|| / max(||b||, tiny): the relative error of a against b.
inline double relError(const std::vector<double> &a, const std::vector<double> &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  if (a.size() != b.size())
    return INFINITY;
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

/// The seed MLP of DESIGN.md, built through the C++ API.
inline nn::ModelSpec seedMlp() {
  nn::ModelSpec spec;
  spec.model.add(nn::View(1024))
      .add(nn::Linear(1024, 1000))
      .add(nn::ReLU())
      .add(nn::Linear(1000, 1000))
      .add(nn::ReLU())
      .add(nn::Linear(1000, 10))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  spec.optimizer = nn::Optimizer{"adagrad", {{"learningRate", 0.001}}, {}};
  spec.file = "mlp.model";
  return spec;
}

} // namespace graphc::test
