// tests/TestUtil.h - shared helpers: random tensors, comparisons, the seed MLP.
#pragma once

#include "Skip.h"
#include "frontend/Trace.h"
#include "ir/Interpreter.h"
#include "runtime/Trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace graphc::test {

inline ir::Tensor randomTensor(ir::Shape shape, std::mt19937 &rng, double lo = -1, double hi = 1) {
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

/// Whether the suite runs at a reduced size: GRAPHC_TEST_REDUCED=1, which
/// scripts/test.sh sets for its run of the whole suite under AddressSanitizer
/// and UndefinedBehaviorSanitizer, where double-precision references run
/// several times slower. Every test still runs, on fewer random cases, steps
/// and batches; the Release run keeps the full sizes.
/// Training options for a test: no progress, no output, no log.
inline runtime::TrainOptions quietTraining(int64_t epochs, int64_t batch, uint64_t seed) {
  runtime::TrainOptions o;
  o.epochs = epochs;
  o.batch = batch;
  o.seed = seed;
  o.progress = runtime::Progress::None;
  o.out = nullptr;
  o.log = nullptr;
  return o;
}

inline bool reducedSize() {
  const char *e = std::getenv("GRAPHC_TEST_REDUCED");
  return e && *e && std::string(e) != "0";
}

/// `full`, or `reduced` at a reduced size (reducedSize()).
template <class T> T sized(T full, T reduced) { return reducedSize() ? reduced : full; }

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

/// The largest elementwise error of `got` against `want`, each difference
/// taken relative to max(|want[i]|, floor * max|want|): relative where an
/// element is of the tensor's size, absolute (at that scale) where it is
/// near zero. One wrong element shows at its own size, not diluted by the
/// rest of the tensor as a norm over the whole would.
template <class T>
double maxElementError(const T *got, const T *want, size_t n, double floor = 1e-2) {
  double scale = 0;
  for (size_t i = 0; i < n; ++i)
    scale = std::max(scale, std::abs(double(want[i])));
  const double low = std::max(floor * scale, 1e-30);
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = std::abs(double(got[i]) - double(want[i]));
    double e = d / std::max(std::abs(double(want[i])), low);
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

/// maxElementError for doubles; a size mismatch is an infinite error.
inline double maxElementError(const std::vector<double> &got, const std::vector<double> &want,
                              double floor = 1e-2) {
  return got.size() != want.size() ? INFINITY
                                   : maxElementError(got.data(), want.data(), got.size(), floor);
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

/// A fresh folder under the system's temporary directory, removed (with
/// everything in it, write bits restored first) when the test ends.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string &prefix = "graphc-test") {
    std::string t = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(t.data()))
      throw std::runtime_error("cannot create a temporary folder");
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  std::string operator/(const std::string &name) const { return (path / name).string(); }
};

/// Small models that cover every layer, criterion and optimizer kind, with
/// a name each; inputs are 1x32x32.
/// Two convolutions, each with a SpatialBatchNormalization and a ReLU, on
/// 3x10x10 samples: planes of 100 and 25 pixels, so that a BatchNorm's sums
/// run their 32-lane chunks, 8-lane chunks and single elements.
inline nn::ModelSpec batchNormNet() {
  nn::ModelSpec spec;
  spec.model.add(nn::SpatialConvolution(3, 4, 3, 3, 1, 1, 1, 1))
      .add(nn::SpatialBatchNormalization(4))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::SpatialConvolution(4, 6, 3, 3, 1, 1, 1, 1))
      .add(nn::SpatialBatchNormalization(6))
      .add(nn::ReLU())
      .add(nn::View(6 * 5 * 5))
      .add(nn::Linear(150, 10))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  spec.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.05}, {"momentum", 0.9}}, {}};
  spec.input = ir::Shape{3, 10, 10};
  return spec;
}

inline std::vector<std::pair<std::string, nn::ModelSpec>> coverageModels() {
  std::vector<std::pair<std::string, nn::ModelSpec>> out;
  out.push_back({"seed mlp", seedMlp()});
  nn::ModelSpec small = seedMlp();
  small.model = nn::Sequential();
  small.model.add(nn::View(1024))
      .add(nn::Linear(1024, 40))
      .add(nn::ReLU())
      .add(nn::Linear(40, 30))
      .add(nn::ReLU())
      .add(nn::Linear(30, 10))
      .add(nn::LogSoftMax());
  out.push_back({"small relu mlp", small});
  nn::ModelSpec conv;
  conv.model.add(nn::SpatialConvolutionMM(1, 4, 5, 5))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::SpatialConvolution(4, 6, 3, 3, 2, 2, 1))
      .add(nn::Tanh())
      .add(nn::View(6 * 7 * 7))
      .add(nn::Dropout(0.25))
      .add(nn::Linear(294, 10))
      .add(nn::LogSoftMax());
  conv.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  conv.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.05}, {"momentum", 0.9}}, {}};
  out.push_back({"conv + dropout, sgd momentum", conv});
  nn::ModelSpec mse;
  mse.model.add(nn::View(1024))
      .add(nn::Linear(1024, 30))
      .add(nn::Sigmoid())
      .add(nn::Linear(30, 10))
      .add(nn::SoftMax());
  mse.criterion = nn::Criterion{nn::CriterionKind::MSE, {}};
  mse.optimizer = nn::Optimizer{"adam", {{"learningRate", 0.01}}, {}};
  out.push_back({"mse, adam", mse});
  nn::ModelSpec ce;
  ce.model.add(nn::Reshape({1024}))
      .add(nn::Linear(1024, 20))
      .add(nn::Tanh())
      .add(nn::Linear(20, 10));
  ce.criterion = nn::Criterion{nn::CriterionKind::CrossEntropy, {}};
  ce.optimizer = nn::Optimizer{"adagrad", {{"learningRate", 0.1}, {"weightDecay", 0.01}}, {}};
  out.push_back({"cross entropy, adagrad with decay", ce});
  // Torch7's other optimizers, each on a small MLP.
  const std::pair<const char *, std::map<std::string, double>> others[] = {
      {"rmsprop", {{"learningRate", 0.01}, {"weightDecay", 0.01}, {"initialMean", 0.1}}},
      {"adadelta", {{"rho", 0.95}, {"weightDecay", 0.01}}},
      {"nag", {{"learningRate", 0.01}, {"learningRateDecay", 0.1}, {"weightDecay", 0.01}}},
  };
  for (const auto &[name, config] : others) {
    nn::ModelSpec m;
    m.model.add(nn::View(1024)).add(nn::Linear(1024, 16)).add(nn::Tanh()).add(nn::Linear(16, 10));
    m.model.add(nn::LogSoftMax());
    m.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
    m.optimizer = nn::Optimizer{name, config, {}};
    out.push_back({std::string("small tanh mlp, ") + name, m});
  }
  // Torch7's table layers: a residual block (ConcatTable, CAddTable) with
  // Threshold, MulConstant and Identity; an inception-style nn.Concat(2) with
  // AddConstant; ConcatTable into JoinTable(1, 3); SpatialAveragePooling.
  nn::ModelSpec tables;
  nn::Module residual = nn::Sequential();
  residual.add(nn::SpatialConvolution(4, 4, 3, 3, 1, 1, 1, 1))
      .add(nn::Threshold(0.1, 0))
      .add(nn::SpatialConvolution(4, 4, 3, 3, 1, 1, 1, 1))
      .add(nn::MulConstant(0.5));
  nn::Module shifted = nn::Sequential();
  shifted.add(nn::AddConstant(-0.1)).add(nn::SpatialConvolution(4, 3, 3, 3, 2, 2, 1, 1));
  tables.model.add(nn::SpatialConvolution(1, 4, 3, 3, 1, 1, 1, 1))
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::ConcatTable().add(residual).add(nn::Identity()))
      .add(nn::CAddTable(true))
      .add(nn::ReLU())
      .add(nn::Concat(2).add(nn::SpatialConvolution(4, 2, 1, 1, 2, 2)).add(shifted))
      .add(nn::ConcatTable().add(nn::Identity()).add(nn::MulConstant(-1)))
      .add(nn::JoinTable(1, 3))
      .add(nn::SpatialAveragePooling(3, 3, 2, 2, 1, 1))
      .add(nn::View(10 * 4 * 4))
      .add(nn::Linear(160, 10))
      .add(nn::LogSoftMax());
  tables.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  tables.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.05}, {"momentum", 0.9}}, {}};
  out.push_back({"residual block, concat and join tables", tables});
  // The Torch7 tutorial's layers: connection-table convolutions (full and
  // oneToOne), subtractive normalisation with a separable kernel (constant
  // tensors; not symmetric, so that a tensor read backwards shows), L2 and
  // L3 pooling (pow), cropping (SpatialZeroPadding's negative sizes).
  nn::ModelSpec tutorial;
  tutorial.model.add(nn::SpatialConvolutionMap(nn::fullTable(1, 4), 5, 5, 2, 2))
      .add(nn::SpatialSubtractiveNormalization(4, nn::TensorArg{{5}, {0.2, 0.6, 1, 0.8, 0.3}}))
      .add(nn::Tanh())
      .add(nn::SpatialZeroPadding(-1, -1, -1, 0))
      .add(nn::SpatialConvolutionMap(nn::oneToOneTable(4), 3, 3))
      .add(nn::SpatialLPPooling(4, 2, 2, 2))
      .add(nn::SpatialLPPooling(4, 3, 2, 2))
      .add(nn::View(4 * 2 * 2))
      .add(nn::Linear(16, 10))
      .add(nn::LogSoftMax());
  tutorial.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  tutorial.optimizer = nn::Optimizer{"adagrad", {{"learningRate", 0.01}}, {}};
  out.push_back({"maps, subtractive normalisation, LP pooling", tutorial});
  // BatchNorm over planes and over features (no affine part, own eps and
  // momentum), its running statistics packed behind the weights; sgd with
  // weight decay, which must skip them. (Not adam: the biases before a
  // BatchNorm have a zero gradient, whose rounding adam's first step turns
  // into lr * sign.)
  nn::ModelSpec bn;
  bn.model.add(nn::SpatialConvolution(1, 4, 3, 3, 2, 2, 1, 1))
      .add(nn::SpatialBatchNormalization(4))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::View(4 * 8 * 8))
      .add(nn::Linear(256, 12))
      .add(nn::BatchNormalization(12, 1e-3, 0.3, false))
      .add(nn::Tanh())
      .add(nn::Linear(12, 10))
      .add(nn::LogSoftMax());
  bn.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  bn.optimizer =
      nn::Optimizer{"sgd", {{"learningRate", 0.05}, {"momentum", 0.9}, {"weightDecay", 0.01}}, {}};
  out.push_back({"batchnorm, sgd with decay", bn});
  return out;
}

} // namespace graphc::test
