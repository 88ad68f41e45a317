// tests/scaling_test.cpp - the compiler stays near-linear in the size of the
// model: a 1 MB model file of 50,000 layers goes through the evaluator and
// every pass (the verifier and the plan checker included).
//
// The time limit is a guard against passes that are quadratic or worse,
// not a speed measurement: 50,000 layers took about 3 s (release, no
// verifier) when it was written, where a quadratic fusion pass once took an
// estimated two hours.
#include "driver/Compile.h"
#include "frontend/ModelFile.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace graphc;

TEST_CASE("50,000 layers go through the model file and the whole pipeline", "[scaling]") {
  constexpr int kRelus = 49'990;
  std::string text = "require 'nn'\nmodel = nn.Sequential()\nmodel:add(nn.View(1024))\n"
                     "model:add(nn.Linear(1024, 10))\n";
  for (int i = 0; i < kRelus; ++i)
    text += "model:add(nn.ReLU())\n";
  text += "model:add(nn.LogSoftMax())\ncriterion = nn.ClassNLLCriterion()\n"
          "optimizer = optim.sgd\nconfig = {learningRate = 0.01}\n";
  REQUIRE(text.size() > 1'000'000);

  auto start = std::chrono::steady_clock::now();
  // Each module counts once toward the evaluator's limit of 100,000, not
  // once when it is made and again when it is added.
  auto spec = frontend::parseModel(text, "deep.model");
  REQUIRE(bool(spec));
  CHECK(spec->model.children.size() == size_t(kRelus + 3));

  passes::PipelineOptions options;
  options.verify = true;
  auto c = driver::compile(*spec, ir::Shape{1024}, options);
  REQUIRE(bool(c));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The 49,990 ReLUs fuse into the Linear's epilogue and one chain forward,
  // one chain of masks backward: a handful of kernels, not thousands.
  CHECK(c->step.step.groups().size() < 10);
  INFO(seconds << " s for " << kRelus << " layers");
  CHECK(seconds < 120);
}
