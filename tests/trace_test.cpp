// tests/trace_test.cpp - tracing: a model file and the same model built with
// the C++ nn:: API give the identical IR, and shape errors name the layer.
#include "TestUtil.h"
#include "frontend/ModelFile.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Autodiff.h"

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

namespace {

/// The model's output for input `x` (per-sample shape `sample`), through the
/// interpreter; its parameters (if any) all 0.
ir::Tensor forward(const nn::Module &model, const ir::Shape &sample, const ir::Tensor &x) {
  nn::ModelSpec spec;
  static_cast<nn::Module &>(spec.model) = model;
  auto t = frontend::trace(spec, sample);
  if (!t)
    FAIL(t.diag().str());
  REQUIRE(bool(ir::verify(t->graph)));
  auto out = ir::run(t->graph, {{"x", x},
                                {"labels", ir::Tensor({x.shape[0]})},
                                {"params", ir::Tensor({std::max<int64_t>(t->numParams, 1)})}});
  if (!out)
    FAIL(out.diag().str());
  return out->at("output");
}

/// The model's output for `x` with the flat parameters `params`.
ir::Tensor forwardWith(const nn::Module &model, const ir::Shape &sample, const ir::Tensor &x,
                       std::vector<double> params) {
  nn::ModelSpec spec;
  static_cast<nn::Module &>(spec.model) = model;
  auto t = frontend::trace(spec, sample);
  if (!t)
    FAIL(t.diag().str());
  REQUIRE(bool(ir::verify(t->graph)));
  REQUIRE(int64_t(params.size()) == t->numParams);
  ir::Tensor p({t->numParams});
  p.data = std::move(params);
  auto out = ir::run(t->graph, {{"x", x}, {"labels", ir::Tensor({x.shape[0]})}, {"params", p}});
  if (!out)
    FAIL(out.diag().str());
  return out->at("output");
}

void checkClose(const ir::Tensor &got, const std::vector<double> &want, double tol = 1e-12) {
  REQUIRE(got.data.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": got " << got.data[i] << ", want " << want[i]);
    CHECK(std::abs(got.data[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i])));
  }
}

} // namespace

TEST_CASE("Threshold, MulConstant, AddConstant and the table layers compute as Torch7's",
          "[trace][layers]") {
  ir::Tensor x({2, 3});
  x.data = {-1, 0.5, 2, 1e-7, 0, 3};
  // nn.Threshold(th, v): x > th ? x : v, strictly above; its defaults 1e-6 and 0.
  nn::Module m = nn::Sequential();
  m.add(nn::Threshold(0.5, 7));
  CHECK(forward(m, {3}, x).data == std::vector<double>{7, 7, 2, 7, 7, 3});
  m = nn::Sequential();
  m.add(nn::Threshold());
  CHECK(forward(m, {3}, x).data == std::vector<double>{0, 0.5, 2, 0, 0, 3});
  // A ConcatTable's outputs, joined along dimension 2 (1 with nInputDims 1),
  // summed by CAddTable.
  nn::Module table = nn::ConcatTable();
  table.add(nn::MulConstant(3)).add(nn::AddConstant(-1)).add(nn::Identity());
  m = nn::Sequential();
  m.add(table).add(nn::JoinTable(1, 1));
  CHECK(forward(m, {3}, x).data == std::vector<double>{-3, 1.5, 6, -2, -0.5, 1, -1, 0.5, 2, 3e-7, 0,
                                                       9, 1e-7 - 1, -1, 2, 1e-7, 0, 3});
  m = nn::Sequential();
  m.add(table).add(nn::CAddTable());
  ir::Tensor sum = forward(m, {3}, x);
  for (size_t i = 0; i < x.data.size(); ++i)
    CHECK(sum.data[i] == Approx(3 * x.data[i] + (x.data[i] - 1) + x.data[i]));
  // nn.Concat(3) on [N,2,2]: each module's [N,2,k] side by side in the last dimension.
  ir::Tensor y({1, 2, 2});
  y.data = {1, 2, 3, 4};
  nn::Module concat = nn::Concat(3);
  concat.add(nn::Identity()).add(nn::MulConstant(10));
  m = nn::Sequential();
  m.add(concat);
  CHECK(forward(m, {2, 2}, y).data == std::vector<double>{1, 2, 10, 20, 3, 4, 30, 40});
  // JoinTable(-1) counts from the last dimension; JoinTable(2) on [N,2,2] is the middle one.
  m = nn::Sequential();
  m.add(nn::ConcatTable().add(nn::Identity()).add(nn::AddConstant(1))).add(nn::JoinTable(-1));
  CHECK(forward(m, {2, 2}, y).data == std::vector<double>{1, 2, 2, 3, 3, 4, 4, 5});
  m = nn::Sequential();
  m.add(nn::ConcatTable().add(nn::Identity()).add(nn::AddConstant(1))).add(nn::JoinTable(2));
  CHECK(forward(m, {2, 2}, y).data == std::vector<double>{1, 2, 3, 4, 2, 3, 4, 5});
  // CAddTable adds an entry of as many elements in the first one's shape.
  m = nn::Sequential();
  m.add(nn::ConcatTable().add(nn::Identity()).add(nn::View(4))).add(nn::CAddTable());
  CHECK(forward(m, {2, 2}, y).data == std::vector<double>{2, 4, 6, 8});
  // ParallelTable: module i on entry i.
  nn::Module par = nn::ParallelTable();
  par.add(nn::MulConstant(2)).add(nn::AddConstant(5));
  m = nn::Sequential();
  m.add(nn::ConcatTable().add(nn::Identity()).add(nn::Identity())).add(par).add(nn::CAddTable());
  CHECK(forward(m, {2, 2}, y).data == std::vector<double>{8, 11, 14, 17});
}

TEST_CASE("table layers' misuse is an error naming the layer", "[trace][layers]") {
  auto traceError = [](const std::string &text, const ir::Shape &sample) {
    auto spec = frontend::parseModel(text, "tables.lua");
    if (!spec)
      FAIL(spec.diag().str());
    auto t = frontend::trace(*spec, sample);
    if (t)
      FAIL("expected an error tracing\n" << text);
    return t.diag().str();
  };
  const std::string head = "model = nn.Sequential()\nmodel:add(nn.Linear(4, 4))\n";
  CHECK(traceError(head + "model:add(nn.ConcatTable():add(nn.Identity()):add(nn.Tanh()))\n"
                          "model:add(nn.Linear(4, 2))\n",
                   {4}) ==
        "tables.lua:4:11: error: layer 3 nn.Linear(4, 2): expects a tensor, got a table of 2 "
        "tensors; combine a table with nn.CAddTable() or nn.JoinTable(dim)");
  CHECK(traceError(head + "model:add(nn.CAddTable())\n", {4}) ==
        "tables.lua:3:11: error: layer 2 nn.CAddTable(): expects a table of tensors (the output "
        "of an nn.ConcatTable), got a tensor [N,4]");
  CHECK(traceError(head + "model:add(nn.ConcatTable():add(nn.Identity()):add(nn.Tanh()))\n", {4}) ==
        "tables.lua:1:1: error: the model's output is a table of 2 tensors, "
        "not a tensor; combine it with nn.CAddTable() or nn.JoinTable(dim)");
  // An in-place layer at the head of a branch would change what the other branches read.
  CHECK(traceError(head + "local s = nn.Sequential():add(nn.View(4)):add(nn.ReLU(true))\n"
                          "model:add(nn.ConcatTable():add(nn.Identity()):add(s))\n"
                          "model:add(nn.CAddTable())\n",
                   {4}) ==
        "tables.lua:3:47: error: layer 2.2.2 nn.ReLU(): is in place: it overwrites the input that "
        "the other modules of nn.ConcatTable (line 4) read too, which Torch7 would hand them "
        "changed; build it without inplace");
  CHECK_THAT(traceError(head + "model:add(nn.Concat(1):add(nn.Identity()):add(nn.Tanh()))\n", {4}),
             Catch::Contains("layer 2 nn.Concat(1): joins along the batch dimension"));
  CHECK_THAT(traceError(head + "model:add(nn.ConcatTable():add(nn.Identity()):add(nn.Linear(4, "
                               "3)))\nmodel:add(nn.CAddTable())\n",
                        {4}),
             Catch::Contains("layer 3 nn.CAddTable(): cannot add [N,3] (entry 2) to [N,4]"));
  CHECK_THAT(traceError(head + "model:add(nn.View(2, 2))\nmodel:add(nn.ConcatTable():add(nn."
                               "Identity()):add(nn.View(4)))\nmodel:add(nn.JoinTable(2))\n",
                        {4}),
             Catch::Contains("layer 4 nn.JoinTable(2): cannot join [N,2,2] and [N,4]"));
  CHECK_THAT(traceError(head + "model:add(nn.ConcatTable():add(nn.Identity()))\n"
                               "model:add(nn.JoinTable(3))\n",
                        {4}),
             Catch::Contains("dimension 3 is out of range for 2-dimensional inputs"));
  CHECK_THAT(traceError(head + "model:add(nn.ParallelTable():add(nn.Tanh()))\n", {4}),
             Catch::Contains("layer 2 nn.ParallelTable(): expects a table"));
}

TEST_CASE("SpatialLPPooling computes Torch7's p-norm over each window", "[trace][layers]") {
  // p = 2, 2x2 windows, stride 2 (the default): sqrt(1 + 4 + 4 + 16) = 5, and
  // an all-zero window gives 0.
  ir::Tensor x({1, 1, 2, 4});
  x.data = {1, 2, 0, 0, 2, 4, 0, 0};
  nn::Module m = nn::Sequential();
  m.add(nn::SpatialLPPooling(1, 2, 2, 2));
  checkClose(forward(m, {1, 2, 4}, x), {5, 0});
  // p = 3, 2x1 windows, stride 1: (1 + 8)^(1/3), (8 + 27)^(1/3).
  ir::Tensor y({1, 1, 1, 3});
  y.data = {1, 2, 3};
  m = nn::Sequential();
  m.add(nn::SpatialLPPooling(1, 3, 2, 1, 1, 1));
  checkClose(forward(m, {1, 1, 3}, y), {2.080083823051904, 3.2710663101885897});
  // Torch7's Sqrt has a zero gradient where its result is 0: the all-zero
  // window passes none back (x / 5 for the other).
  nn::ModelSpec spec;
  spec.model.add(nn::SpatialLPPooling(1, 2, 2, 2)).add(nn::View(2));
  auto t = frontend::trace(spec, {1, 2, 4});
  REQUIRE(t);
  ir::Graph g = t->graph;
  ir::ValueId in = g.findInput("x");
  ir::ValueId loss =
      g.add(ir::Op::ReduceSum, {g.output("output")}, {{"axes", std::vector<int64_t>{}}});
  g.addOutput("dx", passes::gradients(g, loss, {in})[0]);
  auto out = ir::run(g, {{"x", x}, {"labels", ir::Tensor({1})}, {"params", ir::Tensor({1})}});
  REQUIRE(out);
  checkClose(out->at("dx"), {0.2, 0.4, 0, 0, 0.4, 0.8, 0, 0});
}

TEST_CASE("SpatialSubtractiveNormalization subtracts Torch7's border-corrected local mean",
          "[trace][layers]") {
  // A 3x3 ones kernel: each pixel minus the average of its neighbours inside
  // the image (the correction divides by the kernel weight inside it).
  ir::Tensor x({1, 1, 3, 3});
  x.data = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  nn::Module m = nn::Sequential();
  m.add(nn::SpatialSubtractiveNormalization(1, nn::TensorArg{{3, 3}, std::vector<double>(9, 1)}));
  checkClose(forward(m, {1, 3, 3}, x), {-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2});
  // image.gaussian1D(5) over 2 planes of 3x4: the mean over both planes,
  // weighted by k k^T (numpy, from the formula).
  const std::vector<double> k = {0.2780373004531941, 0.7261490370736909, 1, 0.7261490370736909,
                                 0.2780373004531941};
  ir::Tensor y({1, 2, 3, 4});
  for (int i = 0; i < 24; ++i)
    y.data[size_t(i)] = std::pow(double(i), 1.5) / 7 - 1;
  m = nn::Sequential();
  m.add(nn::SpatialSubtractiveNormalization(2, nn::TensorArg{{5}, k}));
  checkClose(forward(m, {2, 3, 4}, y),
             {-4.830956445807047, -5.034854974943414, -5.144945085481972, -5.166212864576346,
              -4.619387211441525, -4.544711766163933, -4.447248153336174, -4.291723725956508,
              -3.490291644195909, -3.276723415286765, -3.053437309611353, -2.779725373615949,
              1.107503465857675,  1.5183116794897096, 1.9343086702450272, 2.390729674052885,
              3.3806127885584747, 3.8713533406933918, 4.362836691156406,  4.893822095446444,
              6.054751513235813,  6.613860812437898,  7.170329849593168,  7.766167818138786},
             1e-12);
  // A 3x5 kernel, not symmetric: rows are kH, columns kW (numpy).
  ir::Tensor z({1, 1, 3, 4});
  for (int i = 0; i < 12; ++i)
    z.data[size_t(i)] = (i - 5.0) * (i - 5.0) / 3;
  m = nn::Sequential();
  m.add(nn::SpatialSubtractiveNormalization(
      1, nn::TensorArg{{3, 5}, {1, 2, 0, 1, 3, 0, 1, 4, 1, 0, 2, 0, 1, 0, 1}}));
  checkClose(forward(m, {1, 3, 4}, z),
             {2.7142857142857135, 1.083333333333333, 0.8148148148148149, 0.125, -2.121212121212121,
              -2.976190476190476, -2.538461538461538, -2.2727272727272725, 0.9629629629629632,
              2.194444444444444, 3.1000000000000005, 4.875});
  // The default kernel, 9x9 ones, on a constant image: exactly zero.
  ir::Tensor c({1, 1, 2, 3}, 4.0);
  m = nn::Sequential();
  m.add(nn::SpatialSubtractiveNormalization());
  checkClose(forward(m, {1, 2, 3}, c), std::vector<double>(6, 0.0));
}

TEST_CASE("SpatialConvolutionMap connects the planes its table lists", "[trace][layers]") {
  ir::Tensor x({1, 2, 1, 3});
  x.data = {1, 2, 3, 4, 5, 6};
  // oneToOne(2), 2x1 kernels: weight [2,1,2] then bias [2].
  nn::Module m = nn::Sequential();
  m.add(nn::SpatialConvolutionMap(nn::oneToOneTable(2), 2, 1));
  checkClose(forwardWith(m, {2, 1, 3}, x, {1, 10, 100, 1000, 0.5, -0.5}),
             {1 + 20 + 0.5, 2 + 30 + 0.5, 400 + 5000 - 0.5, 500 + 6000 - 0.5});
  // full(2, 2), 1x1: connection k = (k % 2 + 1, k / 2 + 1).
  m = nn::Sequential();
  m.add(nn::SpatialConvolutionMap(nn::fullTable(2, 2), 1, 1));
  checkClose(forwardWith(m, {2, 1, 3}, x, {1, 2, 3, 4, 0, 0}), {9, 12, 15, 19, 26, 33});
  // Any table: input 2 to output 1 and input 1 to output 2, stride 2.
  m = nn::Sequential();
  m.add(nn::SpatialConvolutionMap(nn::TensorArg{{2, 2}, {2, 1, 1, 2}}, 1, 1, 2, 1));
  checkClose(forwardWith(m, {2, 1, 3}, x, {1, 10, 0, 0}), {4, 6, 10, 30});
  // Its input planes are the table's.
  nn::ModelSpec spec;
  spec.model.add(nn::SpatialConvolutionMap(nn::fullTable(3, 2), 1, 1));
  auto t = frontend::trace(spec, {2, 4, 4});
  REQUIRE_FALSE(t);
  CHECK_THAT(t.diag().message, Catch::Contains("its table connects 3 input planes, got 2"));
}
