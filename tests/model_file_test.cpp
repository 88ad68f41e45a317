// tests/model_file_test.cpp - model files (frontend/ModelFile.h) in the
// embedded Lua 5.1: the reference file, Lua the language (what the old
// hand-written subset refused is legal now), the located errors for what is
// still wrong, and hostile input.
#include "frontend/ModelFile.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <utility>

using namespace graphc;
using graphc::frontend::loadModel;
using graphc::frontend::parseModel;

namespace {

const char *kReference = R"(require 'nn'
model = nn.Sequential()
model:add(nn.View(32*32))
model:add(nn.Linear(32*32, 1000)):add(nn.ReLU())
model:add(nn.Linear(1000, 1000)):add(nn.ReLU())
model:add(nn.Linear(1000, 10))
model:add(nn.LogSoftMax())
model = model:float()

require 'optim'
criterion = nn.ClassNLLCriterion()
optimizer = optim.adagrad
config = {learningRate = 0.001}
)";

/// The tree as text, one module a line, so that a mismatch shows both trees.
std::string tree(const nn::Module &m, int indent = 0) {
  std::string out = std::string(indent, ' ') + m.str() + "\n";
  for (const nn::Module &c : m.children)
    out += tree(c, indent + 2);
  return out;
}

nn::ModelSpec parseOk(const std::string &text) {
  auto r = parseModel(text, "test.model");
  if (!r)
    FAIL("unexpected error: " << r.diag().str() << "\ninput:\n" << text);
  return *r;
}

Diag parseError(const std::string &text) {
  auto r = parseModel(text, "test.model");
  if (r)
    FAIL("expected an error, got a model:\n"
         << tree(r->model) << "input:\n"
         << text.substr(0, 400));
  return r.diag();
}

#define CHECK_ERROR(text, line_, col_, substring)                                                  \
  do {                                                                                             \
    Diag d_ = parseError(text);                                                                    \
    INFO("input: " << std::string(text).substr(0, 200) << "\ndiagnostic: " << d_.str());           \
    CHECK(d_.file == "test.model");                                                                \
    CHECK(d_.line == (line_));                                                                     \
    CHECK(d_.col == (col_));                                                                       \
    CHECK_THAT(d_.message, Catch::Contains(substring));                                            \
  } while (0)

const std::string kModel = "model = nn.Sequential()\n";

/// Evaluates `expr` through an sgd config entry, a place any number goes.
double evalNumber(const std::string &expr) {
  nn::ModelSpec spec = parseOk(kModel +
                               "optimizer = optim.sgd\nconfig = "
                               "{momentum = " +
                               expr + "}\n");
  INFO(expr);
  REQUIRE(spec.optimizer);
  return spec.optimizer->config.at("momentum");
}

} // namespace

TEST_CASE("the reference model file", "[model_file]") {
  nn::ModelSpec spec = parseOk(kReference);
  const nn::Sequential expected = test::seedMlp().model;
  CHECK(tree(spec.model) == tree(expected));
  REQUIRE(spec.model.children.size() == 7);
  for (size_t i = 0; i < 7; ++i) {
    CHECK(spec.model.children[i].kind == expected.children[i].kind);
    CHECK(spec.model.children[i].args == expected.children[i].args);
  }
  CHECK(spec.file == "test.model");
  CHECK(spec.modelLoc.line == 8);
  CHECK(spec.modelLoc.col == 1);
  CHECK(spec.model.loc.line == 2);
  CHECK(spec.model.loc.col == 9);
  CHECK(spec.model.children[1].loc.line == 4);
  CHECK(spec.model.children[1].loc.col == 11);
  CHECK(spec.model.children[2].loc.line == 4);
  CHECK(spec.model.children[2].loc.col == 39);
  REQUIRE(spec.criterion);
  CHECK(spec.criterion->kind == nn::CriterionKind::ClassNLL);
  CHECK(spec.criterion->loc.line == 11);
  CHECK(spec.criterion->loc.col == 13);
  REQUIRE(spec.optimizer);
  CHECK(spec.optimizer->name == "adagrad");
  CHECK(spec.optimizer->config.size() == 1);
  CHECK(spec.optimizer->config.at("learningRate") == 0.001);
  CHECK(spec.optimizer->loc.line == 12);
  CHECK(!spec.input);
}

TEST_CASE("arithmetic follows Lua's precedence", "[model_file]") {
  CHECK(evalNumber("2^3^2") == 512);
  CHECK(evalNumber("-2^2") == -4);
  CHECK(evalNumber("2^-1") == 0.5);
  CHECK(evalNumber("- -2") == 2);
  CHECK(evalNumber("7 % 3") == 1);
  CHECK(evalNumber("-7 % 3") == 2);
  CHECK(evalNumber("7 % -3") == -2);
  CHECK(evalNumber("5.5 % 2") == 1.5);
  CHECK(evalNumber("2 + 3 * 4") == 14);
  CHECK(evalNumber("(2 + 3) * 4") == 20);
  CHECK(evalNumber("10 / 4") == 2.5);
  CHECK(evalNumber("10 - 4 - 3") == 3);
  CHECK(evalNumber("2 * 3 ^ 2") == 18);
  CHECK(evalNumber("1e3") == 1000);
  CHECK(evalNumber("1E+2") == 100);
  CHECK(evalNumber("3e-2") == 0.03);
  CHECK(evalNumber(".5") == 0.5);
  CHECK(evalNumber("5.") == 5);
  CHECK(evalNumber("0x10") == 16);
  CHECK(evalNumber("0XfF") == 255);
  CHECK(evalNumber("1e-400") == 0);
  CHECK(evalNumber("2^53 + 2^53") == 18014398509481984.0);
  // What the old subset refused: the length, logical and comparison
  // operators, the standard library, strings that become numbers.
  CHECK(evalNumber("#{1, 2, 3}") == 3);
  CHECK(evalNumber("(1 < 2) and 4 or 5") == 4);
  CHECK(evalNumber("1 ~= 1 and 4 or 5") == 5);
  CHECK(evalNumber("not nil and 6") == 6);
  CHECK(evalNumber("math.max(2, 7) + math.floor(2.5)") == 9);
  CHECK(evalNumber("tonumber('1' .. 6)") == 16);
  CHECK(evalNumber("('%d'):format(42) + 0") == 42);
  CHECK(evalNumber("select('#', 1, nil, 3)") == 3);
}

TEST_CASE("variables, tables and indexing", "[model_file]") {
  nn::ModelSpec spec = parseOk(R"(
require('nn'); require "optim"
local ninputs = 3*32*32
nstates = {64, 64, 128,}
sizes = {hidden = 100; ['out'] = 10, inner = {deep = {7}}}
local a, b = 2, 3
c, d = b, a
model = nn.Sequential()
model:add(nn.View(ninputs))
model:add(nn.Linear(ninputs, nstates[3]))
model:add(nn.Linear(nstates[3], sizes.hidden))
model:add(nn.Linear(sizes['hidden'], sizes.out))
model:add(nn.Linear(sizes.out, sizes.inner.deep[1] + c * d))
nstates[4] = 5
sizes.extra = nstates[4]
model:add(nn.Linear(13, sizes.extra))
)");
  nn::Sequential expected;
  expected.add(nn::View(3072))
      .add(nn::Linear(3072, 128))
      .add(nn::Linear(128, 100))
      .add(nn::Linear(100, 10))
      .add(nn::Linear(10, 13))
      .add(nn::Linear(13, 5));
  CHECK(tree(spec.model) == tree(expected));
}

TEST_CASE("strings, comments and separators", "[model_file]") {
  nn::ModelSpec spec = parseOk("#!/usr/bin/env th\n"
                               "-- a line comment\n"
                               "--[[ a block\ncomment ]] model = nn.Sequential()\n"
                               "--[==[ a ]] level-2 ]=] block ]==]\n"
                               "--[ not a block, a line comment\n"
                               "local s = 'a\\'b\\n\\65' .. \"q\\\"\" .. [[long\nstring]]\n"
                               "model:add(nn.ReLU()); model:add(nn.Tanh());\n"
                               "model:add(nn.Sigmoid()) -- trailing\n");
  CHECK(tree(spec.model) == "nn.Sequential()\n  nn.ReLU()\n  nn.Tanh()\n  nn.Sigmoid()\n");
  CHECK(spec.model.children[2].loc.line == 10);
  // A byte-order mark is not part of the script, and \r\n ends lines.
  spec = parseOk("\xEF\xBB\xBFmodel = nn.Sequential()\r\nmodel:add(nn.ReLU())\r\n");
  REQUIRE(spec.model.children.size() == 1);
  CHECK(spec.model.children[0].loc.line == 2);
}

TEST_CASE("modules are values with Lua's reference semantics", "[model_file]") {
  nn::ModelSpec spec = parseOk(R"(
local nn = require 'nn'
require 'cunn'
m = nn.Linear(2, 3)
model = nn.Sequential():add(m)
model:add(m):add(nn.ReLU(true))
inner = nn.Sequential():add(nn.Linear(3, 3)):cuda()
model:add(inner)
inner:add(nn.Tanh())
model:training()
model = model:cuda():float():double()
criterion = nn.MSECriterion():cuda()
)");
  nn::Sequential inner;
  inner.add(nn::Linear(3, 3)).add(nn::Tanh()); // added after `inner` went into the model
  nn::Sequential expected;
  expected.add(nn::Linear(2, 3)).add(nn::Linear(2, 3)).add(nn::ReLU()).add(inner);
  CHECK(tree(spec.model) == tree(expected));
  CHECK(spec.model.children[3].children[0].loc.line == 7);
  CHECK(spec.model.children[3].children[1].loc.line == 9);
  REQUIRE(spec.criterion);
  CHECK(spec.criterion->kind == nn::CriterionKind::MSE);
  CHECK(spec.criterion->loc.line == 12);
}

TEST_CASE("constructor defaults match the C++ API", "[model_file]") {
  nn::ModelSpec spec = parseOk(R"(model = nn.Sequential()
model:add(nn.SpatialConvolution(3, 16, 5, 5))
model:add(nn.SpatialConvolutionMM(16, 32, 3, 3, 2, 2, 1))
model:add(nn.SpatialConvolution(32, 32, 3, 3, 1, 1, 1, 2))
model:add(nn.SpatialMaxPooling(2, 2))
model:add(nn.SpatialMaxPooling(3, 3, 2, 2, 1, 1):floor())
model:add(nn.View(-1, 32*4*4))
model:add(nn.View(2, 4, 4))
model:add(nn.Reshape(32, 16))
model:add(nn.Dropout())
model:add(nn.Dropout(0.25))
model:add(nn.Linear(512, 10, true))
model:add(nn.SoftMax())
criterion = nn.CrossEntropyCriterion()
input = {3, 32, 32}
)");
  nn::Sequential expected;
  nn::Module view = nn::View(2);
  view.args = {2, 4, 4};
  expected.add(nn::SpatialConvolution(3, 16, 5, 5))
      .add(nn::SpatialConvolutionMM(16, 32, 3, 3, 2, 2, 1))
      .add(nn::SpatialConvolution(32, 32, 3, 3, 1, 1, 1, 2))
      .add(nn::SpatialMaxPooling(2, 2))
      .add(nn::SpatialMaxPooling(3, 3, 2, 2, 1, 1))
      .add(nn::View(512))
      .add(view)
      .add(nn::Reshape({32, 16}))
      .add(nn::Dropout())
      .add(nn::Dropout(0.25))
      .add(nn::Linear(512, 10))
      .add(nn::SoftMax());
  CHECK(tree(spec.model) == tree(expected));
  REQUIRE(spec.criterion);
  CHECK(spec.criterion->kind == nn::CriterionKind::CrossEntropy);
  REQUIRE(spec.input);
  CHECK(*spec.input == ir::Shape{3, 32, 32});
}

TEST_CASE("BatchNorm's constructors take Torch7's defaults, cudnn's too", "[model_file]") {
  nn::ModelSpec spec = parseOk(R"(require 'cudnn'
model = nn.Sequential()
model:add(nn.SpatialBatchNormalization(16))
model:add(cudnn.SpatialBatchNormalization(16, 1e-3, nil, false))
model:add(nn.View(16))
model:add(nn.BatchNormalization(16, nil, 0.3))
local bn = model:get(4)
assert(bn.weight:size(1) == 16 and bn.bias:nElement() == 16 and model:get(2).weight == nil)
input = {16, 1, 1}
)");
  nn::Sequential expected;
  expected.add(nn::SpatialBatchNormalization(16, 1e-5, 0.1, true))
      .add(nn::SpatialBatchNormalization(16, 1e-3, 0.1, false))
      .add(nn::View(16))
      .add(nn::BatchNormalization(16, 1e-5, 0.3));
  CHECK(tree(spec.model) == tree(expected));
  CHECK(expected.children[1].str() == "nn.SpatialBatchNormalization(16, 0.001, 0.1, false)");
}

TEST_CASE("optimizer configs", "[model_file]") {
  nn::ModelSpec spec = parseOk(kModel + R"(
optimizer = optim.sgd
optimState = {learningRate = 1e-2, momentum = 0.9, nesterov = true}
optimState.weightDecay = 5e-4
)");
  REQUIRE(spec.optimizer);
  CHECK(spec.optimizer->name == "sgd");
  CHECK(spec.optimizer->config ==
        std::map<std::string, double>{
            {"learningRate", 0.01}, {"momentum", 0.9}, {"nesterov", 1}, {"weightDecay", 5e-4}});

  spec = parseOk(kModel + "opt = optim.adam\noptimizer = opt\n"
                          "optimConfig = {beta1 = 0.8, epsilon = 1e-8}\n");
  CHECK(spec.optimizer->name == "adam");
  CHECK(spec.optimizer->config.at("beta1") == 0.8);
  CHECK(parseOk(kModel).optimizer == std::nullopt);
  CHECK(parseOk(kModel).criterion == std::nullopt);

  CHECK_ERROR(kModel + "optimizer = optim.adagrad\nconfig = {learningRate = "
                       "1, momentum = 0.9}\n",
              3, 29, "unknown config key 'momentum' for optim.adagrad");
  CHECK_ERROR(kModel + "optimizer = optim.adam\nconfig = {}\nconfig.beta3 = 1\n", 4, 8,
              "'beta3' for optim.adam");
  CHECK_ERROR(kModel + "optimizer = optim.sgd\nconfig = {learningRate = 'x'}\n", 3, 11,
              "'learningRate' must be a finite number, got string 'x'");
  CHECK_ERROR(kModel + "optimizer = optim.sgd\nconfig = {learningRate = 1/0}\n", 3, 11, "got inf");
  CHECK_ERROR(kModel + "optimizer = optim.sgd\nconfig = {1}\n", 3, 1, "only have named entries");
  CHECK_ERROR(kModel + "optimizer = optim.sgd\nconfig = 3\n", 3, 1, "'config' must be a table");
  CHECK_ERROR(kModel + "optimizer = 'sgd'\n", 2, 1,
              "'optimizer' must be optim.sgd, optim.adagrad, optim.adam, optim.rmsprop, "
              "optim.adadelta or optim.nag, got string 'sgd'");
  CHECK_ERROR(kModel + "optimizer = optim.lbfgs\n", 2, 13, "unknown optimizer 'optim.lbfgs'");
  CHECK_ERROR(kModel + "optim.sgd(1)\n", 2, 1, "optim.sgd is not called");
}

TEST_CASE("the model, criterion and input globals are checked", "[model_file]") {
  CHECK_ERROR("", 1, 1,
              "no 'model' defined; expected e.g. model = "
              "nn.Sequential()");
  CHECK_ERROR("-- nothing here\nx = 1\n", 1, 1, "no 'model' defined");
  CHECK_ERROR("model = nn.Sequential()\nmodel = nil\n", 2, 1, "no 'model' defined");
  CHECK_ERROR("require 'nn'\n  model = nn.Linear(1, 2)\n", 2, 3,
              "'model' must be an nn.Sequential, got module nn.Linear(1, 2)");
  CHECK_ERROR("model = 5\n", 1, 1, "'model' must be an nn.Sequential, got 5");
  CHECK_ERROR(kModel + "criterion = nn.ReLU()\n", 2, 1, "'criterion' must be a criterion");
  CHECK_ERROR(kModel + "criterion = nn.ClassNLLCriterion({1, 2})\n", 2, 13,
              "nn.ClassNLLCriterion expects no arguments, got 1");
  CHECK_ERROR(kModel + "input = {1, 0, 32}\n", 2, 1,
              "'input' must be a list of 1 to 8 positive integers");
  CHECK_ERROR(kModel + "input = 'x'\n", 2, 1, "'input' must be a list");
  CHECK_ERROR(kModel + "input = {}\n", 2, 1, "'input' must be a list");
}

TEST_CASE("Lua the language: what the old subset refused is legal", "[model_file]") {
  nn::ModelSpec spec = parseOk(R"(require 'nn'
torch.manualSeed(1)
torch.setdefaulttensortype('torch.FloatTensor')
local function block(m, n, ...)
  for i = 1, n do m:add(nn.Linear(8, 8)) end
  for _, layer in ipairs({...}) do m:add(layer) end
  return m
end
local model = nn.Sequential():add(nn.View(8))
block(model, 2, nn.ReLU(), nn.Tanh())
local i = 0
while i < 2 do i = i + 1 end
repeat i = i - 1 until i == 0
if #model.modules == 5 and i == 0 then
  model:add(nn.Linear(8, 4))
elseif false then
  error('not here')
else
  error('nor here')
end
do local name = 'layer' .. 1; assert(name == 'layer1') end
print('built', model:size(), 'modules')
return model
)");
  nn::Sequential expected;
  expected.add(nn::View(8))
      .add(nn::Linear(8, 8))
      .add(nn::Linear(8, 8))
      .add(nn::ReLU())
      .add(nn::Tanh())
      .add(nn::Linear(8, 4));
  CHECK(tree(spec.model) == tree(expected));
  CHECK(spec.model.children[1].loc.line == 5);
  CHECK(spec.model.children[3].loc.line == 10);

  // The malformed-model corpus's old cases of Lua outside the subset are
  // model files now (tests/torch7/legal), each with its layers.
  const std::string dir = std::string(GRAPHC_SOURCE_DIR) + "/tests/torch7/legal/";
  const std::pair<const char *, size_t> legal[] = {
      {"comparison.model", 0},
      {"for_loop.model", 7},
      {"function_definition.model", 0},
      {"if_statement.model", 0},
      {"no_model.model", 2},
      {"return_model.model", 2},
      {"string_concat_number.model", 0},
      {"unknown_function.model", 0},
      {"while_loop.model", 0},
  };
  size_t files = 0;
  for (const auto &entry : std::filesystem::directory_iterator(dir))
    files += entry.path().extension() == ".model";
  CHECK(files == std::size(legal));
  for (const auto &[file, layers] : legal) {
    INFO(file);
    auto r = loadModel(dir + file);
    if (!r)
      FAIL(r.diag().str());
    CHECK(r->model.children.size() == layers);
  }
}

TEST_CASE("what is still wrong is named with its line", "[model_file]") {
  CHECK_ERROR("os.execute('rm -rf /')\n", 1, 1, "'os' is not available in model files");
  CHECK_ERROR(kModel + "local f = io.open('/etc/passwd')\n", 2, 11, "'io' is not available");
  CHECK_ERROR("x = y + 1\n", 1, 1, "attempt to perform arithmetic on global 'y' (a nil value)");
  CHECK_ERROR("require 'os'\n", 1, 1, "require 'os': not available in model files");
  CHECK_ERROR("require(nn)\n", 1, 1,
              "require expects one module name, e.g. require 'nn', got table");
  CHECK_ERROR("x = torch.Tensor(3)\n", 1, 5, "'torch.Tensor' is not supported");
  CHECK_ERROR("x = 'abc' + 1\n", 1, 1, "attempt to perform arithmetic on a string value");
  CHECK_ERROR("x = (1)(2)\n", 1, 1, "attempt to call a number value");
  CHECK_ERROR("x = {}\nx:foo()\n", 2, 1, "attempt to call method 'foo' (a nil value)");
  CHECK_ERROR(kModel + "model:forward()\n", 2, 1, "attempt to call method 'forward' (a nil value)");
  CHECK_ERROR(kModel + "\n\nerror('opt.model must be vgg or nin')\n", 4, 1,
              "opt.model must be vgg or nin");
  CHECK_ERROR(kModel + "torch.setdefaulttensortype('torch.FloatTensor')\n"
                       "model:add(nn.SpatialContrastiveNormalization(16))\n",
              3, 11,
              "unknown module 'nn.SpatialContrastiveNormalization' (supported: nn.AddConstant, "
              "nn.BatchNormalization, nn.CAddTable, nn.ClassNLLCriterion, nn.Concat, "
              "nn.ConcatTable, nn.CrossEntropyCriterion, nn.Dropout");
  CHECK_ERROR(
      kModel + "require 'cudnn'\nmodel:add(cudnn.Linear(10, 10))\n", 3, 11,
      "unknown module 'cudnn.Linear' (supported: cudnn.BatchNormalization, cudnn.LogSoftMax");
}

TEST_CASE("constructor arguments are checked", "[model_file]") {
  auto layer = [](const std::string &expr) { return kModel + "model:add(" + expr + ")\n"; };
  CHECK_ERROR(layer("nn.Linear(10)"), 2, 11,
              "nn.Linear expects 2 arguments (inputSize, outputSize), got 1");
  CHECK_ERROR(layer("nn.Linear(1, 2, true, 4)"), 2, 11,
              "nn.Linear expects 2 arguments (inputSize, outputSize), got 4");
  CHECK_ERROR(layer("nn.ReLU(1, 2)"), 2, 11,
              "nn.ReLU expects at most 1 argument ([inplace]), got 2");
  CHECK_ERROR(layer("nn.Tanh(1)"), 2, 11, "nn.Tanh expects no arguments, got 1");
  CHECK_ERROR(layer("nn.SpatialConvolution(3, 16, 5)"), 2, 11,
              "nn.SpatialConvolution expects 4 to 8 arguments");
  CHECK_ERROR(layer("nn.SpatialMaxPooling(2, 2, 2, 2, 0, 0, 1)"), 2, 11,
              "nn.SpatialMaxPooling expects 2 to 6 arguments");
  CHECK_ERROR(layer("nn.View()"), 2, 11, "nn.View expects 1 to 4 arguments");
  CHECK_ERROR(layer("nn.Linear('10', 5)"), 2, 11,
              "nn.Linear argument 1 (inputSize) must be a number, got string "
              "'10'");
  CHECK_ERROR(layer("nn.Linear(10, nil)"), 2, 11,
              "argument 2 (outputSize) must be a number, got nil");
  CHECK_ERROR(layer("nn.Linear(10, -5)"), 2, 11,
              "argument 2 (outputSize) must be a positive integer, got -5");
  CHECK_ERROR(layer("nn.Linear(1e12, 10)"), 2, 11, "must be a positive integer, got 1000000000000");
  CHECK_ERROR(layer("nn.Linear(2^31, 10)"), 2, 11, "got 2147483648");
  CHECK_ERROR(layer("nn.Linear(1e400, 10)"), 2, 11, "got inf");
  CHECK_ERROR(layer("nn.Linear(1/0, 10)"), 2, 11, "got inf");
  CHECK_ERROR(layer("nn.Linear(0/0, 10)"), 2, 11, "got nan");
  CHECK_ERROR(layer("nn.Linear(3.5, 10)"), 2, 11, "got 3.5");
  CHECK_ERROR(layer("nn.Linear(0, 10)"), 2, 11, "got 0");
  CHECK_ERROR(layer("nn.Linear(3, 10, false)"), 2, 11,
              "nn.Linear without bias (argument 3 false) is not supported");
  CHECK_ERROR(layer("nn.Linear(3, 10, 1)"), 2, 11, "nn.Linear argument 3 must be a boolean, got 1");
  CHECK_ERROR(layer("nn.BatchNormalization()"), 2, 11,
              "nn.BatchNormalization expects 1 to 4 arguments (nOutput, [eps, momentum, affine])");
  CHECK_ERROR(layer("nn.SpatialBatchNormalization(16, 0)"), 2, 11,
              "nn.SpatialBatchNormalization argument 2 (eps) must be positive, got 0");
  CHECK_ERROR(layer("nn.BatchNormalization(16, 1e-5, 2)"), 2, 11,
              "nn.BatchNormalization argument 3 (momentum) must be in [0, 1], got 2");
  CHECK_ERROR(layer("nn.BatchNormalization(16, nil, nil, 1)"), 2, 11,
              "nn.BatchNormalization argument 4 (affine) must be a boolean, got 1");
  CHECK_ERROR(layer("nn.Dropout(1.5)"), 2, 11,
              "nn.Dropout argument 1 (p) must be in [0, 1), got 1.5");
  CHECK_ERROR(layer("nn.Dropout(1)"), 2, 11, "got 1");
  CHECK_ERROR(layer("nn.View(-1)"), 2, 11, "nn.View argument 1 must be a positive integer, got -1");
  CHECK_ERROR(layer("nn.View(-1, 3, -1)"), 2, 11,
              "nn.View argument 3 must be a positive integer, got -1");
  CHECK_ERROR(layer("nn.Reshape(1, 2, 3, 4, 5)"), 2, 11, "nn.Reshape expects 1 to 4 arguments");
  CHECK_ERROR(layer("nn.SpatialConvolution(3, 16, 5, 5, 0)"), 2, 11,
              "argument 5 (dW) must be a positive integer, got 0");
  CHECK_ERROR(layer("nn.SpatialConvolution(3, 16, 5, 5, 1, 1, -1)"), 2, 11,
              "argument 7 (padW) must be a non-negative integer, got -1");
  CHECK_ERROR(layer("5"), 2, 1, ":add() expects a module, got 5");
  CHECK_ERROR(layer("nn.MSECriterion()"), 2, 1,
              ":add() expects a module, got criterion nn.MSECriterion()");
  CHECK_ERROR(kModel + "model:add()\n", 2, 1, ":add() expects a module, got nil");
  CHECK_ERROR(kModel + "m = nn.Linear(1, 2):add(nn.ReLU())\n", 2, 1,
              "attempt to call method 'add' (a nil value)");
}

TEST_CASE("syntax errors name the token", "[model_file]") {
  CHECK_ERROR("model = nn.Sequential(\n", 2, 1, "unexpected symbol near '<eof>'");
  CHECK_ERROR("model = = 1\n", 1, 1, "unexpected symbol near '='"); // '=' twice: no column
  CHECK_ERROR("model nn.Sequential()\n", 1, 7, "'=' expected near 'nn'");
  CHECK_ERROR("x = {1, 2\ny = 3\n", 2, 1, "'}' expected (to close '{' at line 1) near 'y'");
  CHECK_ERROR("x = 'abc\ny = 1\n", 1, 5, "unfinished string near ''abc'");
  CHECK_ERROR("x = '\\300'\n", 1, 1, "escape sequence too large");
  CHECK_ERROR("x = 1\n--[[ never\nclosed\n", 4, 1, "unfinished long comment near '<eof>'");
  CHECK_ERROR("x = [[abc\n", 2, 1, "unfinished long string near '<eof>'");
  CHECK_ERROR("x = 3x\n", 1, 5, "malformed number near '3x'");
  CHECK_ERROR("x = 1.2.3\n", 1, 5, "malformed number near '1.2.3'");
  CHECK_ERROR("x = 1\ny = \x01\n", 2, 1, "unexpected symbol near 'char(1)'");
  CHECK_ERROR("x = 1 @ 2\n", 1, 7, "unexpected symbol near '@'");
  CHECK_ERROR("x = \xff\xfe\n", 1, 5, "unexpected symbol near '\\xff'");
  CHECK_ERROR("x = 1\r\ny = $\r\n", 2, 5, "unexpected symbol near '$'");
  CHECK_ERROR("end\n", 1, 1, "'<eof>' expected near 'end'");
  CHECK_ERROR("5 = x\n", 1, 1, "unexpected symbol near '5'");
  CHECK_ERROR("x = 7 // 2\n", 1, 1, "unexpected symbol near '/'"); // Lua 5.1 has no '//'
  CHECK_ERROR("goto done\n", 1, 6, "'=' expected near 'done'");    // nor goto
  CHECK_ERROR("local 5 = 1\n", 1, 7, "'<name>' expected near '5'");
  // However long the file's name, which Lua cuts in its messages.
  for (size_t n : {10, 60, 75, 200}) {
    std::string file = std::string(n, 'd') + ".model";
    auto r = parseModel("x = 1\ny = @\n", file);
    REQUIRE(!r);
    CHECK(r.diag().str() == file + ":2:5: error: unexpected symbol near '@'");
  }
  // A token's text in the message is quoted and cut, so a message stays one line.
  Diag d = parseError("x = 1 [[first\nsecond]]\n");
  CHECK(d.message.find('\n') == std::string::npos);
  d = parseError("s = 'x'\nt = 1 [[" + std::string(100000, 'a') + "]]\n");
  CHECK(d.line == 2);
  CHECK_THAT(d.message, Catch::StartsWith("unexpected symbol near '[[aaaa"));
  CHECK(d.message.size() < 200);
}

TEST_CASE("hostile input is rejected quickly and without crashing", "[model_file]") {
  SECTION("deep nesting") {
    CHECK_ERROR("x = " + std::string(100000, '('), 1, 1, "chunk has too many syntax levels");
    CHECK_ERROR("x = " + std::string(100000, '{'), 1, 1, "chunk has too many syntax levels");
    std::string pow = "x = 2";
    for (int i = 0; i < 100000; ++i)
      pow += "^2";
    CHECK_ERROR(pow, 1, 1, "chunk has too many syntax levels");
    std::string ok = "model = nn.Sequential()\nx = " + std::string(100, '(') + "1" +
                     std::string(100, ')') + "\n";
    parseOk(ok);
  }
  SECTION("a 10 MB line is linear") {
    std::string line = "x = 1";
    line.reserve(10 << 20);
    while (line.size() < (10 << 20))
      line += "+1";
    line += " @";
    auto start = std::chrono::steady_clock::now();
    Diag d = parseError(line);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(d.line == 1);
    CHECK(d.col == int(line.size()));
    CHECK_THAT(d.message, Catch::Contains("unexpected symbol near '@'"));
    CHECK(seconds < 10);
  }
  SECTION("exponential growth is capped") {
    // A container holding itself, and a tree that doubles 40 times.
    std::string seq = "model = nn.Sequential():add(nn.ReLU())\nmodel:add(model)\n";
    CHECK_THAT(parseError(seq).message, Catch::Contains("modules nested too deep"));
    std::string doubling = "model = nn.Sequential():add(nn.ReLU())\n"
                           "for i = 1, 40 do model = nn.Sequential():add(model):add(model) end\n";
    CHECK_THAT(parseError(doubling).message, Catch::Contains("too many modules"));

    std::string deep = "model = nn.Sequential()\n";
    for (int i = 0; i < 200; ++i)
      deep += "model = nn.Sequential():add(model)\n";
    CHECK_THAT(parseError(deep).message, Catch::Contains("modules nested too deep"));

    frontend::LuaLimits small;
    small.memoryBytes = 64 << 20;
    auto r = parseModel("s = 'abcdefghijklmnop'\nfor i = 1, 40 do s = s .. s end\n", "test.model",
                        small);
    REQUIRE(!r);
    CHECK_THAT(r.diag().message, Catch::Contains("used more than 64 MiB of memory"));
  }
  SECTION("random bytes") {
    std::mt19937 rng(1234);
    const std::string alphabet = "()[]{}=.,:;'\"-+*/^%#<>~ \n\t\\0123456789exn"
                                 "model nn.Linear Sequential require local";
    for (int i = 0; i < 2000; ++i) {
      std::string text(size_t(rng() % 200), ' ');
      for (char &c : text)
        c = i % 2 ? char(rng() & 0xff) : alphabet[rng() % alphabet.size()];
      auto r = parseModel(kReference + text, "fuzz.model");
      if (!r) {
        CHECK(r.diag().line >= 1);
        CHECK(r.diag().col >= 1);
        CHECK(!r.diag().message.empty());
        CHECK(r.diag().message.find('\n') == std::string::npos);
      }
    }
  }
}

TEST_CASE("loading model files from disk", "[model_file]") {
  namespace fs = std::filesystem;
  fs::path dir =
      fs::temp_directory_path() / fmt::format("graphc_model_test_{}", std::random_device()());
  fs::create_directories(dir);
  std::string path = (dir / "mlp.model").string();
  std::ofstream(path) << kReference;
  auto ok = loadModel(path);
  REQUIRE(ok);
  CHECK(ok->file == path);
  CHECK(ok->model.children.size() == 7);

  std::ofstream(path) << "model = nn.Sequential()\nfor";
  auto bad = loadModel(path);
  REQUIRE(!bad);
  CHECK(bad.diag().str() == path + ":2:1: error: '<name>' expected near '<eof>'");

  auto missing = loadModel((dir / "missing.model").string());
  REQUIRE(!missing);
  CHECK(missing.diag().line == 0);
  CHECK_THAT(
      missing.diag().message,
      Catch::StartsWith("cannot open " + (dir / "missing.model").string() + ": No such file"));

  auto directory = loadModel(dir.string());
  REQUIRE(!directory);
  CHECK_THAT(directory.diag().message, Catch::Contains("is a directory"));
  fs::remove_all(dir);
}
