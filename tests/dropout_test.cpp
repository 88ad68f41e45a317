// tests/dropout_test.cpp - nn.Dropout through whole executables, on the
// interpreter and the CPU backend: a fresh mask at every step, the same mask
// again from the same (seed, step), each element kept with probability 1-p
// and scaled by 1/(1-p) so that the expected value is kept, and evaluation
// the identity. The references are independent of the executable: the mask a
// step used is read back from the update it made, and the evaluation of a
// Dropout model is compared with the same model without the Dropout.
#include "TestUtil.h"
#include "driver/Compile.h"
#include "ir/Random.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

using namespace graphc;

namespace {

const std::vector<std::string> kTargets{"interp", "cpu"};

std::unique_ptr<runtime::Executable> buildFor(const nn::ModelSpec &spec, const ir::Shape &sample,
                                              const std::string &target, uint64_t seed,
                                              int64_t maxBatch) {
  driver::BuildOptions o;
  o.target = target;
  o.seed = seed;
  o.maxBatch = maxBatch;
  auto exe = driver::build(spec, sample, o);
  INFO((exe ? "" : exe.diag().str()));
  REQUIRE(bool(exe));
  return std::move(*exe);
}

constexpr int64_t kWidth = 256;
constexpr double kP = 0.5;

/// View(256), Dropout(0.5), Linear(256, 5), LogSoftMax, plain sgd: one step
/// on a single all-ones sample changes column i of the weight exactly when
/// element i was kept (every softmax gradient element is nonzero).
nn::ModelSpec maskProbe() {
  nn::ModelSpec spec;
  spec.model.add(nn::View(kWidth))
      .add(nn::Dropout(kP))
      .add(nn::Linear(kWidth, 5))
      .add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  spec.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.1}}, {}};
  spec.file = "probe.model";
  return spec;
}

/// The keep-set of the Dropout in the step `exe` makes next, read from the
/// weight columns that step moves; the parameters and step are put back after.
std::vector<bool> keptByNextStep(runtime::Executable &exe) {
  const int64_t np = exe.info().numParams;
  std::vector<float> before(exe.params(), exe.params() + np);
  const int64_t step = exe.step();
  std::vector<float> x(kWidth, 1.0f);
  int32_t label = 2;
  float loss = 0;
  REQUIRE(bool(exe.trainStep(x.data(), &label, 1, &loss, nullptr)));
  const ir::ParamInfo &w = exe.info().params.at(0);
  REQUIRE(w.shape == ir::Shape{5, kWidth});
  std::vector<bool> kept(kWidth, false);
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t i = 0; i < kWidth; ++i) {
      size_t at = size_t(w.offset + r * kWidth + i);
      kept[size_t(i)] = kept[size_t(i)] || exe.params()[at] != before[at];
    }
  std::copy(before.begin(), before.end(), exe.params());
  exe.setStep(step);
  return kept;
}

/// The keep-set the shared generator (ir/Random.h) draws for (seed, step).
std::vector<bool> expectedKept(uint64_t seed, int64_t step) {
  std::vector<bool> kept(kWidth);
  int32_t s = runtime::stepSeed(seed, step);
  for (int64_t i = 0; i < kWidth; ++i)
    kept[size_t(i)] = ir::dropoutMask(uint64_t(s), 1, uint64_t(i), float(kP)) != 0;
  return kept;
}

int64_t differences(const std::vector<bool> &a, const std::vector<bool> &b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    n += a[i] != b[i];
  return n;
}

} // namespace

TEST_CASE("Dropout draws a fresh mask at every step, the same again from (seed, step)",
          "[dropout]") {
  for (const std::string &target : kTargets) {
    INFO("target " << target);
    auto exe = buildFor(maskProbe(), {kWidth}, target, 7, 4);
    std::vector<std::vector<bool>> masks;
    for (int64_t step = 0; step < 4; ++step) {
      INFO("step " << step);
      exe->setStep(step);
      masks.push_back(keptByNextStep(*exe));
      CHECK(exe->step() == step);
      int64_t kept = std::count(masks.back().begin(), masks.back().end(), true);
      // Binomial(256, 0.5): sd 8; 40 is 5 sd.
      CHECK(std::abs(double(kept) - kWidth * (1 - kP)) < 40);
      CHECK(differences(masks.back(), expectedKept(7, step)) == 0);
    }
    // Two independent masks differ in 2p(1-p) = half of the elements: 128, sd 8.
    for (size_t a = 0; a < masks.size(); ++a)
      for (size_t b = a + 1; b < masks.size(); ++b) {
        INFO("steps " << a << " and " << b);
        CHECK(differences(masks[a], masks[b]) > 88);
      }
    // Reproducible: another executable with the same seed, at step 2, draws
    // step 2's mask; one with another seed draws another.
    auto again = buildFor(maskProbe(), {kWidth}, target, 7, 4);
    again->setStep(2);
    CHECK(differences(keptByNextStep(*again), masks[2]) == 0);
    auto other = buildFor(maskProbe(), {kWidth}, target, 8, 4);
    other->setStep(2);
    CHECK(differences(keptByNextStep(*other), masks[2]) > 88);
    // setSeed, as a resumed run calls it, takes the saved run's masks.
    other->setSeed(7);
    CHECK(differences(keptByNextStep(*other), masks[2]) == 0);
  }
}

TEST_CASE("Dropout keeps the expected value: 0 or x/(1-p), kept with probability 1-p",
          "[dropout]") {
  // View(10), Dropout(p), Linear(10, 10) with cross-entropy: the step's
  // output is the Linear's, and with an identity weight and zero bias it is
  // Dropout's output itself.
  for (double p : {0.2, 0.5}) {
    nn::ModelSpec spec;
    spec.model.add(nn::View(10)).add(nn::Dropout(p)).add(nn::Linear(10, 10));
    spec.criterion = nn::Criterion{nn::CriterionKind::CrossEntropy, {}};
    spec.optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.1}}, {}};
    spec.file = "expect.model";
    for (const std::string &target : kTargets) {
      INFO("target " << target << ", p " << p);
      const int64_t n = 256, steps = 8;
      auto exe = buildFor(spec, {10}, target, 3, n);
      const int64_t np = exe->info().numParams;
      std::mt19937 rng(4);
      double sum = 0;
      int64_t count = 0, dropped = 0, bad = 0;
      for (int64_t s = 0; s < steps; ++s) {
        std::fill(exe->params(), exe->params() + np, 0.0f);
        const ir::ParamInfo &w = exe->info().params.at(0);
        REQUIRE(w.shape == ir::Shape{10, 10});
        for (int64_t i = 0; i < 10; ++i)
          exe->params()[w.offset + i * 10 + i] = 1.0f;
        auto xt = test::randomTensor({n, 10}, rng, 0.5, 2);
        std::vector<float> x(xt.data.begin(), xt.data.end()), out(size_t(n * 10));
        auto lt = test::randomLabels(n, 10, rng);
        std::vector<int32_t> labels(lt.data.begin(), lt.data.end());
        float loss = 0;
        REQUIRE(bool(exe->trainStep(x.data(), labels.data(), n, &loss, out.data())));
        for (size_t i = 0; i < x.size(); ++i) {
          double r = double(out[i]) / double(x[i]);
          sum += r;
          ++count;
          if (out[i] == 0)
            ++dropped;
          else if (std::abs(r - 1 / (1 - p)) > 1e-5)
            ++bad;
        }
      }
      CAPTURE(bad, dropped, count);
      CHECK(bad == 0);
      // The dropped fraction and the mean ratio, each within 5 standard
      // deviations of a Bernoulli(p) mask over `count` elements.
      const double fracSd = std::sqrt(p * (1 - p) / double(count));
      const double meanSd = std::sqrt(p / (1 - p) / double(count));
      CHECK(std::abs(double(dropped) / double(count) - p) < 5 * fracSd);
      CHECK(std::abs(sum / double(count) - 1) < 5 * meanSd);
    }
  }
}

TEST_CASE("in evaluation Dropout is the identity", "[dropout]") {
  // The same layers without the Dropout, with the same parameters, are the
  // reference: evaluation must give exactly their output.
  nn::ModelSpec with, without;
  with.model.add(nn::View(64))
      .add(nn::Linear(64, 32))
      .add(nn::ReLU())
      .add(nn::Dropout(0.4))
      .add(nn::Linear(32, 10))
      .add(nn::LogSoftMax());
  without.model.add(nn::View(64))
      .add(nn::Linear(64, 32))
      .add(nn::ReLU())
      .add(nn::Linear(32, 10))
      .add(nn::LogSoftMax());
  for (nn::ModelSpec *s : {&with, &without}) {
    s->criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
    s->optimizer = nn::Optimizer{"sgd", {{"learningRate", 0.1}}, {}};
    s->file = "eval.model";
  }
  for (const std::string &target : kTargets) {
    INFO("target " << target);
    const int64_t n = 33;
    auto a = buildFor(with, {64}, target, 5, n);
    auto b = buildFor(without, {64}, target, 6, n);
    const int64_t np = a->info().numParams;
    REQUIRE(b->info().numParams == np);
    for (size_t t = 0; t < 4; ++t) {
      CHECK(a->info().params.at(t).offset == b->info().params.at(t).offset);
      CHECK(a->info().params.at(t).shape == b->info().params.at(t).shape);
    }
    std::copy(a->params(), a->params() + np, b->params());
    std::mt19937 rng(8);
    auto xt = test::randomTensor({n, 64}, rng, 0, 1);
    std::vector<float> x(xt.data.begin(), xt.data.end()), got(size_t(n * 10)), want(size_t(n * 10));
    // After a few training steps too: evaluation stays the identity.
    for (int step = 0; step < 3; ++step) {
      INFO("after " << step << " training steps");
      REQUIRE(bool(a->predict(x.data(), n, got.data())));
      REQUIRE(bool(b->predict(x.data(), n, want.data())));
      CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
      CAPTURE(got[0], want[0]);
      std::vector<int32_t> labels(size_t(n), 1);
      float loss = 0;
      REQUIRE(bool(a->trainStep(x.data(), labels.data(), n, &loss, nullptr)));
      std::copy(a->params(), a->params() + np, b->params());
    }
  }
}
