// tests/nonfinite_test.cpp - a diverged step is stopped and explained: the
// trainer names the first kernel group that made a NaN or infinity, on every
// target (the interpreter, the cpu target under each vector ISA this CPU
// runs, and the cuda target where a GPU is present).
#include "driver/Compile.h"
#include "runtime/Trainer.h"

#include "TestUtil.h"
#ifdef GRAPHC_HAVE_CPU_BACKEND
#include "Isas.h"
#endif
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
#include "runtime/cuda/CudaRuntime.h"
#endif

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace graphc;
using namespace graphc::runtime;
using namespace graphc::driver;

namespace {


/// View(3), Linear(3, 4), ReLU, Linear(4, 3), LogSoftMax under sgd. Its
/// flat parameters: 1.weight [4,3] at 0, 1.bias at 12, 3.weight [3,4] at
/// 16, 3.bias at 28.
nn::ModelSpec threeByFour(double lr) {
  nn::ModelSpec spec;
  spec.model.add(nn::View(3)).add(nn::Linear(3, 4)).add(nn::ReLU());
  spec.model.add(nn::Linear(4, 3)).add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{};
  spec.optimizer = nn::Optimizer{"sgd", {{"learningRate", lr}}, {}};
  spec.file = "three.model";
  return spec;
}

/// 32 black samples of 3 pixels, class 1, but sample `odd` (when >= 0),
/// which is (0, 1, 1) and class 0.
ImageSet oneOdd(int64_t odd) {
  ImageSet set;
  set.count = 32;
  set.rows = 1;
  set.cols = 3;
  set.pixels.assign(32 * 3, 0);
  set.labels.assign(32, 1);
  if (odd >= 0) {
    set.pixels[size_t(odd * 3 + 1)] = set.pixels[size_t(odd * 3 + 2)] = 1;
    set.labels[size_t(odd)] = 0;
  }
  return set;
}

/// Trains threeByFour on `target` (cpu: under `isa`) from `weights` (flat
/// index -> value, zeros elsewhere) for epoch 1 on black samples and epoch
/// 2 with the odd sample `odd`; the error that stops it.
std::string divergence(const std::string &target, const std::string &isa, double lr,
                       const std::map<int, float> &weights, int64_t odd) {
  BuildOptions o;
  o.target = target;
  o.cpu = isa;
  o.maxBatch = 2;
  auto exe = build(threeByFour(lr), {3}, o);
  REQUIRE(exe);
  REQUIRE((*exe)->info().numParams == 31);
  std::fill((*exe)->params(), (*exe)->params() + 31, 0.0f);
  for (auto [at, w] : weights)
    (*exe)->params()[at] = w;
  auto format = sampleFormat(1, 3, {3});
  REQUIRE(format);
  TrainOptions opts = test::quietTraining(2, 2, 1);
  auto first = trainEpoch(**exe, oneOdd(-1), *format, opts, 1);
  REQUIRE(first);
  REQUIRE(first->step == 16);
  auto second = trainEpoch(**exe, oneOdd(odd), *format, opts, 2);
  REQUIRE(!second);
  return second.diag().str();
}

} // namespace

TEST_CASE("a diverged step names the first kernel group that made a non-finite value",
          "[trainer][cpu][cuda]") {
  // Black samples leave every weight but 3.bias alone (their hidden units
  // are 0, and so is every gradient through them), so only the odd sample
  // can overflow: placed at position 10 of epoch 2's order, its batch
  // (of 2) is the 6th, step 16 + 6 = 22, and it is sample 0 of its batch.
  std::vector<int64_t> order = epochOrder(32, 1, 2);
  const int64_t odd = order[10], oddStep = 22;
  std::vector<std::pair<std::string, std::string>> runs = {{"interp", ""}};
#ifdef GRAPHC_HAVE_CPU_BACKEND
  for (const std::string &isa : test::runnableIsas())
    runs.push_back({"cpu", isa});
#endif
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
  if (runtime::cuda::deviceAvailable())
    runs.push_back({"cuda", ""});
  else
    WARN("without a GPU: the cuda target's diagnosis is not run");
#endif
  for (const auto &[target, isa] : runs) {
    INFO(target << " " << isa);
    { // a forward overflow: the first layer's GEMM
      // Hidden unit 0 sees 3e38 + 3e38 on the odd sample: inf in f32, and
      // 6e38 in the interpreter's doubles, which the loss carries (f32 inf).
      std::string msg =
          divergence(target, isa, 0.1, {{1, 3e38f}, {2, 3e38f}, {16, -1}, {24, 1}}, odd);
      INFO(msg);
      CHECK(msg.find(fmt::format("step {} (epoch 2, batch 6): the loss is ", oddStep)) !=
            std::string::npos);
      CHECK(msg.find("the first non-finite value came from kernel group @k0 gemm \"bias add, then "
                     "ReLU as GEMM epilogue\" (forward: matmul, add, relu; reads 1.weight, "
                     "1.bias): ") != std::string::npos);
      CHECK(msg.find(" element 0 = inf") != std::string::npos);
    }
    { // an update overflow with a finite loss, found at the next step
      // Hidden unit 0 is 3e38 on the odd sample; 3.weight's column 0 is 0,
      // so the loss stays finite, but its gradient times the learning rate
      // 10 overflows in the update: 3.weight[0][0], at 16, becomes inf and
      // the next step's loss NaN.
      std::string msg = divergence(target, isa, 10, {{2, 3e38f}}, odd);
      INFO(msg);
      CHECK(msg.find(fmt::format("step {} (epoch 2, batch 7): the loss is ", oddStep + 1)) !=
            std::string::npos);
      CHECK(msg.find(fmt::format("the parameters were already non-finite: the update of step {} "
                                 "(batch 6) made them from a finite loss; the first non-finite "
                                 "value came from kernel group @k7 update \"the whole optimizer "
                                 "update over the flat parameter buffer\" (optimizer update: ",
                                 oddStep)) != std::string::npos);
      CHECK(msg.find(" element 16 = ") != std::string::npos);
    }
  }
}
