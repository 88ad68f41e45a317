// tests/distributed_test.cpp - the step split in two for data parallelism
// (passes/Optimizer.h's gradientsProgram and updateProgram, Executable's
// computeGradients and applyUpdate), on the interpreter and the CPU backend
// (and the cuda target where a device, or the emulated one, is there):
//
//  - computeGradients then applyUpdate makes the same parameters, optimizer
//    state and step counter as trainStep, for every coverage model (all
//    optimizers but nag, Dropout, BatchNorm's running statistics);
//  - a batch cut into shares, each share's gradient weighted by its size and
//    summed, is the whole batch's gradient: Dropout's masks are drawn per
//    global sample (the sample offset), so they do not depend on the cut
//    (not with BatchNorm, whose statistics are each share's own);
//  - the shares of a batch (runtime/Distributed.h's shareOf).
#include "TestUtil.h"
#include "driver/Compile.h"
#include "runtime/Distributed.h"

#include <catch2/catch.hpp>

#include <random>

#ifdef GRAPHC_HAVE_CUDA_RUNTIME
#include "runtime/cuda/CudaRuntime.h"
#endif

using namespace graphc;

namespace {

std::unique_ptr<runtime::Executable> buildSplit(const nn::ModelSpec &spec,
                                                const std::string &target, int64_t maxBatch) {
  driver::BuildOptions o;
  o.target = target;
  o.seed = 7;
  o.maxBatch = maxBatch;
  o.split = true;
  auto exe = driver::build(spec, {1, 32, 32}, o);
  INFO((exe ? "" : exe.diag().str()));
  REQUIRE(bool(exe));
  REQUIRE((*exe)->canSplitStep());
  return std::move(*exe);
}

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> labels;
};

Batch randomBatch(int64_t n, std::mt19937 &rng) {
  Batch b;
  std::uniform_real_distribution<float> u(-1, 1);
  std::uniform_int_distribution<int32_t> c(0, 9);
  for (int64_t i = 0; i < n * 1024; ++i)
    b.x.push_back(u(rng));
  for (int64_t i = 0; i < n; ++i)
    b.labels.push_back(c(rng));
  return b;
}

/// Parameters, then each state slot, then the step counter.
std::vector<float> everything(runtime::Executable &exe) {
  const int64_t np = exe.info().numParams;
  std::vector<float> out(exe.params(), exe.params() + np);
  for (const std::string &slot : exe.info().stateSlots)
    out.insert(out.end(), exe.state(slot), exe.state(slot) + np);
  out.push_back(float(exe.step()));
  return out;
}

/// computeGradients then applyUpdate against trainStep on `target`.
void checkSplitIsOneStep(const std::string &target) {
  for (auto &[name, spec] : test::coverageModels()) {
    if (spec.optimizer->name == "nag" || (target == "interp" && name == "seed mlp"))
      continue;
    DYNAMIC_SECTION(target << ": " << name) {
      const int64_t n = 5;
      auto whole = buildSplit(spec, target, n), split = buildSplit(spec, target, n);
      std::mt19937 rng(3);
      const int64_t np = whole->info().numParams;
      std::vector<float> grad(static_cast<size_t>(np));
      for (int step = 0; step < 3; ++step) {
        Batch b = randomBatch(n, rng);
        float l1 = 0, l2 = 0;
        std::vector<float> o1(size_t(n * 10)), o2(size_t(n * 10));
        REQUIRE(bool(whole->trainStep(b.x.data(), b.labels.data(), n, &l1, o1.data())));
        REQUIRE(bool(split->computeGradients(b.x.data(), b.labels.data(), n, 0, &l2, o2.data(),
                                             grad.data())));
        REQUIRE(bool(split->applyUpdate(grad.data())));
        // The interpreter computes in double but hands the gradient over
        // in float: one rounding more than its fused step.
        const double tol = target == "interp" ? 1e-5 : 1e-6;
        CHECK(l1 == Approx(l2).epsilon(tol));
        CHECK(test::maxElementError(o2.data(), o1.data(), o1.size(), 1e-3) < tol);
        std::vector<float> a = everything(*whole), c = everything(*split);
        REQUIRE(a.size() == c.size());
        CHECK(test::maxElementError(c.data(), a.data(), a.size(), 1e-3) < tol);
      }
    }
  }
}

/// A batch cut into 3 shares on `target`: each share's gradient weighted by
/// its size, summed, against the whole batch's.
void checkSharesMakeBatch(const std::string &target) {
  for (auto &[name, spec] : test::coverageModels()) {
    // BatchNorm normalises each share with the share's own statistics,
    // so its gradient is not the batch's (as in PyTorch's data
    // parallelism without SyncBatchNorm).
    if (spec.optimizer->name == "nag" || name == "seed mlp" ||
        name.find("batchnorm") != std::string::npos)
      continue;
    DYNAMIC_SECTION(target << ": " << name) {
      const int64_t n = 7;
      auto exe = buildSplit(spec, target, n);
      exe->setStep(4); // a step whose Dropout seed is not the first
      std::mt19937 rng(5);
      Batch b = randomBatch(n, rng);
      const int64_t np = exe->info().numParams;
      std::vector<float> want(static_cast<size_t>(np)), got(want.size(), 0.0f), part(want.size());
      float loss = 0;
      REQUIRE(bool(
          exe->computeGradients(b.x.data(), b.labels.data(), n, 0, &loss, nullptr, want.data())));
      double lossSum = 0;
      for (int k = 0; k < 3; ++k) {
        runtime::Share s = runtime::shareOf(n, k, 3);
        float l = 0;
        REQUIRE(bool(exe->computeGradients(b.x.data() + s.begin * 1024, b.labels.data() + s.begin,
                                           s.count, s.begin, &l, nullptr, part.data())));
        for (int64_t i = 0; i < np; ++i)
          got[size_t(i)] += part[size_t(i)] * float(double(s.count) / double(n));
        lossSum += double(l) * double(s.count) / double(n);
      }
      CHECK(lossSum == Approx(loss).epsilon(1e-5));
      // Float sums in another order (3 shares, then weighted): the cuda
      // target's convolution gradients sum each share's pixels in float
      // in one pass (about 1.1e-4 for conv + dropout, cuDNN's or graphc's
      // kernels alike), the CPU backend's in blocks.
      const double tol = target == "cuda" ? 3e-4 : 1e-4;
      CHECK(test::maxElementError(got.data(), want.data(), got.size(), 1e-3) < tol);
      REQUIRE(exe->step() == 4); // computing gradients updates nothing
    }
  }
}

} // namespace

TEST_CASE("split step: gradients then update is one training step", "[distributed]") {
  for (const std::string target : {"interp", "cpu"})
    checkSplitIsOneStep(target);
}

TEST_CASE("split step: shares of a batch, weighted, make the batch's gradient", "[distributed]") {
  for (const std::string target : {"interp", "cpu"})
    checkSharesMakeBatch(target);
}

// The cuda target's split step (on the emulated device in CI, through
// tests/gpu/check.sh's [cuda] stage), against its own trainStep.
TEST_CASE("split step: the cuda target's gradients then update, and its shares",
          "[cuda][distributed]") {
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
  if (Status s = runtime::cuda::deviceAvailable(); !s) {
    test::skipTestCase("no CUDA device: " + s.diag().message);
    return;
  }
  checkSplitIsOneStep("cuda");
  checkSharesMakeBatch("cuda");
#else
  test::skipTestCase("this graphc was built without the cuda target");
#endif
}

TEST_CASE("split step: optim.nag is refused with a reason", "[distributed]") {
  for (auto &[name, spec] : test::coverageModels())
    if (spec.optimizer->name == "nag") {
      driver::BuildOptions o;
      o.target = "interp";
      o.split = true;
      auto exe = driver::build(spec, {1, 32, 32}, o);
      REQUIRE(!exe);
      CHECK_THAT(exe.diag().message, Catch::Contains("optim.nag") && Catch::Contains("look-ahead"));
    }
}

TEST_CASE("split step: the shares of a batch", "[distributed]") {
  for (int64_t n : {1, 2, 7, 96, 256})
    for (int k : {1, 2, 3, 5}) {
      int64_t at = 0, least = n, most = 0;
      for (int r = 0; r < k; ++r) {
        runtime::Share s = runtime::shareOf(n, r, k);
        CHECK(s.begin == at); // contiguous, in rank order
        at += s.count;
        least = std::min(least, s.count);
        most = std::max(most, s.count);
      }
      CHECK(at == n);
      CHECK(most - least <= 1);
    }
}
