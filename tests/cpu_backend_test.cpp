// tests/cpu_backend_test.cpp - the LLVM CPU backend against the reference
// interpreter: every op (forward and gradient) on fresh random inputs, and
// whole training steps of several models, in float32 to 1e-4.
#include "TestUtil.h"
#include "codegen/cpu/Runner.h"
#include "ir/Printer.h"
#include "passes/Autodiff.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"
#include "runtime/Build.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace graphc;
using namespace graphc::ir;

namespace {

/// Runs fused graph `g` on the CPU backend and in the interpreter; compares
/// every output.
void compareOnCpu(const Graph &forward, const Bindings &in, int64_t batch) {
  Graph fused = passes::fuse(passes::canonicalize(forward)).graph;
  codegen::cpu::Program p;
  p.graph = fused;
  p.plan = passes::planMemory(fused, batch);
  codegen::cpu::Runner runner(2);
  REQUIRE(bool(runner.compile({&p}, {"t_"})));

  std::map<std::string, std::vector<float>> floats;
  std::map<std::string, std::vector<int32_t>> ints;
  std::map<std::string, void *> io;
  for (ValueId v : fused.inputs()) {
    std::string name = fused.node(v).attrs.s("name");
    const Tensor &t = in.at(name);
    if (fused.type(v).dtype == DType::I32) {
      ints[name].assign(t.data.begin(), t.data.end());
      io[name] = ints[name].data();
    } else {
      floats[name].assign(t.data.begin(), t.data.end());
      io[name] = floats[name].data();
    }
  }
  std::map<std::string, std::vector<float>> outs;
  for (const Output &o : fused.outputs()) {
    outs[o.name].assign(size_t(fused.type(o.value).numel(batch)), NAN);
    io["out:" + o.name] = outs[o.name].data();
  }
  runner.run(p, io, batch);

  auto want = run(forward, in);
  REQUIRE(bool(want));
  for (const Output &o : fused.outputs()) {
    std::vector<double> got(outs[o.name].begin(), outs[o.name].end());
    if (fused.type(o.value).dtype == DType::I32) {
      const int32_t *raw = reinterpret_cast<const int32_t *>(outs[o.name].data());
      got.assign(raw, raw + outs[o.name].size());
    }
    INFO("output " << o.name << "\n" << print(fused));
    CAPTURE(got, want->at(o.name).data);
    CHECK(test::relError(got, want->at(o.name).data) <= 1e-4);
  }
}

Type f32(Shape s) { return {DType::F32, std::move(s)}; }

struct OpCase {
  const char *name;
  std::vector<Type> args;
  std::function<ValueId(Graph &, const std::vector<ValueId> &)> build;
  double lo = -1, hi = 1;
};

} // namespace

TEST_CASE("every op and its gradient on the CPU backend match the interpreter",
          "[cpu]") {
  const Type x{DType::F32, {kBatch, 6}};
  auto unary = [](Op op) {
    return [op](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0]}); };
  };
  auto binary = [](Op op) {
    return [op](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0], a[1]}); };
  };
  auto attrs = [](Op op, Attrs at) {
    return [op, at](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0]}, at); };
  };
  std::vector<OpCase> cases{
      {"add bias", {x, f32({6})}, binary(Op::Add)},
      {"sub column", {x, f32({kBatch, 1})}, binary(Op::Sub)},
      {"mul", {x, x}, binary(Op::Mul)},
      {"div", {x, x}, binary(Op::Div), 0.5, 2},
      {"max", {x, x}, binary(Op::Max)},
      {"min", {x, f32({})}, binary(Op::Min)},
      {"exp", {x}, unary(Op::Exp)},
      {"log", {x}, unary(Op::Log), 0.5, 2},
      {"sqrt", {x}, unary(Op::Sqrt), 0.5, 2},
      {"square", {x}, unary(Op::Square)},
      {"neg", {x}, unary(Op::Neg)},
      {"relu", {x}, unary(Op::Relu)},
      {"tanh", {x}, unary(Op::Tanh)},
      {"sigmoid", {x}, unary(Op::Sigmoid)},
      {"softmax", {x}, unary(Op::SoftMax)},
      {"log_softmax", {x}, unary(Op::LogSoftMax)},
      {"transpose", {f32({kBatch, 2, 3})}, attrs(Op::Transpose, {{"perm", std::vector<int64_t>{0, 2, 1}}})},
      {"broadcast", {f32({3, 1})}, attrs(Op::Broadcast, {{"shape", Shape{kBatch, 3, 4}}})},
      {"reduce_sum axes 0,2", {f32({kBatch, 3, 2})}, attrs(Op::ReduceSum, {{"axes", std::vector<int64_t>{0, 2}}})},
      {"reduce_mean all", {x}, attrs(Op::ReduceMean, {{"axes", std::vector<int64_t>{}}})},
      {"reduce_max rows", {x}, attrs(Op::ReduceMax, {{"axes", std::vector<int64_t>{1}}})},
      {"reduce_sum keepdims", {x}, attrs(Op::ReduceSum, {{"axes", std::vector<int64_t>{-1}}, {"keepdims", true}})},
      {"matmul", {x, f32({6, 5})}, binary(Op::MatMul)},
      {"matmul transB", {x, f32({5, 6})},
       [](Graph &g, const std::vector<ValueId> &a) { return g.add(Op::MatMul, {a[0], a[1]}, {{"transB", true}}); }},
      {"matmul transA over N", {x, f32({kBatch, 4})},
       [](Graph &g, const std::vector<ValueId> &a) { return g.add(Op::MatMul, {a[0], a[1]}, {{"transA", true}}); }},
      {"conv2d stride 2 pad 1", {f32({kBatch, 2, 5, 6}), f32({3, 2, 3, 2})},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Conv2d, {a[0], a[1]},
                      {{"stride", std::vector<int64_t>{2, 1}}, {"pad", std::vector<int64_t>{1, 1}}});
       }},
      {"maxpool2d 3x2 stride 2 pad 1", {f32({kBatch, 2, 5, 4})},
       attrs(Op::MaxPool2d, {{"kernel", std::vector<int64_t>{3, 2}},
                             {"stride", std::vector<int64_t>{2, 2}},
                             {"pad", std::vector<int64_t>{1, 1}}})},
  };
  int seed = 0;
  for (const OpCase &c : cases)
    for (int64_t batch : {1, 5}) {
      INFO(c.name << " batch " << batch);
      // The op, then the gradient of sum(op * w) for every operand: the
      // backward ops (conv and pooling gradients, masks) run too.
      Graph g;
      std::vector<ValueId> ins;
      for (size_t i = 0; i < c.args.size(); ++i)
        ins.push_back(g.input("a" + std::to_string(i), c.args[i]));
      ValueId y = c.build(g, ins);
      ValueId w = g.input("w", g.type(y));
      ValueId loss = g.add(Op::ReduceSum, {g.add(Op::Mul, {y, w})},
                           {{"axes", std::vector<int64_t>{}}});
      auto grads = passes::gradients(g, loss, ins);
      g.addOutput("y", y);
      g.addOutput("loss", loss);
      for (size_t i = 0; i < grads.size(); ++i)
        if (grads[i] >= 0)
          g.addOutput("g" + std::to_string(i), grads[i]);
      std::mt19937 rng(static_cast<uint32_t>(++seed));
      Bindings b;
      for (size_t i = 0; i < c.args.size(); ++i)
        b["a" + std::to_string(i)] =
            test::randomTensor(concrete(c.args[i].shape, batch), rng, c.lo, c.hi);
      b["w"] = test::randomTensor(concrete(g.type(y).shape, batch), rng);
      compareOnCpu(g, b, batch);
    }
}

TEST_CASE("non-differentiable ops on the CPU backend match the interpreter", "[cpu]") {
  Graph g;
  ValueId x = g.input("x", {DType::F32, {kBatch, 7}});
  ValueId labels = g.input("labels", {DType::I32, {kBatch}});
  ValueId seed = g.input("seed", {DType::I32, {}});
  g.addOutput("argmax", g.add(Op::ArgMax, {x}));
  g.addOutput("onehot", g.add(Op::OneHot, {labels}, {{"classes", int64_t(7)}}));
  g.addOutput("nll", g.add(Op::NllLoss, {g.add(Op::LogSoftMax, {x}), labels}));
  ValueId mask = g.add(Op::RandomMask, {seed},
                       {{"p", 0.3}, {"salt", int64_t(2)}, {"shape", Shape{kBatch, 7}}});
  g.addOutput("dropout", g.add(Op::Mul, {x, mask}));
  g.addOutput("greater", g.add(Op::Greater, {x, g.constant(0.1)}));
  for (int64_t batch : {1, 9}) {
    std::mt19937 rng(static_cast<uint32_t>(batch));
    Bindings b{{"x", test::randomTensor({batch, 7}, rng)},
               {"labels", test::randomLabels(batch, 7, rng)},
               {"seed", Tensor({}, 123456789.0)}};
    compareOnCpu(g, b, batch);
  }
}

TEST_CASE("whole training steps on the CPU backend match the interpreter", "[cpu]") {
  for (auto &[name, spec] : test::coverageModels()) {
    INFO(name);
    runtime::BuildOptions o;
    o.maxBatch = 16;
    o.seed = 3;
    o.target = "interp";
    auto ref = runtime::build(spec, {1, 32, 32}, o);
    REQUIRE(bool(ref));
    o.target = "cpu";
    auto cpu = runtime::build(spec, {1, 32, 32}, o);
    INFO((cpu ? "" : cpu.diag().str()));
    REQUIRE(bool(cpu));
    const int64_t classes = (*cpu)->info().classes, np = (*cpu)->info().numParams;
    std::mt19937 rng(5);
    for (int64_t n : {16, 1, 7}) { // a full batch, a single sample, a short batch
      auto x = test::randomTensor({n, 1, 32, 32}, rng, 0, 1);
      auto lab = test::randomLabels(n, classes, rng);
      std::vector<float> xf(x.data.begin(), x.data.end());
      std::vector<int32_t> lf(lab.data.begin(), lab.data.end());
      float lossRef = 0, lossCpu = 0;
      std::vector<float> outRef(size_t(n * classes)), outCpu(size_t(n * classes));
      REQUIRE(bool((*ref)->trainStep(xf.data(), lf.data(), n, &lossRef, outRef.data())));
      REQUIRE(bool((*cpu)->trainStep(xf.data(), lf.data(), n, &lossCpu, outCpu.data())));
      INFO("batch " << n);
      CHECK(std::abs(lossCpu - lossRef) <= 1e-4 * std::max(1.0f, std::abs(lossRef)));
      CHECK(test::relError({outCpu.begin(), outCpu.end()}, {outRef.begin(), outRef.end()}) <= 1e-4);
      std::vector<double> pr((*ref)->params(), (*ref)->params() + np);
      std::vector<double> pc((*cpu)->params(), (*cpu)->params() + np);
      CHECK(test::relError(pc, pr) <= 1e-4);
      std::vector<float> predRef(size_t(n * classes)), predCpu(size_t(n * classes));
      REQUIRE(bool((*ref)->predict(xf.data(), n, predRef.data())));
      REQUIRE(bool((*cpu)->predict(xf.data(), n, predCpu.data())));
      CHECK(test::relError({predCpu.begin(), predCpu.end()}, {predRef.begin(), predRef.end()}) <= 1e-4);
    }
  }
}

TEST_CASE("the CPU executable rejects bad batches instead of crashing", "[cpu]") {
  runtime::BuildOptions o;
  o.maxBatch = 8;
  auto spec = test::coverageModels()[3].second;
  auto exe = runtime::build(spec, {1, 32, 32}, o);
  REQUIRE(bool(exe));
  std::vector<float> x(9 * 1024, 0.5f), out(9 * 10);
  std::vector<int32_t> labels(9, 3);
  float loss;
  CHECK(!(*exe)->trainStep(x.data(), labels.data(), 9, &loss, nullptr));
  CHECK(!(*exe)->trainStep(x.data(), labels.data(), 0, &loss, nullptr));
  CHECK(!(*exe)->trainStep(nullptr, labels.data(), 2, &loss, nullptr));
  labels[1] = 10;
  auto bad = (*exe)->trainStep(x.data(), labels.data(), 2, &loss, nullptr);
  REQUIRE(!bad);
  CHECK_THAT(bad.diag().message, Catch::Contains("label 10"));
  CHECK((*exe)->step() == 0);
}
