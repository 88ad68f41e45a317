// tests/trace_test.cpp - tracing: a model file and the same model built with
// the C++ nn:: API give the identical IR, and shape errors name the layer.
#include "TestUtil.h"
#include "frontend/ModelFile.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <catch2/catch.hpp>

using namespace graphc;

TEST_CASE("the seed model file and the C++ API trace to the identical IR", "[trace]") {
  auto file = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/mlp.model");
  REQUIRE(bool(file));
  nn::ModelSpec api = test::seedMlp(); // nn::Sequential m; m.add(nn::View(1024))...
  auto a = frontend::trace(*file, {1, 32, 32});
  auto b = frontend::trace(api, {1, 32, 32});
  REQUIRE(bool(a));
  REQUIRE(bool(b));
  REQUIRE(bool(ir::verify(a->graph)));
  std::string text = ir::print(a->graph);
  CHECK(text == ir::print(b->graph));
  CHECK(a->numParams == 1024 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 * 10 + 10);
  CHECK(text.find("%8 = relu %7 : f32[N,1000]") != std::string::npos);
  CHECK(text.find("nll_loss %18, %labels : f32[]") != std::string::npos);
}

TEST_CASE("the LeNet model file and the C++ API trace to the identical IR", "[trace]") {
  auto file = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/lenet.model");
  REQUIRE(bool(file));
  nn::ModelSpec api;
  api.model.add(nn::SpatialConvolutionMM(1, 16, 5, 5))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::SpatialConvolutionMM(16, 32, 5, 5))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::View(32 * 5 * 5))
      .add(nn::Dropout(0.5))
      .add(nn::Linear(800, 128))
      .add(nn::ReLU())
      .add(nn::Linear(128, 10))
      .add(nn::LogSoftMax());
  api.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  api.file = "lenet.model";
  REQUIRE(file->input);
  auto a = frontend::trace(*file, *file->input);
  auto b = frontend::trace(api, {1, 32, 32});
  REQUIRE(bool(a));
  REQUIRE(bool(b));
  CHECK(ir::print(a->graph) == ir::print(b->graph));
}

TEST_CASE("shape errors name the layer, its position and both shapes", "[trace]") {
  auto spec = frontend::parseModel("model = nn.Sequential()\n"
                                   "model:add(nn.View(1024))\n"
                                   "model:add(nn.Linear(1024, 100)):add(nn.ReLU())\n"
                                   "model:add(nn.Linear(50, 10))\n",
                                   "bad.model");
  REQUIRE(bool(spec));
  auto t = frontend::trace(*spec, {1, 32, 32});
  REQUIRE(!t);
  CHECK(t.diag().str() ==
        "bad.model:4:11: error: layer 4 nn.Linear(50, 10): expects 50 inputs, got 100 "
        "(input [N,100])");
  auto view = frontend::trace(*spec, {1, 28, 28});
  REQUIRE(!view);
  CHECK_THAT(view.diag().str(), Catch::Contains("layer 1 nn.View(1024): expects 1024 elements "
                                                "per sample, got 784"));
}
