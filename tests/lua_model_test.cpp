// tests/lua_model_test.cpp - model scripts in the embedded, sandboxed Lua 5.1
// (frontend/LuaModel.h): Torch7-style scripts in tests/torch7/ compile and
// train like the interpreter says; the sandbox refuses what it must, with
// located errors.
#include "Isas.h"
#include "TestUtil.h"
#include "driver/Compile.h"
#include "driver/T7Models.h"
#include "frontend/ModelFile.h"
#include "frontend/Trace.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <lua.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace graphc;
using frontend::loadModel;
using frontend::LuaLimits;
using frontend::parseModel;

namespace {

const std::string kDir = std::string(GRAPHC_SOURCE_DIR) + "/tests/torch7/";

std::string tree(const nn::Module &m, int indent = 0) {
  std::string out = std::string(indent, ' ') + m.str() + "\n";
  for (const nn::Module &c : m.children)
    out += tree(c, indent + 2);
  return out;
}

nn::ModelSpec luaOk(const std::string &text, const std::string &file = "test.lua") {
  auto r = parseModel(text, file);
  if (!r)
    FAIL("unexpected error: " << r.diag().str() << "\ninput:\n" << text);
  return *r;
}

Diag luaError(const std::string &text, const LuaLimits &limits = {},
              const std::string &file = "test.lua") {
  auto r = parseModel(text, file, limits);
  if (r)
    FAIL("expected an error, got a model:\n"
         << tree(r->model) << "input:\n"
         << text.substr(0, 400));
  return r.diag();
}

#define CHECK_LUA_ERROR(text, line_, substring)                                                    \
  do {                                                                                             \
    Diag d_ = luaError(text);                                                                      \
    INFO("input: " << std::string(text).substr(0, 300) << "\ndiagnostic: " << d_.str());           \
    CHECK(d_.file == "test.lua");                                                                  \
    CHECK(d_.line == (line_));                                                                     \
    CHECK(d_.col >= 1);                                                                            \
    CHECK_THAT(d_.message, Catch::Contains(substring));                                            \
  } while (0)

const std::string kModel = "model = nn.Sequential():add(nn.View(4)):add(nn.Linear(4, 2))\n";

/// Losses of `steps` training steps of `spec` on `target` from the same start
/// and the same random batches.
std::vector<float> losses(const nn::ModelSpec &spec, const ir::Shape &sample,
                          const std::string &target, const std::string &isa, int steps) {
  constexpr int64_t kBatch = 16;
  driver::BuildOptions bo;
  bo.maxBatch = kBatch;
  bo.target = target;
  bo.cpu = isa;
  bo.threads = 2;
  auto exe = driver::build(spec, sample, bo);
  if (!exe)
    FAIL(exe.diag().str());
  int64_t numel = 1;
  for (int64_t d : sample)
    numel *= d;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(size_t(kBatch * numel));
  std::vector<int32_t> labels(static_cast<size_t>(kBatch));
  std::vector<float> out;
  for (int s = 0; s < steps; ++s) {
    for (float &v : x)
      v = normal(rng);
    for (int32_t &l : labels)
      l = int32_t(rng() % 10);
    float loss = 0;
    REQUIRE(bool((*exe)->trainStep(x.data(), labels.data(), kBatch, &loss, nullptr)));
    out.push_back(loss);
  }
  return out;
}

struct ScriptCase {
  const char *file;
  size_t layers;
  nn::CriterionKind criterion;
  const char *optimizer;
};

const ScriptCase kScripts[] = {
    {"mlp_opt.lua", 9, nn::CriterionKind::ClassNLL, "sgd"},
    {"vgg_blocks.lua", 12, nn::CriterionKind::CrossEntropy, "adam"},
    {"lenet_net.lua", 11, nn::CriterionKind::ClassNLL, "adagrad"},
    {"containers.lua", 6, nn::CriterionKind::ClassNLL, "sgd"},
    {"deep_return.lua", 11, nn::CriterionKind::ClassNLL, "adagrad"},
    {"builder.lua", 8, nn::CriterionKind::CrossEntropy, "sgd"},
    {"cmdline.lua", 8, nn::CriterionKind::ClassNLL, "sgd"},
    {"resnet_blocks.lua", 9, nn::CriterionKind::ClassNLL, "sgd"},
    {"inception.lua", 9, nn::CriterionKind::CrossEntropy, "adam"},
    {"vgg_bn_drop.lua", 26, nn::CriterionKind::CrossEntropy, "sgd"},
    {"padded_convnet.lua", 15, nn::CriterionKind::ClassNLL, "sgd"},
    {"nin_bn.lua", 33, nn::CriterionKind::CrossEntropy, "sgd"},
    {"alexnet_owt_bn.lua", 2, nn::CriterionKind::ClassNLL, "sgd"},
    {"gtsrb_mse.lua", 6, nn::CriterionKind::MSE, "sgd"},
    {"tutorial_convnet.lua", 14, nn::CriterionKind::ClassNLL, "sgd"},
};

} // namespace

TEST_CASE("Torch7-style scripts build their module trees", "[lua]") {
  for (const ScriptCase &c : kScripts) {
    INFO(c.file);
    auto spec = loadModel(kDir + c.file);
    if (!spec)
      FAIL(spec.diag().str());
    CHECK(spec->model.children.size() == c.layers);
    REQUIRE(spec->criterion);
    CHECK(spec->criterion->kind == c.criterion);
    REQUIRE(spec->optimizer);
    CHECK(spec->optimizer->name == c.optimizer);
  }
  auto mlp = loadModel(kDir + "mlp_opt.lua");
  REQUIRE(mlp);
  nn::Sequential expected;
  expected.add(nn::View(784))
      .add(nn::Linear(784, 64))
      .add(nn::Tanh())
      .add(nn::Dropout(0.2))
      .add(nn::Linear(64, 64))
      .add(nn::Tanh())
      .add(nn::Dropout(0.2))
      .add(nn::Linear(64, 10))
      .add(nn::LogSoftMax());
  CHECK(tree(mlp->model) == tree(expected));
  // mlp_opt.lua's View is at line 10, its first Linear at line 13.
  REQUIRE(mlp->model.children.size() == 9);
  CHECK(mlp->model.children[0].loc.line == 10);
  CHECK(mlp->model.children[0].loc.col == 11);
  CHECK(mlp->model.children[1].loc.line == 13);
  CHECK(mlp->optimizer->config ==
        std::map<std::string, double>{
            {"learningRate", 0.05}, {"momentum", 0.9}, {"nesterov", 1}, {"dampening", 0}});

  auto containers = loadModel(kDir + "containers.lua");
  REQUIRE(containers);
  nn::Sequential want;
  want.add(nn::View(784))
      .add(nn::Linear(784, 48))
      .add(nn::Dropout(0.1))
      .add(nn::ReLU())
      .add(nn::Linear(48, 10))
      .add(nn::LogSoftMax());
  CHECK(tree(containers->model) == tree(want));

  auto vgg = loadModel(kDir + "vgg_blocks.lua");
  REQUIRE(vgg);
  nn::Sequential vggWant;
  vggWant.add(nn::SpatialConvolution(1, 8, 3, 3, 1, 1, 1, 1))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::SpatialConvolution(8, 16, 3, 3, 1, 1, 1, 1))
      .add(nn::ReLU())
      .add(nn::SpatialConvolution(16, 16, 3, 3, 1, 1, 1, 1))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(nn::View(784))
      .add(nn::Linear(784, 32))
      .add(nn::ReLU())
      .add(nn::Linear(32, 10));
  CHECK(tree(vgg->model) == tree(vggWant));
  REQUIRE(vgg->input);
  CHECK(*vgg->input == ir::Shape{1, 28, 28});
}

TEST_CASE("ResNet blocks from ConcatTable and CAddTable build their trees", "[lua][layers]") {
  auto spec = loadModel(kDir + "resnet_blocks.lua");
  if (!spec)
    FAIL(spec.diag().str());
  // fb.resnet's basic block: ConcatTable{branch, shortcut} -> CAddTable -> ReLU.
  auto block = [](int64_t nIn, int64_t n, int64_t stride) {
    nn::Module s = nn::Sequential();
    s.add(nn::SpatialConvolution(nIn, n, 3, 3, stride, stride, 1, 1))
        .add(nn::ReLU())
        .add(nn::SpatialConvolution(n, n, 3, 3, 1, 1, 1, 1))
        .add(nn::MulConstant(0.5, true));
    nn::Module shortcut = nn::Identity();
    if (nIn != n || stride != 1) {
      shortcut = nn::Sequential();
      shortcut.add(nn::SpatialConvolution(nIn, n, 1, 1, stride, stride));
    }
    nn::Module b = nn::Sequential();
    b.add(nn::ConcatTable().add(s).add(shortcut))
        .add(nn::CAddTable(true))
        .add(nn::Threshold(0, 0, true));
    return b;
  };
  nn::Module layer1 = nn::Sequential(), layer2 = nn::Sequential();
  layer1.add(block(4, 4, 1)).add(block(4, 4, 1));
  layer2.add(block(4, 8, 2)).add(block(8, 8, 1));
  nn::Sequential want;
  want.add(nn::SpatialConvolution(1, 4, 3, 3, 1, 1, 1, 1))
      .add(nn::Threshold())
      .add(nn::SpatialMaxPooling(2, 2, 2, 2))
      .add(layer1)
      .add(layer2)
      .add(nn::SpatialAveragePooling(7, 7))
      .add(nn::View(8))
      .add(nn::Linear(8, 10))
      .add(nn::LogSoftMax());
  CHECK(tree(spec->model) == tree(want));
  const nn::Module &first = spec->model.children[3].children[0];
  CHECK(first.children[2].inplace);
  CHECK(first.children[0].children[0].children[3].inplace);
  CHECK(first.children[0].loc.line == 32); // the ConcatTable
  // Parameters are named by their place, as PyTorch names nested modules.
  auto params = frontend::paramLayout(spec->model);
  REQUIRE(params);
  CHECK(params->at(2).name == "3.0.0.0.0.weight");
  CHECK(params->at(10).name == "4.0.0.0.0.weight");
  CHECK(params->at(14).name == "4.0.0.1.0.weight"); // the projection shortcut
}

TEST_CASE("the table layers' arguments follow Torch7", "[lua][layers]") {
  nn::ModelSpec spec = luaOk(R"(
model = nn.Sequential()
model:add(nn.Threshold(nil, nil, true)):add(nn.Threshold(0.5)):add(nn.Threshold(2, -1))
model:add(nn.MulConstant(2.5)):add(nn.AddConstant(-3, true))
model:add(nn.ConcatTable():add(nn.Identity()):add(nn.Identity())):add(nn.JoinTable(1, 1))
local c = nn.Concat(2):add(nn.Identity())
model:add(c):add(nn.ConcatTable():add(nn.Identity())):add(nn.CAddTable(true))
assert(torch.type(c) == 'nn.Concat' and c:size() == 1 and #model:findModules('nn.Identity') == 4)
)");
  nn::Sequential want;
  want.add(nn::Threshold(1e-6, 0, true))
      .add(nn::Threshold(0.5, 0))
      .add(nn::Threshold(2, -1))
      .add(nn::MulConstant(2.5))
      .add(nn::AddConstant(-3, true))
      .add(nn::ConcatTable().add(nn::Identity()).add(nn::Identity()))
      .add(nn::JoinTable(1, 1))
      .add(nn::Concat(2).add(nn::Identity()))
      .add(nn::ConcatTable().add(nn::Identity()))
      .add(nn::CAddTable(true));
  CHECK(tree(spec.model) == tree(want));
  CHECK(spec.model.children[0].inplace);
  CHECK(!spec.model.children[1].inplace);
  CHECK(spec.model.children[4].inplace);
  CHECK(spec.model.children[9].inplace);

  CHECK_LUA_ERROR("model = nn.Sequential()\nmodel:add(nn.Threshold(0, 1, true))\n", 2,
                  "nn.Threshold: in-place processing requires value (1) not exceed threshold (0)");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.MulConstant())\n", 1,
                  "nn.MulConstant expects 1 to 2 arguments (constant_scalar, [inplace]), got 0");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.AddConstant('1'))\n", 1,
                  "nn.AddConstant argument 1 (constant_scalar) must be a number, got string '1'");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.MulConstant(2, 1))\n", 1,
                  "nn.MulConstant argument 2 (inplace) must be a boolean, got 1");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.JoinTable(0))\n", 1,
                  "nn.JoinTable argument 1 (dimension) must be a non-zero integer, got 0");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.Concat(1.5))\n", 1,
                  "nn.Concat argument 1 (dimension) must be a positive integer, got 1.5");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.CAddTable():add(nn.Identity()))\n", 1,
                  "attempt to call method 'add'");
}

TEST_CASE("SpatialAveragePooling takes Torch7's defaults", "[lua][layers]") {
  // Strides default to 1 (not to the kernel, as SpatialMaxPooling's do).
  nn::ModelSpec spec =
      luaOk("require 'cudnn'\nmodel = nn.Sequential()\n"
            "model:add(nn.SpatialAveragePooling(2, 3))\n"
            "model:add(cudnn.SpatialAveragePooling(3, 3, 2, 2, 1, 1))\n"
            "model:add(nn.SpatialAveragePooling(2, 2, 2, 2):setCountIncludePad())\n");
  nn::Sequential want;
  want.add(nn::SpatialAveragePooling(2, 3, 1, 1, 0, 0))
      .add(nn::SpatialAveragePooling(3, 3, 2, 2, 1, 1))
      .add(nn::SpatialAveragePooling(2, 2, 2, 2));
  CHECK(tree(spec.model) == tree(want));
  CHECK_LUA_ERROR("model = nn.Sequential()\nmodel:add(nn.SpatialAveragePooling(2, "
                  "2):setCountExcludePad())\n",
                  2, "nn.SpatialAveragePooling:setCountExcludePad() is not supported");
  // Torch7's output size and padding rule, through the tracer.
  spec = luaOk("model = nn.Sequential():add(nn.SpatialAveragePooling(3, 3, 2, 2, 2, 1))\n");
  auto t = frontend::trace(spec, {1, 5, 5});
  REQUIRE(!t);
  CHECK_THAT(t.diag().message, Catch::Contains("padding must be at most half the kernel size"));
  spec = luaOk("model = nn.Sequential():add(nn.SpatialAveragePooling(3, 3, 2, 2, 1, 1))\n");
  t = frontend::trace(spec, {2, 5, 6});
  REQUIRE(t);
  CHECK(t->graph.type(t->graph.output("output")).shape == ir::Shape{ir::kBatch, 2, 3, 3});
  // Ceil mode (cifar.torch's VGG): where it gives floor mode's windows, the
  // same graph; where it adds a window, pad_end. Torch7 drops a last window
  // that would start in the padding: 2x2 stride 2 pad 1 over 5 is 3 windows
  // in both modes (4 in ceil mode before the drop).
  auto traced = [&](const std::string &pool, ir::Shape sample) {
    return frontend::trace(luaOk("model = nn.Sequential():add(" + pool + ")\n"), sample);
  };
  for (auto [pool, side] : {std::pair{"nn.SpatialMaxPooling(2, 2, 2, 2)", 8},
                            {"nn.SpatialAveragePooling(3, 3, 2, 2, 1, 1)", 5},
                            {"nn.SpatialMaxPooling(2, 2, 2, 2, 1, 1)", 5}}) {
    INFO(pool << " over " << side);
    auto floorMode = traced(pool, {1, side, side});
    auto ceilMode = traced(std::string(pool) + ":ceil()", {1, side, side});
    REQUIRE(floorMode);
    REQUIRE(ceilMode);
    CHECK(ir::print(floorMode->graph) == ir::print(ceilMode->graph));
  }
  t = traced("nn.SpatialMaxPooling(2, 2, 2, 2):ceil()", {1, 7, 8});
  REQUIRE(t);
  CHECK_THAT(ir::print(t->graph), Catch::Contains("pad_end = [1,0]"));
  CHECK(t->graph.type(t->graph.output("output")).shape == ir::Shape{ir::kBatch, 1, 4, 4});
  // GoogLeNet's 3x3 stride 2 pad 1: over 14, 8 windows in ceil mode (7 in floor
  // mode); over 5, 3 in both (PyTorch's avg_pool2d(ceil_mode=True) agrees).
  t = traced("nn.SpatialAveragePooling(3, 3, 2, 2, 1, 1):ceil()", {2, 14, 5});
  REQUIRE(t);
  CHECK_THAT(ir::print(t->graph), Catch::Contains("pad_end = [1,0]"));
  CHECK(t->graph.type(t->graph.output("output")).shape == ir::Shape{ir::kBatch, 2, 8, 3});
  // THNN drops a last window that starts in the padding in both dimensions
  // when either is padded (`if (padW || padH)`): kH 2 stride 3 unpadded over
  // 6 gives 2 rows, not 3, because padW is 1 (PyTorch: [1,1,2,4]).
  t = traced("nn.SpatialMaxPooling(3, 2, 2, 3, 1, 0):ceil()", {1, 6, 7});
  REQUIRE(t);
  CHECK(t->graph.type(t->graph.output("output")).shape == ir::Shape{ir::kBatch, 1, 2, 4});
  // A kernel smaller than its stride: Torch7's last window pools nothing.
  t = traced("nn.SpatialMaxPooling(1, 1, 3, 3):ceil()", {1, 5, 5});
  REQUIRE(!t);
  CHECK_THAT(t.diag().message, Catch::Contains("starts past the input"));
}

TEST_CASE("Torch7-style scripts train like the interpreter", "[lua][cpu]") {
  for (const ScriptCase &c : kScripts) {
    auto spec = loadModel(kDir + c.file);
    REQUIRE(spec);
    auto sample = spec->input ? Expected<ir::Shape>(*spec->input) : nn::inferSampleShape(*spec);
    if (!sample)
      FAIL(sample.diag().str());
    const int64_t steps = test::sized<int64_t>(3, 1);
    const std::vector<float> want = losses(*spec, *sample, "interp", "", steps);
    for (const std::string &isa : test::runnableIsas()) {
      const std::vector<float> got = losses(*spec, *sample, "cpu", isa, steps);
      for (size_t s = 0; s < want.size(); ++s) {
        INFO(c.file << " under " << isa << ", step " << s << ": " << got[s] << " against "
                    << want[s] << " in the interpreter");
        CHECK(std::isfinite(want[s]));
        CHECK(std::abs(got[s] - want[s]) <= 1e-4 * std::max(1.0f, std::abs(want[s])));
      }
    }
  }
}

TEST_CASE("the examples build their trees, with their places in the file", "[lua]") {
  // The trees, places, criteria, optimizers and inputs as the files say them
  // (examples/mlp.model, examples/lenet.model); trace_test pins their IR.
  struct Layer {
    nn::Module module;
    int line, col;
  };
  auto checkLayers = [](const nn::ModelSpec &spec, const std::vector<Layer> &layers) {
    REQUIRE(spec.model.children.size() == layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      const nn::Module &got = spec.model.children[i];
      INFO(spec.file << " layer " << i + 1 << ": " << got.str());
      CHECK(got.str() == layers[i].module.str());
      CHECK(got.children.empty());
      CHECK(got.loc.line == layers[i].line);
      CHECK(got.loc.col == layers[i].col);
    }
  };
  const std::string dir = std::string(GRAPHC_SOURCE_DIR) + "/examples/";
  auto mlp = loadModel(dir + "mlp.model");
  if (!mlp)
    FAIL(mlp.diag().str());
  checkLayers(*mlp, {
                        {nn::View(1024), 3, 11},
                        {nn::Linear(1024, 1000), 4, 11},
                        {nn::ReLU(), 4, 39},
                        {nn::Linear(1000, 1000), 5, 11},
                        {nn::ReLU(), 5, 38},
                        {nn::Linear(1000, 10), 6, 11},
                        {nn::LogSoftMax(), 7, 11},
                    });
  CHECK(mlp->file == dir + "mlp.model");
  CHECK(mlp->model.loc.line == 2);
  CHECK(mlp->modelLoc.line == 8); // `model = model:float()`, the last assignment
  REQUIRE(mlp->criterion);
  CHECK(mlp->criterion->kind == nn::CriterionKind::ClassNLL);
  CHECK(mlp->criterion->loc.line == 11);
  CHECK(mlp->criterion->loc.col == 13);
  REQUIRE(mlp->optimizer);
  CHECK(mlp->optimizer->name == "adagrad");
  CHECK(mlp->optimizer->loc.line == 12);
  CHECK(mlp->optimizer->config == std::map<std::string, double>{{"learningRate", 0.001}});
  CHECK(!mlp->input);

  auto lenet = loadModel(dir + "lenet.model");
  if (!lenet)
    FAIL(lenet.diag().str());
  checkLayers(*lenet, {
                          {nn::SpatialConvolutionMM(1, 16, 5, 5), 13, 11},
                          {nn::ReLU(), 14, 11},
                          {nn::SpatialMaxPooling(2, 2, 2, 2), 15, 11},
                          {nn::SpatialConvolutionMM(16, 32, 5, 5), 17, 11},
                          {nn::ReLU(), 18, 11},
                          {nn::SpatialMaxPooling(2, 2, 2, 2), 19, 11},
                          {nn::View(800), 21, 11},
                          {nn::Dropout(0.5), 22, 11},
                          {nn::Linear(800, 128), 23, 11},
                          {nn::ReLU(), 24, 11},
                          {nn::Linear(128, 10), 25, 11},
                          {nn::LogSoftMax(), 26, 11},
                      });
  CHECK(lenet->modelLoc.line == 11);
  REQUIRE(lenet->criterion);
  CHECK(lenet->criterion->kind == nn::CriterionKind::ClassNLL);
  CHECK(lenet->criterion->loc.line == 28);
  REQUIRE(lenet->optimizer);
  CHECK(lenet->optimizer->name == "sgd");
  CHECK(lenet->optimizer->config ==
        std::map<std::string, double>{{"learningRate", 0.01}, {"momentum", 0.9}});
  REQUIRE(lenet->input);
  CHECK(*lenet->input == ir::Shape{1, 32, 32});
}

TEST_CASE("Lua the language: what the .model subset refused now runs", "[lua]") {
  nn::ModelSpec spec = luaOk(R"(require 'nn'
local m = nn.Sequential()
for i = 1, 3 do m:add(nn.ReLU()) end
local i = 0
while i < 2 do m:add(nn.Tanh()); i = i + 1 end
repeat m:add(nn.Sigmoid()) until true
if #m.modules == 6 and not false then m:add(nn.SoftMax()) else error('no') end
do local x = 1 end
return m
)");
  CHECK(spec.model.children.size() == 7);
  CHECK(spec.model.children[6].kind == nn::Kind::SoftMax);
  CHECK(!spec.criterion);
  CHECK(!spec.optimizer);
  // A returned model wins over a global one; `net` is found too.
  spec = luaOk("model = nn.Sequential()\nreturn nn.Sequential():add(nn.Tanh())\n");
  CHECK(spec.model.children.size() == 1);
  spec = luaOk("net = nn.Sequential():add(nn.Tanh()):add(nn.ReLU())\n");
  CHECK(spec.model.children.size() == 2);
  spec = luaOk("#!/usr/bin/env th\nmodel = nn.Sequential():add(nn.Tanh())\n");
  CHECK(spec.model.children[0].loc.line == 2);
}

TEST_CASE("the sandbox refuses io, os, debug and outside files", "[lua][sandbox]") {
  CHECK_LUA_ERROR(kModel + "os.execute('touch /tmp/graphc_pwned')\n", 2,
                  "'os' is not available in model files");
  CHECK_LUA_ERROR(kModel + "local f = io.open('/etc/passwd')\n", 2, "'io' is not available");
  CHECK_LUA_ERROR(kModel + "\nx = debug.getinfo(1)\n", 3, "'debug' is not available");
  CHECK_LUA_ERROR("require 'os'\n", 1, "require 'os': not available in model files");
  CHECK_LUA_ERROR("require 'io'\n", 1, "not available in model files");
  CHECK_LUA_ERROR("local x = require '../../etc/passwd'\n", 1, "model files can require nn");
  CHECK_LUA_ERROR("require 'no_such_module'\n", 1, "require 'no_such_module': no such module");
  CHECK_LUA_ERROR("dofile('/etc/passwd')\n", 1, "outside the model's folder");
  CHECK_LUA_ERROR("loadfile('/etc/hostname')\n", 1, "outside the model's folder");
  CHECK_LUA_ERROR("x = package.loadlib('libc.so.6', 'system')\n", 1,
                  "'package.loadlib' is not available");
  CHECK_LUA_ERROR("x = string.dump(function() end)\n", 1, "attempt to call field 'dump'");
  CHECK_LUA_ERROR("x = rawget(_G, 'os').execute\n", 1, "attempt to index a nil value");
  CHECK_LUA_ERROR("x = getfenv(0).io.write\n", 1, "'io' is not available");
  // No userdata with a __gc for lua_close to run after the limits.
  CHECK_LUA_ERROR("local p = newproxy(true)\n", 1, "attempt to call global 'newproxy'");
}

namespace {

/// Real Lua 5.1 bytecode of `source`, from a plain interpreter's lua_dump.
std::string bytecodeOf(const char *source) {
  lua_State *L = luaL_newstate();
  REQUIRE(luaL_loadstring(L, source) == 0);
  std::string out;
  lua_dump(
      L,
      [](lua_State *, const void *p, size_t n, void *ud) {
        static_cast<std::string *>(ud)->append(static_cast<const char *>(p), n);
        return 0;
      },
      &out);
  lua_close(L);
  return out;
}

/// `s` as a Lua string literal of decimal escapes.
std::string luaLiteral(const std::string &s) {
  std::string out = "'";
  for (unsigned char c : s)
    out += fmt::format("\\{}", int(c));
  return out + "'";
}

} // namespace

TEST_CASE("the sandbox refuses precompiled bytecode", "[lua][sandbox]") {
  std::string bytecode = bytecodeOf("model = nn.Sequential():add(nn.ReLU())");
  REQUIRE(bytecode.starts_with("\x1bLua"));
  Diag d = luaError(bytecode);
  CHECK(d.line == 1);
  CHECK_THAT(d.message, Catch::Contains("precompiled Lua bytecode is refused"));
  CHECK_LUA_ERROR("local f = loadstring(" + luaLiteral(bytecode) + ")\n", 1,
                  "precompiled Lua bytecode is refused");
  CHECK_LUA_ERROR("local parts = {'\\27Lu', 'aQ'}\nlocal i = 0\n"
                  "local f = load(function() i = i + 1; return parts[i] end)\n",
                  3, "precompiled Lua bytecode is refused");
  // Source through loadstring still works.
  nn::ModelSpec spec = luaOk("model = loadstring('return nn.Sequential():add(nn.ReLU())')()\n");
  CHECK(spec.model.children.size() == 1);

  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / fmt::format("graphc_lua_{}", std::random_device()());
  fs::create_directories(dir);
  std::ofstream(dir / "compiled.lua") << bytecode;
  std::ofstream(dir / "helper.lua") << "-- a helper\nlocal x = 1\nreturn x +\n";
  std::ofstream(dir / "model.lua") << "require 'compiled'\n";
  auto r = loadModel((dir / "model.lua").string());
  REQUIRE(!r);
  CHECK_THAT(r.diag().message, Catch::Contains("precompiled Lua bytecode is refused"));
  CHECK(r.diag().line == 1);
  std::ofstream(dir / "model.lua") << "x = 1\nrequire 'helper'\n";
  r = loadModel((dir / "model.lua").string());
  REQUIRE(!r);
  INFO(r.diag().str());
  CHECK(r.diag().file == fs::canonical(dir / "helper.lua").string());
  CHECK(r.diag().line == 4);
  CHECK_THAT(r.diag().message, Catch::Contains("unexpected symbol near '<eof>'"));
  fs::remove_all(dir);
}

TEST_CASE("the sandbox caps memory, instructions and time", "[lua][sandbox]") {
  LuaLimits small;
  small.memoryBytes = 16 << 20;
  Diag d = luaError("local t = {}\nfor i = 1, 1e8 do\n  t[i] = {i}\nend\n", small);
  INFO(d.str());
  CHECK_THAT(d.message, Catch::Contains("used more than 16 MiB of memory"));
  CHECK((d.line == 2 || d.line == 3)); // the line the count hook saw last
  d = luaError("local s = string.rep('x', 64 * 1024 * 1024)\n", small);
  CHECK_THAT(d.message, Catch::Contains("used more than 16 MiB of memory"));

  LuaLimits steps;
  steps.instructions = 1'000'000;
  auto start = std::chrono::steady_clock::now();
  d = luaError("model = nn.Sequential()\nwhile true do\n  local x = 1\nend\n", steps);
  INFO(d.str());
  CHECK_THAT(d.message, Catch::Contains("executed more than 1000000 Lua instructions"));
  CHECK((d.line == 2 || d.line == 3));

  LuaLimits time;
  time.seconds = 0.2;
  start = std::chrono::steady_clock::now();
  d = luaError("model = nn.Sequential()\n\nwhile true do end\n", time);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(d.str());
  CHECK_THAT(d.message, Catch::Contains("ran longer than 0.2 seconds"));
  CHECK(d.line == 3);
  CHECK(seconds < 5);
  // pcall cannot swallow a limit for long: the hook fires again at once.
  d = luaError("for i = 1, 1e9 do pcall(function() while true do end end) end\n", steps);
  CHECK_THAT(d.message, Catch::Contains("Lua instructions"));
}

TEST_CASE(":getParameters() counts the parameters the tracer lays out", "[lua]") {
  // The script hands its counts back through a config table, the one place a
  // number leaves the script.
  nn::ModelSpec spec = luaOk(R"(require 'nn'
model = nn.Sequential()
model:add(nn.SpatialConvolution(3, 8, 5, 5))
model:add(nn.ReLU())
model:add(nn.SpatialConvolutionMM(8, 4, 3, 3))
local inner = nn.Sequential():add(nn.View(4 * 22 * 22)):add(nn.Linear(4 * 22 * 22, 10))
model:add(inner)
local params, grads = model:getParameters()
local weights = model:parameters()
local conv = model:get(1)
optimizer = optim.sgd
config = {learningRate = params:nElement(), momentum = grads:nElement(),
          weightDecay = #weights, dampening = conv.weight:size(1) * 1000 + conv.weight:dim(),
          learningRateDecay = inner:getParameters():nElement()}
)");
  REQUIRE(spec.optimizer);
  const std::map<std::string, double> &got = spec.optimizer->config;
  const double linear = 4 * 22 * 22 * 10 + 10;
  const double want = 3 * 8 * 5 * 5 + 8 + 8 * 4 * 3 * 3 + 4 + linear;
  CHECK(got.at("learningRate") == want);
  CHECK(got.at("momentum") == want);
  CHECK(got.at("weightDecay") == 6); // three weights, three biases
  CHECK(got.at("dampening") == 8 * 1000 + 4);
  CHECK(got.at("learningRateDecay") == linear);
  auto traced = frontend::trace(spec, {3, 28, 28}); // 24x24, then 22x22
  if (!traced)
    FAIL(traced.diag().str());
  CHECK(double(traced->numParams) == want);
  // Tensor arithmetic on them is not there, and says so at the line.
  CHECK_LUA_ERROR(kModel + "model:get(2).weight:mul(0.01)\n", 2,
                  "initialising parameters with :mul() is not supported in model files");
  CHECK_LUA_ERROR(kModel + "\nmodel:get(2).bias:add(1)\n", 3, "with :add() is not supported");
}

TEST_CASE("Lua errors name the file and line", "[lua]") {
  CHECK_LUA_ERROR(kModel + "\nprint(model, undefinedThing.x)\n", 3,
                  "attempt to index global 'undefinedThing' (a nil value)");
  CHECK_LUA_ERROR("x = 1\nmodel = nn.Sequential(\n", 3, "unexpected symbol near '<eof>'");
  CHECK_LUA_ERROR("x = 1\ny = 2 @ 3\n", 2, "unexpected symbol near '@'");
  CHECK_LUA_ERROR("local t = {}\n\nerror('stop here')\n", 3, "stop here");
  CHECK_LUA_ERROR(
      "model = nn.Sequential()\nmodel:add(nn.Foo(3))\n", 2,
      "unknown module 'nn.Foo' (supported: nn.AddConstant, nn.BatchNormalization, nn.CAddTable");
  CHECK(luaError("model = nn.Sequential()\nmodel:add(nn.Foo(3))\n").col == 11);
  CHECK(luaError("model = nn.Sequential()\n  x = 1; os.exit(1)\n").col == 10);
  CHECK_LUA_ERROR("model = nn.Sequential()\nmodel:add(5)\n", 2, ":add() expects a module, got 5");
  CHECK_LUA_ERROR(kModel + "optimizer = optim.lbfgs\n", 2, "unknown optimizer 'optim.lbfgs'");
  CHECK_LUA_ERROR("x = torch.Tensor(3)\n", 1, "'torch.Tensor' is not supported");
  CHECK_LUA_ERROR("model = nn.Sequential()\n\nmodel:add(nn.Linear(10, -5))\n", 3,
                  "nn.Linear argument 2 (outputSize) must be a positive integer, got -5");
  Diag d = luaError("model = nn.Sequential()\n\nmodel:add(nn.Linear(10, -5))\n");
  CHECK(d.col == 11);
  CHECK_LUA_ERROR("x = 1\n", 1, "no 'model' defined");
  CHECK_LUA_ERROR("x = 1\nmodel = 5\n", 2, "'model' must be an nn.Sequential, got 5");
  CHECK_LUA_ERROR(kModel + "\ncriterion = nn.ReLU()\n", 3, "'criterion' must be a criterion");
  CHECK_LUA_ERROR(kModel + "optimizer = 'sgd'\n", 2, "'optimizer' must be optim.sgd");
  CHECK_LUA_ERROR(kModel + "optimizer = optim.adagrad\nconfig = {\n  momentum = 0.9}\n", 4,
                  "unknown config key 'momentum' for optim.adagrad");
  CHECK_LUA_ERROR(kModel + "input = {1, 0, 32}\n", 2, "'input' must be a list");
  CHECK_LUA_ERROR("optim.sgd(1)\n", 1, "optim.sgd is not called");
  CHECK_LUA_ERROR("local cmd = torch.CmdLine()\ncmd:option('-lr', 0.1, 'rate')\n"
                  "local opt = cmd:parse({'-lr', 'fast'})\n",
                  3, "command-line option -lr expects a number, got string 'fast'");
  CHECK_LUA_ERROR("local cmd = torch.CmdLine()\nlocal opt = cmd:parse({'-lr', '1'})\n", 2,
                  "unknown command-line option string '-lr'");
}

TEST_CASE("Lua errors are located in files with long paths", "[lua]") {
  // Lua shortens a chunk's name to "...tail" in its messages: to 72
  // characters in syntax errors (llex.c's MAXSRC, 80) and to 52 in run-time
  // errors (LUA_IDSIZE, 60). Paths on both sides of both lengths.
  for (size_t len : {20, 51, 52, 53, 60, 71, 72, 73, 90, 200}) {
    std::string file = "/" + std::string(len - 5, 'd') + ".lua";
    INFO("a path of " << file.size() << " characters");
    Diag syntax = luaError("x = 1\n\nmodel = nn.Sequential()\ny = 2 @ 3\n", {}, file);
    CHECK(syntax.file == file);
    CHECK(syntax.line == 4);
    CHECK_THAT(syntax.message, Catch::Contains("unexpected symbol near '@'"));
    Diag runtime = luaError("x = 1\nlocal t = {}\nprint(t.a.b)\n", {}, file);
    CHECK(runtime.file == file);
    CHECK(runtime.line == 3);
    CHECK_THAT(runtime.message, Catch::Contains("attempt to index field 'a' (a nil value)"));
  }
}

TEST_CASE("a script building 1,000 layers runs quickly", "[lua]") {
  std::string text = "require 'nn'\nlocal model = nn.Sequential()\nmodel:add(nn.View(64))\n"
                     "for i = 1, 999 do\n  model:add(nn.Linear(64, 64))\nend\nreturn model\n";
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto spec = parseModel(text, "deep.lua");
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(spec);
    CHECK(spec->model.children.size() == 1000);
    best = std::min(best, s);
  }
  WARN("1,000 layers in " << best * 1e3 << " ms (best of 5)");
  CHECK(best < 1.0); // a guard against the pathological, not a benchmark
}

TEST_CASE("a script's command line: arg, torch.CmdLine and lapp", "[lua]") {
  // tests/torch7/cmdline.lua with its defaults (a convnet) and with
  // `graphc train cmdline.lua -- -model mlp -hidden 16 -learningRate 0.5`.
  std::string path = kDir + "cmdline.lua";
  auto defaults = loadModel(path);
  REQUIRE(defaults);
  CHECK(defaults->model.children.at(0).kind == nn::Kind::SpatialConvolutionMM);
  auto mlp = loadModel(path, {}, {"-model", "mlp", "-hidden", "16", "-learningRate", "0.5"});
  REQUIRE(mlp);
  REQUIRE(mlp->model.children.size() == 5);
  CHECK(mlp->model.children[1].str() == "nn.Linear(784, 16)");
  CHECK(mlp->optimizer->config.at("learningRate") == 0.5);

  // arg as `th` gives it: arg[0] the file, then the words.
  nn::ModelSpec seen = *parseModel(R"(
    assert(arg[0] == 'dir/net.lua' and #arg == 2 and arg[1] == '-n' and arg[2] == '7')
    model = nn.Sequential():add(nn.Linear(tonumber(arg[2]), 3))
  )",
                                   "dir/net.lua", {}, {"-n", "7"});
  CHECK(seen.model.children.at(0).str() == "nn.Linear(7, 3)");

  // lapp, as torch/demos write it: typed defaults, flags, --name=value.
  const char *lappScript = R"(
    require 'pl.lapp'
    local opt = lapp[[
    Train a classifier
       -r,--learningRate  (default 0.05)      learning rate
       -m,--model         (default "convnet") type of model
       -f,--full                              use the full data set
       --hidden           (default 32)        hidden units
    ]]
    assert(type(opt.learningRate) == 'number' and type(opt.model) == 'string')
    model = nn.Sequential():add(nn.View(64)):add(nn.Linear(64, opt.hidden))
    if opt.full then model:add(nn.Tanh()) end
    note = opt.model .. ' ' .. opt.learningRate
    criterion = nn.MSECriterion()
    optimizer = optim.sgd
    config = {learningRate = opt.learningRate}
  )";
  auto plain = parseModel(lappScript, "lapp.lua");
  REQUIRE(plain);
  CHECK(plain->model.children.size() == 2);
  CHECK(plain->model.children[1].str() == "nn.Linear(64, 32)");
  CHECK(plain->optimizer->config.at("learningRate") == 0.05);
  auto given = parseModel(lappScript, "lapp.lua", {}, {"-f", "--hidden=8", "-r", "0.25"});
  REQUIRE(given);
  CHECK(given->model.children.size() == 3);
  CHECK(given->model.children[1].str() == "nn.Linear(64, 8)");
  CHECK(given->optimizer->config.at("learningRate") == 0.25);

  // Mistakes on the script's command line are located errors.
  for (auto [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--depth", "3"}, "lapp: unknown command-line option '--depth'"},
           {{"-r"}, "lapp: option -r needs a value"},
           {{"-r", "fast"}, "lapp: option -r expects a number, got 'fast'"}}) {
    auto r = parseModel(lappScript, "lapp.lua", {}, args);
    REQUIRE_FALSE(r);
    INFO(r.diag().str());
    CHECK(r.diag().message.find(message) != std::string::npos);
    CHECK(r.diag().line == 9); // the call, which ends with the usage text
  }
  auto bad = loadModel(path, {}, {"-depth", "3"});
  REQUIRE_FALSE(bad);
  CHECK(bad.diag().message.find("unknown command-line option string '-depth'") !=
        std::string::npos);
}

TEST_CASE("a script's initialisation gives the initial parameters", "[lua][init]") {
  // cifar.torch's MSR initialisation (findModules, the convolution's kW, kH
  // and nOutputPlane fields, weight:normal, bias:zero), :uniform, :fill and
  // reset(stdv); the rest keeps Torch7's reset().
  nn::ModelSpec spec = luaOk(R"(model = nn.Sequential()
model:add(nn.SpatialConvolution(2, 50, 5, 5))
model:add(nn.View(50 * 4 * 4))
model:add(nn.Linear(800, 40))
model:add(nn.Linear(40, 30))
model:add(nn.Linear(30, 10))
model:add(nn.BatchNormalization(10))
for _, m in ipairs(model:findModules('nn.SpatialConvolution')) do
  m.weight:normal(0.5, math.sqrt(2 / (m.kW * m.kH * m.nOutputPlane)))
  m.bias:zero()
end
model:get(3).weight:uniform(-0.01, 0.03)
model:get(3).bias:fill(0.25)
model:get(4):reset(0.5)
model:get(6).weight:fill(1)
)");
  auto t = frontend::trace(spec, {2, 8, 8});
  REQUIRE(t);
  const std::vector<float> flat = frontend::initParams(t->params, 9);
  auto values = [&](const std::string &name) {
    for (const ir::ParamInfo &p : t->params)
      if (p.name == name)
        return std::vector<double>(flat.begin() + p.offset, flat.begin() + p.offset + p.numel());
    FAIL("no parameter " << name);
    return std::vector<double>{};
  };
  auto stats = [](const std::vector<double> &v) {
    double mean = 0, var = 0;
    for (double x : v)
      mean += x / double(v.size());
    for (double x : v)
      var += (x - mean) * (x - mean) / double(v.size() - 1);
    return std::pair{mean, std::sqrt(var)};
  };
  auto [mean, sd] = stats(values("0.weight")); // 2500 draws of N(0.5, 0.04)
  CHECK(std::abs(mean - 0.5) < 0.004);
  CHECK(std::abs(sd - 0.04) < 0.003);
  for (double x : values("0.bias"))
    CHECK(x == 0);
  auto w2 = values("2.weight");
  CHECK(*std::min_element(w2.begin(), w2.end()) >= -0.01);
  CHECK(*std::max_element(w2.begin(), w2.end()) <= 0.03);
  CHECK(std::abs(stats(w2).first - 0.01) < 0.001);
  for (double x : values("2.bias"))
    CHECK(x == 0.25);
  for (const char *name : {"3.weight", "3.bias"}) {
    auto v = values(name);
    CHECK(*std::max_element(v.begin(), v.end()) > 0.4);
    for (double x : v)
      CHECK(std::abs(x) <= 0.5);
  }
  auto w4 = values("4.weight"); // Torch7's reset(): 1/sqrt(30)
  CHECK(*std::max_element(w4.begin(), w4.end()) <= 1 / std::sqrt(30.0));
  CHECK(*std::max_element(w4.begin(), w4.end()) > 0.8 / std::sqrt(30.0));
  for (double x : values("5.weight"))
    CHECK(x == 1);
  CHECK(values("5.running_var") == std::vector<double>(10, 1.0));
  // Initialising what graphc cannot is a clear error.
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.Linear(3, 4))\n"
                  "model:get(1).weight:copy(w)\n",
                  2, "initialising parameters with :copy() is not supported in model files");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.Linear(3, 4))\n"
                  "model:get(1).weight:normal(0, -1)\n",
                  2, ":normal() expects a standard deviation >= 0, got -1");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.Linear(3, 4))\n"
                  "model:get(1).bias:fill(0/0)\n",
                  2, ":fill() expects finite numbers, got nan");
}

TEST_CASE("SpatialZeroPadding and Padding put their values where Torch7 does", "[lua][layers]") {
  nn::ModelSpec spec = luaOk(R"(model = nn.Sequential()
model:add(nn.SpatialZeroPadding(1, 2, 0, 3))
model:add(nn.Padding(1, -1, 3, 7.5))
model:add(nn.Padding(3, 2))
)");
  auto t = frontend::trace(spec, {2, 3, 4});
  REQUIRE(t);
  // [N,2,3,4] -> zeros: W 1 + 4 + 2, H 0 + 3 + 3 -> [N,2,6,7]; one plane of
  // 7.5 before -> [N,3,6,7]; Padding(3, 2) without nInputDim counts the batch
  // dimension: 2 entries after the planes' rows -> [N,3,8,7].
  CHECK(t->graph.type(t->graph.output("output")).shape == ir::Shape{ir::kBatch, 3, 8, 7});
  ir::Tensor x({2, 2, 3, 4});
  for (size_t i = 0; i < x.data.size(); ++i)
    x.data[i] = double(i + 1);
  auto out =
      ir::run(t->graph, {{"x", x}, {"labels", ir::Tensor({2})}, {"params", ir::Tensor({1})}});
  REQUIRE(out);
  const ir::Tensor &y = out->at("output");
  auto at = [&](int64_t n, int64_t c, int64_t h, int64_t w) {
    return y.data[size_t(((n * 3 + c) * 8 + h) * 7 + w)];
  };
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 8; ++h)
      for (int64_t w = 0; w < 7; ++w) {
        CHECK(at(n, 0, h, w) == (h < 6 ? 7.5 : 0)); // the Padding plane, then Padding(3)'s zeros
        for (int64_t c = 1; c < 3; ++c) {
          bool inside = h < 3 && w >= 1 && w < 5;
          double want = inside ? x.data[size_t(((n * 2 + c - 1) * 3 + h) * 4 + w - 1)] : 0;
          CHECK(at(n, c, h, w) == want);
        }
      }
  // A negative size crops, as Torch7's narrow: left 1 and bottom 2 off, then
  // 2 zero columns on the right and a zero row on top.
  auto crop = frontend::trace(
      luaOk("model = nn.Sequential():add(nn.SpatialZeroPadding(-1, 2, 1, -2))\n"), {1, 3, 4});
  REQUIRE(crop);
  ir::Tensor z({1, 1, 3, 4});
  for (size_t i = 0; i < z.data.size(); ++i)
    z.data[i] = double(i + 1);
  auto cropped =
      ir::run(crop->graph, {{"x", z}, {"labels", ir::Tensor({1})}, {"params", ir::Tensor({1})}});
  REQUIRE(cropped);
  CHECK(cropped->at("output").shape == ir::Shape{1, 1, 2, 5});
  CHECK(cropped->at("output").data == std::vector<double>{0, 0, 0, 0, 0, 2, 3, 4, 0, 0});
  auto nothing = frontend::trace(
      luaOk("model = nn.Sequential():add(nn.SpatialZeroPadding(-2, -2, 3, 3))\n"), {1, 3, 4});
  REQUIRE(!nothing);
  CHECK_THAT(nothing.diag().message, Catch::Contains("crops the input [N,1,3,4] to nothing"));
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.Padding(1, 2, 3, 0, 2))\n", 1,
                  "padding inside the dimension (index 2) is not supported");
  auto batch = frontend::trace(luaOk("model = nn.Sequential():add(nn.Padding(1, 2))\n"), {3});
  REQUIRE(!batch);
  CHECK_THAT(batch.diag().message, Catch::Contains("pads the batch dimension"));
}

TEST_CASE("a criterion's sizeAverage = false sums, and `loss` names the criterion", "[lua]") {
  // The same net and batch: the sum is the mean times the values averaged
  // (ClassNLL: the batch; MSE: every output), as Torch7 computes it.
  const std::string net = "model = nn.Sequential():add(nn.Linear(3, 4)):add(nn.LogSoftMax())\n";
  std::mt19937 rng(4);
  ir::Bindings b{{"x", test::randomTensor({5, 3}, rng)},
                 {"labels", test::randomLabels(5, 4, rng)},
                 {"params", test::randomTensor({16}, rng)}};
  auto lossOf = [&](const std::string &criterion) {
    auto t = frontend::trace(luaOk(net + criterion), {3});
    REQUIRE(t);
    auto out = ir::run(t->graph, b);
    REQUIRE(out);
    return out->at("loss").data[0];
  };
  double nll = lossOf("criterion = nn.ClassNLLCriterion()\n");
  CHECK(lossOf("loss = nn.ClassNLLCriterion()\nloss.sizeAverage = false\n") ==
        Approx(5 * nll).epsilon(1e-12));
  double mse = lossOf("criterion = nn.MSECriterion()\ncriterion.sizeAverage = true\n");
  CHECK(lossOf("criterion = nn.MSECriterion()\ncriterion.sizeAverage = false\n") ==
        Approx(5 * 4 * mse).epsilon(1e-12));
  CHECK(lossOf("loss = nn.MSECriterion()\n") == Approx(mse).epsilon(1e-12));
}

TEST_CASE("kernels and connection tables reach the layers as Torch7 computes them",
          "[lua][layers]") {
  // image.gaussian1D(5) and image.gaussian{size = 3, sigma = 0.5} as the
  // image package computes them (center = size / 2 + 0.5), torch.ones, and
  // nn.tables.full / oneToOne; a map's weight is [connections, kH, kW].
  nn::ModelSpec spec = luaOk(R"(require 'image'
local k = image.gaussian1D(5)
local m = nn.SpatialConvolutionMap(nn.tables.full(2, 3), 5, 3)
model = nn.Sequential()
model:add(nn.SpatialSubtractiveNormalization(2, k))
model:add(nn.SpatialSubtractiveNormalization(2, torch.ones(3, 3)))
model:add(nn.SpatialSubtractiveNormalization(1, image.gaussian{size = 3, sigma = 0.5}))
model:add(nn.SpatialSubtractiveNormalization())
model:add(m)
model:add(nn.SpatialConvolutionMap(nn.tables.oneToOne(3), 1, 1, 1, 2))
model:add(nn.SpatialLPPooling(3, 2, 2, 2))
model:add(nn.SpatialLPPooling(3, 3, 2, 2, 1, 1))
optimizer = optim.sgd
config = {learningRate = m.weight:size(1) * 100 + m.weight:size(2) * 10 + m.weight:size(3),
          momentum = m.bias:nElement(), weightDecay = k:sum()}
)");
  const auto &c = spec.model.children;
  REQUIRE(c.size() == 8);
  const std::vector<double> gauss = {0.2780373004531941, 0.7261490370736909, 1, 0.7261490370736909,
                                     0.2780373004531941};
  REQUIRE(c[0].tensor);
  CHECK(c[0].tensor->sizes == std::vector<int64_t>{5});
  for (size_t i = 0; i < gauss.size(); ++i)
    CHECK(c[0].tensor->values[i] == Approx(gauss[i]).epsilon(1e-15));
  CHECK(c[0].str() == "nn.SpatialSubtractiveNormalization(2, tensor 5)");
  REQUIRE(c[1].tensor);
  CHECK(c[1].tensor->sizes == std::vector<int64_t>{3, 3});
  CHECK(c[1].tensor->values == std::vector<double>(9, 1));
  REQUIRE(c[2].tensor); // exp(-(dx^2 + dy^2) / (2 * 1.5^2)) around the middle
  const double e1 = std::exp(-2.0 / 9), e2 = std::exp(-4.0 / 9);
  const std::vector<double> g2 = {e2, e1, e2, e1, 1, e1, e2, e1, e2};
  for (size_t i = 0; i < g2.size(); ++i)
    CHECK(c[2].tensor->values[i] == Approx(g2[i]).epsilon(1e-15));
  CHECK(!c[3].tensor);
  CHECK(c[4].tensor->values == nn::fullTable(2, 3).values);
  CHECK(c[4].str() == "nn.SpatialConvolutionMap(tensor 6x2, 5, 3, 1, 1)");
  CHECK(c[5].tensor->values == nn::oneToOneTable(3).values);
  CHECK(c[5].args == std::vector<double>{1, 1, 1, 2});
  CHECK(c[6].str() == nn::SpatialLPPooling(3, 2, 2, 2).str());
  CHECK(c[6].args == std::vector<double>{3, 2, 2, 2, 2, 2});
  CHECK(c[7].args == std::vector<double>{3, 3, 2, 2, 1, 1});
  REQUIRE(spec.optimizer);
  CHECK(spec.optimizer->config.at("learningRate") == 6 * 100 + 3 * 10 + 5);
  CHECK(spec.optimizer->config.at("momentum") == 3);
  CHECK(spec.optimizer->config.at("weightDecay") == Approx(3.0083726750537700));

  CHECK_LUA_ERROR("model = nn.Sequential()\nlocal t = nn.tables.random(3, 8, 1)\n", 2,
                  "nn.tables.random is not supported");
  CHECK_LUA_ERROR("model = nn.Sequential()\n"
                  "model:add(nn.SpatialSubtractiveNormalization(2, torch.ones(4)))\n",
                  2, "the averaging kernel must have odd sizes, got tensor 4");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.SpatialSubtractiveNormalization(1, "
                  "torch.ones(3, 3, 3)))\n",
                  1, "the averaging kernel must be 2D or 1D, got tensor 3x3x3");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.SpatialSubtractiveNormalization(2, 5))\n", 1,
                  "argument 2 (kernel) must be a tensor such as image.gaussian1D(7)");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.SpatialConvolutionMap(3, 5, 5))\n", 1,
                  "argument 1 (connTable) must be a connection table such as "
                  "nn.tables.full(3, 16)");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.SpatialConvolutionMap(torch.ones(3, 3), 5, 5))\n",
                  1, "argument 1 (connTable) must be a [connections, 2] table, got tensor 3x3");
  CHECK_LUA_ERROR("model = nn.Sequential():add(nn.SpatialLPPooling(3, 0, 2, 2))\n", 1,
                  "argument 2 (pnorm) must be positive, got 0");
  CHECK_LUA_ERROR(
      "model = nn.Sequential():add(nn.SpatialConvolutionMap(torch.zeros(2, 2), 5, 5))\n", 1,
      "argument 1 (connTable) holds 0, not a plane number (1-based)");
}

TEST_CASE("every elementwise layer of layers.def computes Torch7's function, and .t7 files "
          "carry it",
          "[lua][layers][t7]") {
  // Torch7's definitions, written here independently of ir/Elementwise.h.
  const std::map<std::string, std::function<double(double)>> torch7 = {
      {"ReLU", [](double x) { return x > 0 ? x : 0; }},
      {"Tanh", [](double x) { return std::tanh(x); }},
      {"Sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"Square", [](double x) { return x * x; }},
      {"Exp", [](double x) { return std::exp(x); }},
      {"Log", [](double x) { return std::log(x); }},
  };
  test::TempDir dir("graphc-elementwise-layers");
  int checked = 0;
  for (const nn::LayerInfo &l : nn::layers()) {
    if (!l.op)
      continue;
    INFO("nn." << l.name);
    auto f = torch7.find(l.name);
    REQUIRE(f != torch7.end()); // a new elementwise layer needs its Torch7 definition above
    auto spec = luaOk(fmt::format("model = nn.Sequential():add(nn.{}())\ninput = {{6}}\n", l.name));
    auto t = frontend::trace(spec, {6});
    REQUIRE(t);
    ir::Tensor x({2, 6});
    for (size_t i = 0; i < x.data.size(); ++i)
      x.data[i] = 0.37 * double(i) - 1.9 + (l.name == std::string("Log") ? 2.0 : 0.0);
    auto out =
        ir::run(t->graph, {{"x", x}, {"labels", ir::Tensor({2})}, {"params", ir::Tensor({1})}});
    REQUIRE(out);
    const ir::Tensor &y = out->at("output");
    REQUIRE(y.data.size() == x.data.size());
    for (size_t i = 0; i < x.data.size(); ++i)
      CHECK(y.data[i] == Approx(f->second(x.data[i])).epsilon(1e-12).margin(1e-12));
    if (l.t7) { // out to a .t7 file and back: the same network
      auto bytes = driver::exportT7(spec.model, {});
      REQUIRE(bytes);
      std::string path = dir / (std::string(l.name) + ".t7");
      std::ofstream(path, std::ios::binary)
          .write(reinterpret_cast<const char *>(bytes->data()), std::streamsize(bytes->size()));
      auto back = driver::importT7(path);
      if (!back)
        FAIL(back.diag().str());
      CHECK(tree(back->spec.model) == tree(spec.model));
    }
    ++checked;
  }
  CHECK(checked == int(torch7.size()));
}
