// tests/trajectory_test.cpp - the example models trained for 20 steps on the
// CPU backend, under every vector ISA this CPU runs, follow the reference
// interpreter's loss step by step, from the same start, without being reset.
//
// Accuracy after an epoch is a weak gate: a GEMM that loses the sum for
// K > 256 still reaches 81 % on Fashion-MNIST. A loss trajectory is not: the
// two runs share initial weights, batches and Dropout masks, so they differ
// only by float against double rounding, which grows slowly step by step:
// within 1e-5 of the loss after 20 steps when this was written, checked to
// 1e-4 (relative, or absolute below a loss of 1e-3).
#include "Isas.h"
#include "TestUtil.h"
#include "driver/Compile.h"
#include "frontend/ModelFile.h"
#include "runtime/Dataset.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

using namespace graphc;

namespace {

constexpr int64_t kBatch = 64;
/// 20 steps; 6 at a reduced size (under the sanitizers).
const int64_t kSteps = test::sized<int64_t>(20, 6);
/// The data set holds 20 batches at either size, so that the reduced run's
/// steps are the first steps of the full run (normalisation and all).
constexpr int64_t kSamples = kBatch * 20;

/// Losses of kSteps steps of `target` ("interp" or "cpu" under `isa`).
std::vector<float> trajectory(const nn::ModelSpec &spec, const ir::Shape &sample,
                              const runtime::Dataset &data, const std::string &target,
                              const std::string &isa) {
  driver::BuildOptions bo;
  bo.maxBatch = kBatch;
  bo.target = target;
  bo.cpu = isa;
  bo.threads = 2;
  auto exe = driver::build(spec, sample, bo);
  REQUIRE(bool(exe));
  auto format = runtime::sampleFormat(data.train.rows, data.train.cols, sample);
  REQUIRE(bool(format));
  // Normalised pixels (graphc train --normalize): with raw 0-255 pixels the
  // first steps are chaotic, and rounding alone sends two exact runs apart.
  format->normalize = true;
  runtime::pixelStats(data.train, &format->mean, &format->std);
  std::vector<float> x(size_t(kBatch * format->numel()));
  std::vector<int32_t> labels(static_cast<size_t>(kBatch));
  std::vector<float> losses;
  for (int64_t step = 0; step < kSteps; ++step) {
    std::vector<int64_t> idx(static_cast<size_t>(kBatch));
    std::iota(idx.begin(), idx.end(), step * kBatch);
    runtime::fillBatch(data.train, *format, idx.data(), kBatch, x.data(), labels.data());
    float loss = 0;
    REQUIRE(bool((*exe)->trainStep(x.data(), labels.data(), kBatch, &loss, nullptr)));
    losses.push_back(loss);
  }
  return losses;
}

} // namespace

TEST_CASE("20 steps of each example model on the CPU follow the interpreter's losses",
          "[cpu][train]") {
  runtime::SyntheticOptions so;
  so.train = kSamples;
  so.test = 1;
  const runtime::Dataset data = runtime::syntheticDataset(so);
  for (const char *file : {"mlp.model", "lenet.model"}) {
    auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/" + file);
    REQUIRE(bool(spec));
    auto sample = driver::imageSampleShape(*spec, data.train.rows, data.train.cols);
    REQUIRE(bool(sample));
    const std::vector<float> want = trajectory(*spec, *sample, data, "interp", "");
    for (const std::string &isa : test::runnableIsas()) {
      const std::vector<float> got = trajectory(*spec, *sample, data, "cpu", isa);
      double worst = 0;
      int64_t at = 0;
      for (int64_t s = 0; s < kSteps; ++s) {
        double d = std::abs(double(got[size_t(s)]) - want[size_t(s)]) /
                   std::max(1e-3, std::abs(double(want[size_t(s)])));
        if (!(d <= worst))
          worst = d, at = s;
      }
      INFO(file << " under " << isa << ": worst relative loss difference " << worst << " at step "
                << at << " (" << got[size_t(at)] << " against " << want[size_t(at)]
                << " in the interpreter)");
      CHECK(worst <= 1e-4);
    }
  }
}
