// tests/cpu_backend_test.cpp - the LLVM CPU backend against the reference
// interpreter: every op (forward and gradient) on fresh random inputs, and
// whole training steps of several models, in float32 to 1e-4; and the same
// steps at 1, 2 and 3 threads, bit for bit.
#include "Isas.h"
#include "JitRunner.h"
#include "OpCases.h"
#include "TestUtil.h"
#include "codegen/KernelPlan.h"
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "ir/Printer.h"
#include "passes/Autodiff.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <map>
#include <regex>

using namespace graphc;
using namespace graphc::ir;

namespace {

void compareOnCpu(const Graph &forward, const Bindings &in, int64_t batch, const std::string &isa);

using test::runnableIsas;

/// Runs fused graph `g` on the CPU backend, under every ISA, and in the
/// interpreter; compares every output.
void compareOnCpu(const Graph &forward, const Bindings &in, int64_t batch) {
  for (const std::string &isa : runnableIsas()) {
    INFO("isa " << isa);
    compareOnCpu(forward, in, batch, isa);
  }
}

void compareOnCpu(const Graph &forward, const Bindings &in, int64_t batch, const std::string &isa) {
  Graph fused = passes::fuse(passes::canonicalize(forward)).graph;
  codegen::cpu::Program p;
  p.graph = fused;
  p.plan = passes::planMemory(fused, batch);
  test::JitRunner runner(2);
  REQUIRE(bool(runner.compile({&p}, {"t_"}, isa)));
  REQUIRE(runner.isa().name == isa);

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
    CHECK(test::maxElementError(got, want->at(o.name).data) <= 1e-4);
  }
}

Type f32(Shape s) { return {DType::F32, std::move(s)}; }

/// Ends `g` with the loss sum(y * t), t a new input "t" of y's type, and
/// outputs "y" and the gradients "gx", "gw" and "gb" of x, w and the bias.
void addConvLoss(Graph &g, ValueId y, ValueId x, ValueId w, ValueId bias) {
  ValueId t = g.input("t", g.type(y));
  ValueId loss = g.add(Op::ReduceSum, {g.add(Op::Mul, {y, t})}, {{"axes", std::vector<int64_t>{}}});
  auto grads = passes::gradients(g, loss, {x, w, bias});
  g.addOutput("y", y);
  g.addOutput("gx", grads[0]);
  g.addOutput("gw", grads[1]);
  g.addOutput("gb", grads[2]);
}

} // namespace

TEST_CASE("every op and its gradient on the CPU backend match the interpreter", "[cpu]") {
  int seed = 0;
  for (const test::OpCase &c : test::everyOpCase())
    for (int64_t batch : {1, 5, 129, 257}) {
      // The matrix products also past the GEMM driver's row blocks.
      if (batch > 5 && std::string(c.name).rfind("matmul", 0) != 0)
        continue;
      INFO(c.name << " batch " << batch);
      Graph g = test::opCaseGraph(c);
      std::mt19937 rng(static_cast<uint32_t>(++seed));
      compareOnCpu(g, test::opCaseInputs(c, g, batch, rng), batch);
    }
}

TEST_CASE("convolutions and their gradients on the packed GEMM match the interpreter",
          "[cpu][conv]") {
  // relu(conv(x, w) + b) and the gradients of sum(y * t) for x, w and b:
  // the forward with its bias and ReLU epilogue, the input gradient and the
  // weight gradient, all three through grt_conv's implicit GEMM, at shapes
  // past its edges: output channels off the tile (mr 8, 6, 4), pixels per
  // image fewer than a panel (nr 32, 16, 8), panels across images, depths
  // past one KC block (256: C*kh*kw forward, O for the input gradient, the
  // pixels for the weight gradient), columns past one block (256), strides
  // that skip input pixels, padding, one image and more images than the
  // weight gradient's chunks (8).
  struct Geometry {
    const char *name;
    int64_t c, h, w, o, kh, kw, sh, sw, ph, pw;
    std::vector<int64_t> batches;
  };
  const std::vector<Geometry> cases{
      {"3x3 pad 1", 3, 7, 7, 5, 3, 3, 1, 1, 1, 1, {1, 5}},
      {"5x5, O off the tile, odd H and W", 2, 9, 11, 17, 5, 5, 1, 1, 0, 0, {1, 3}},
      {"1x1", 19, 5, 5, 3, 1, 1, 1, 1, 0, 0, {2}},
      {"3x3 stride 2 pad 1", 4, 9, 8, 9, 3, 3, 2, 2, 1, 1, {1, 3}},
      {"3x2 stride 2x1 pad 0x2", 3, 8, 5, 6, 3, 2, 2, 1, 0, 2, {2}},
      {"2x2 stride 3: pixels no window reads", 2, 8, 7, 4, 2, 2, 3, 3, 0, 0, {3}},
      {"one output pixel per image", 7, 3, 3, 13, 3, 3, 1, 1, 0, 0, {1, 5}},
      {"deep: K past KC, columns past a task", 32, 12, 12, 40, 3, 3, 1, 1, 1, 1, {3, 9}},
      {"O past KC: the input gradient's depth", 3, 5, 4, 300, 3, 3, 1, 1, 1, 1, {2}},
      {"pixels past a column block: the input gradient's", 2, 19, 19, 3, 3, 3, 1, 1, 0, 0, {2}},
      // Whole panels of the last output row, their windows one row past the
      // image: the packing must test the padding there.
      {"rows padded only, wide rows", 2, 6, 40, 3, 3, 3, 1, 1, 1, 0, {2}},
  };
  int seed = 100;
  for (const Geometry &c : cases)
    for (int64_t batch : c.batches) {
      INFO(c.name << " batch " << batch);
      Graph g;
      ValueId x = g.input("x", f32({kBatch, c.c, c.h, c.w}));
      ValueId w = g.input("w", f32({c.o, c.c, c.kh, c.kw}));
      ValueId bias = g.input("b", f32({c.o}));
      ValueId conv = g.add(Op::Conv2d, {x, w},
                           {{"stride", std::vector<int64_t>{c.sh, c.sw}},
                            {"pad", std::vector<int64_t>{c.ph, c.pw}}});
      ValueId b3 = g.add(Op::Reshape, {bias}, {{"shape", Shape{c.o, 1, 1}}});
      ValueId y = g.add(Op::Relu, {g.add(Op::Add, {conv, b3})});
      addConvLoss(g, y, x, w, bias);
      // All three run as implicit GEMMs, the forward with its epilogue.
      Graph fused = passes::fuse(passes::canonicalize(g)).graph;
      int convs = 0, withEpilogue = 0;
      for (const codegen::KernelPlan &k : codegen::planKernels(fused, codegen::storedValues(fused)))
        if (k.conv >= 0) {
          ++convs;
          withEpilogue += !k.epilogue.empty();
        }
      CHECK(convs == 3);
      CHECK(withEpilogue == 1);
      std::mt19937 rng(static_cast<uint32_t>(++seed));
      Bindings b{{"x", test::randomTensor(concrete(g.type(x).shape, batch), rng)},
                 {"w", test::randomTensor(concrete(g.type(w).shape, batch), rng)},
                 {"b", test::randomTensor({c.o}, rng)},
                 {"t", test::randomTensor(concrete(g.type(y).shape, batch), rng)}};
      compareOnCpu(g, b, batch);
    }
}

TEST_CASE("a max pool whose windows tile its planes runs in the chain that makes its input, its "
          "gradient in the chain of sums that reads it, matching the interpreter under every ISA",
          "[cpu][pool]") {
  // Two nets, each maxpool(relu(...)) and the gradients of sum(y * t):
  //  - conv(x, w) + b, ReLU in the convolution's epilogue (LeNet's layers):
  //    forward, the pool joins the convolution's group, which pools each
  //    band of rows it finishes (whole images where an image is smaller
  //    than a block of columns, else bands of whole windows' rows), also
  //    alone, as the predict step has it, where nothing else reads the
  //    pool's input; backward, the pool's gradient feeds the ReLU mask and
  //    the bias gradient's sum over the batch and the plane;
  //  - x s + b, a per-channel affine map (BatchNorm's normalisation, VGG's):
  //    forward, an elementwise chain makes the pool's input; backward, the
  //    mask feeds the sums of the gradients of s and b.
  // The affine net's inputs are whole numbers, so that windows hold equal
  // maxima. Windows that tile the planes, exactly or with rows and columns no window
  // reaches (floor mode), join those chains; overlapping or padded windows
  // stay kernels of their own.
  struct Pool {
    const char *name;
    int64_t h, w, k, stride, pad;
    bool fused;
  };
  const std::vector<Pool> cases{
      {"2x2 on 8x10", 8, 10, 2, 2, 0, true},
      {"2x2 on 7x9: the last row and column in no window", 7, 9, 2, 2, 0, true},
      {"3x3 stride 3 on 9x7", 9, 7, 3, 3, 0, true},
      {"2x2 on 30x34: bands of rows in each image", 30, 34, 2, 2, 0, true},
      {"2x2 on 28x28 (LeNet's): rows of windows 8, 4 and 2 at a time", 28, 28, 2, 2, 0, true},
      {"3x3 stride 3 on 31x29: bands, the last row and columns in no window", 31, 29, 3, 3, 0,
       true},
      {"3x3 stride 2: overlapping windows", 9, 9, 3, 2, 0, false},
      {"2x2 stride 2 pad 1", 8, 8, 2, 2, 1, false},
  };
  int seed = 300;
  for (const Pool &c : cases)
    for (bool affine : {false, true}) {
      INFO(c.name << (affine ? ", per-channel affine" : ", convolution"));
      // Inputs x, w, b and the pooled result.
      auto forward = [&](Graph &f) {
        ValueId x = f.input("x", f32({kBatch, 3, c.h, c.w}));
        ValueId w = f.input("w", affine ? f32({3, 1, 1}) : f32({4, 3, 3, 3}));
        ValueId bias = f.input("b", affine ? f32({3, 1, 1}) : f32({4}));
        ValueId pre;
        if (affine) {
          pre = f.add(Op::Add, {f.add(Op::Mul, {x, w}), bias});
        } else {
          ValueId conv = f.add(Op::Conv2d, {x, w}, {{"pad", std::vector<int64_t>{1, 1}}});
          pre = f.add(Op::Add, {conv, f.add(Op::Reshape, {bias}, {{"shape", Shape{4, 1, 1}}})});
        }
        return f.add(Op::MaxPool2d, {f.add(Op::Relu, {pre})},
                     {{"kernel", std::vector<int64_t>{c.k, c.k}},
                      {"stride", std::vector<int64_t>{c.stride, c.stride}},
                      {"pad", std::vector<int64_t>{c.pad, c.pad}}});
      };
      Graph g;
      const ValueId y = forward(g);
      const ValueId x = g.inputs()[0], w = g.inputs()[1], bias = g.inputs()[2];
      addConvLoss(g, y, x, w, bias);
      auto kindOf = [](const Graph &f, Op op) {
        std::vector<std::string> kinds;
        for (ValueId v = 0; v < f.size(); ++v)
          if (f.node(v).op == op)
            kinds.push_back(f.groups()[size_t(f.node(v).group)].kind);
        return kinds;
      };
      const Graph fused = passes::fuse(passes::canonicalize(g)).graph;
      using Kinds = std::vector<std::string>;
      CHECK(kindOf(fused, Op::MaxPool2d) == Kinds{!c.fused ? "maxpool2d"
                                                  : affine ? "elementwise_pool"
                                                           : "conv"});
      CHECK(kindOf(fused, Op::MaxPool2dGrad) ==
            Kinds{c.fused ? "elementwise_reduce" : "maxpool2d_grad"});
      // Off, as for the cuda target: each stays a kernel of its own.
      const Graph apart = passes::fuse(passes::canonicalize(g), {true, false}).graph;
      CHECK(kindOf(apart, Op::MaxPool2d) == Kinds{"maxpool2d"});
      CHECK(kindOf(apart, Op::MaxPool2dGrad) == Kinds{"maxpool2d_grad"});
      for (int64_t batch : {1, 5}) {
        INFO("batch " << batch);
        std::mt19937 rng(static_cast<uint32_t>(++seed));
        Bindings b{{"x", test::randomTensor(concrete(g.type(x).shape, batch), rng)},
                   {"w", test::randomTensor(concrete(g.type(w).shape, batch), rng)},
                   {"b", test::randomTensor(concrete(g.type(bias).shape, batch), rng)},
                   {"t", test::randomTensor(concrete(g.type(y).shape, batch), rng)}};
        if (affine) {
          // Whole numbers: windows with equal maxima, past the ReLU, where
          // the gradient must go to the first one, as Torch7's does.
          for (double &v : b.at("x").data)
            v = std::round(v * 3);
          compareOnCpu(g, b, batch);
          continue;
        }
        compareOnCpu(g, b, batch);
        Graph predict; // the forward alone: only the pool reads its input
        predict.addOutput("y", forward(predict));
        compareOnCpu(predict, b, batch);
      }
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
  ValueId offset = g.input("offset", {DType::I32, {}}); // a share of a larger batch
  g.addOutput("dropout_at", g.add(Op::RandomMask, {seed, offset},
                                  {{"p", 0.3}, {"salt", int64_t(2)}, {"shape", Shape{kBatch, 7}}}));
  g.addOutput("greater", g.add(Op::Greater, {x, g.constant(0.1)}));
  // A pack with a constant part (a gradient the loss does not reach): the
  // constant has no memory of its own; its place in the pack is filled.
  ValueId column = g.add(Op::ReduceSum, {x}, {{"axes", std::vector<int64_t>{0}}});
  g.addOutput("pack", g.add(Op::FlatPack,
                            {g.add(Op::Broadcast, {g.constant(0.5)}, {{"shape", Shape{3}}}), column,
                             g.add(Op::Broadcast, {g.constant(0.0)}, {{"shape", Shape{2}}})},
                            {{"offsets", std::vector<int64_t>{0, 3, 10}}, {"size", int64_t(12)}}));
  for (int64_t batch : {1, 9}) {
    std::mt19937 rng(static_cast<uint32_t>(batch));
    Bindings b{{"x", test::randomTensor({batch, 7}, rng)},
               {"labels", test::randomLabels(batch, 7, rng)},
               {"seed", Tensor({}, 123456789.0)},
               {"offset", Tensor({}, 37.0)}};
    compareOnCpu(g, b, batch);
  }
}

TEST_CASE("whole training steps on the CPU backend match the interpreter, under every ISA",
          "[cpu]") {
  // Batches on both sides of the GEMM driver's row blocks (126 and 128
  // rows), single samples, odd sizes and the largest the step takes; each
  // step starts from the same parameters and a zero optimizer state.
  // At a reduced size (under the sanitizers), the row-block edges only.
  const std::vector<int64_t> batches = test::sized<std::vector<int64_t>>(
      {1, 5, 127, 128, 129, 255, 256, 257, 1000}, {1, 5, 127, 129});
  for (auto &[name, spec] : test::coverageModels()) {
    INFO(name);
    driver::BuildOptions o;
    o.maxBatch = batches.back();
    o.seed = 3;
    o.target = "interp";
    auto ref = driver::build(spec, {1, 32, 32}, o);
    REQUIRE(bool(ref));
    const int64_t classes = (*ref)->info().classes, np = (*ref)->info().numParams;
    const std::vector<float> init((*ref)->params(), (*ref)->params() + np);
    auto reset = [&](runtime::Executable &e) {
      std::copy(init.begin(), init.end(), e.params());
      for (const std::string &slot : e.info().stateSlots)
        std::fill(e.state(slot), e.state(slot) + np, 0.0f);
      e.setStep(0);
    };
    struct Result {
      std::vector<float> x, out, pred, params;
      std::vector<int32_t> labels;
      float loss = 0;
    };
    std::vector<Result> want;
    std::mt19937 rng(5);
    for (int64_t n : batches) {
      Result r;
      auto x = test::randomTensor({n, 1, 32, 32}, rng, 0, 1);
      auto lab = test::randomLabels(n, classes, rng);
      r.x.assign(x.data.begin(), x.data.end());
      r.labels.assign(lab.data.begin(), lab.data.end());
      r.out.resize(size_t(n * classes));
      r.pred.resize(size_t(n * classes));
      reset(**ref);
      REQUIRE(bool((*ref)->trainStep(r.x.data(), r.labels.data(), n, &r.loss, r.out.data())));
      REQUIRE(bool((*ref)->predict(r.x.data(), n, r.pred.data())));
      r.params.assign((*ref)->params(), (*ref)->params() + np);
      want.push_back(std::move(r));
    }
    for (const std::string &isa : runnableIsas()) {
      INFO("isa " << isa);
      o.target = "cpu";
      o.cpu = isa;
      auto cpu = driver::build(spec, {1, 32, 32}, o);
      INFO((cpu ? "" : cpu.diag().str()));
      REQUIRE(bool(cpu));
      CHECK((*cpu)->describe().rfind("cpu (" + isa + "), code compiled in ", 0) == 0);
      for (size_t b = 0; b < batches.size(); ++b) {
        const int64_t n = batches[b];
        const Result &r = want[b];
        INFO("batch " << n);
        reset(**cpu);
        float loss = 0;
        std::vector<float> out(size_t(n * classes)), pred(size_t(n * classes));
        REQUIRE(bool((*cpu)->trainStep(r.x.data(), r.labels.data(), n, &loss, out.data())));
        CHECK(std::abs(loss - r.loss) <= 1e-4 * std::max(1.0f, std::abs(r.loss)));
        CHECK(test::maxElementError({out.begin(), out.end()}, {r.out.begin(), r.out.end()}) <=
              1e-4);
        // Adagrad's and Adam's first update is lr * sign(g): a gradient
        // element within rounding of zero may flip between float and
        // double and move its parameter by 2 lr, with no bug present. A
        // handful may; a bug moves thousands.
        int64_t differ = 0;
        for (int64_t i = 0; i < np; ++i) {
          double got = (*cpu)->params()[i], ref = r.params[size_t(i)];
          differ += !(std::abs(got - ref) <= 1e-6 + 1e-4 * std::abs(ref));
        }
        INFO(differ << " of " << np << " parameters differ");
        CHECK(differ <= std::max<int64_t>(2, np / 20000));
        REQUIRE(bool((*cpu)->predict(r.x.data(), n, pred.data())));
        CHECK(test::maxElementError({pred.begin(), pred.end()}, {r.pred.begin(), r.pred.end()}) <=
              1e-4);
      }
    }
  }
}

TEST_CASE("whole training steps give the same bits at 1, 2 and 3 threads", "[cpu][threads]") {
  // Consecutive steps (optimizer state and step counter carried) on batches
  // across the GEMM's row blocks, then an evaluation. Tasks go to threads in
  // any order, and 3 threads oversubscribe a 2-core machine: the work split
  // must not depend on the thread count, nor on who runs which task.
  const std::vector<int64_t> batches{257, 129, 1};
  for (auto &[name, spec] : test::coverageModels()) {
    INFO(name);
    struct Run {
      std::vector<float> losses, outs, pred, params;
      std::map<std::string, std::vector<float>> state;
      int64_t step = 0;
    };
    std::vector<Run> runs;
    for (int threads : {1, 2, 3}) {
      driver::BuildOptions o;
      o.target = "cpu";
      o.threads = threads;
      o.maxBatch = 257;
      o.seed = 3;
      auto cpu = driver::build(spec, {1, 32, 32}, o);
      INFO((cpu ? "" : cpu.diag().str()));
      REQUIRE(bool(cpu));
      const int64_t classes = (*cpu)->info().classes, np = (*cpu)->info().numParams;
      std::mt19937 rng(11); // the same batches at every thread count
      Run r;
      std::vector<float> x;
      for (int64_t n : batches) {
        auto xt = test::randomTensor({n, 1, 32, 32}, rng, 0, 1);
        auto lt = test::randomLabels(n, classes, rng);
        x.assign(xt.data.begin(), xt.data.end());
        std::vector<int32_t> labels(lt.data.begin(), lt.data.end());
        std::vector<float> out(size_t(n * classes));
        float loss = 0;
        REQUIRE(bool((*cpu)->trainStep(x.data(), labels.data(), n, &loss, out.data())));
        r.losses.push_back(loss);
        r.outs.insert(r.outs.end(), out.begin(), out.end());
      }
      r.pred.resize(size_t(batches.back() * classes));
      REQUIRE(bool((*cpu)->predict(x.data(), batches.back(), r.pred.data())));
      r.params.assign((*cpu)->params(), (*cpu)->params() + np);
      for (const std::string &slot : (*cpu)->info().stateSlots)
        r.state[slot].assign((*cpu)->state(slot), (*cpu)->state(slot) + np);
      r.step = (*cpu)->step();
      runs.push_back(std::move(r));
    }
    auto differing = [](const std::vector<float> &a, const std::vector<float> &b) {
      if (a.size() != b.size())
        return int64_t(-1);
      int64_t n = 0;
      for (size_t i = 0; i < a.size(); ++i)
        n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
      return n;
    };
    for (size_t t = 1; t < runs.size(); ++t) {
      INFO(t + 1 << " threads against 1");
      CHECK(differing(runs[t].losses, runs[0].losses) == 0);
      CHECK(differing(runs[t].outs, runs[0].outs) == 0);
      CHECK(differing(runs[t].pred, runs[0].pred) == 0);
      CHECK(differing(runs[t].params, runs[0].params) == 0);
      for (auto &[slot, buf] : runs[0].state) {
        INFO("optimizer state " << slot);
        CHECK(differing(runs[t].state[slot], buf) == 0);
      }
      CHECK(runs[t].step == runs[0].step);
    }
  }
}

TEST_CASE("GRAPHC_CPU and --cpu choose the ISA; one this CPU cannot execute is a clear error",
          "[cpu]") {
  auto unknown = codegen::cpu::chooseVectorTarget("sse9");
  REQUIRE(!unknown);
  CHECK_THAT(unknown.diag().message, Catch::Contains("unknown vector ISA 'sse9'") &&
                                         Catch::Contains("avx512, avx2, generic"));
  for (const auto &t : codegen::cpu::vectorTargets()) {
    auto chosen = codegen::cpu::chooseVectorTarget(t.name);
    CHECK(bool(chosen) == codegen::cpu::hostRuns(t));
    if (!chosen)
      CHECK_THAT(chosen.diag().message, Catch::Contains("this CPU cannot execute " + t.name));
  }
  const char *old = std::getenv("GRAPHC_CPU");
  std::string saved = old ? old : "";
  ::setenv("GRAPHC_CPU", "generic", 1);
  auto env = codegen::cpu::chooseVectorTarget();
  REQUIRE(bool(env));
  CHECK(env->name == "generic");
  ::setenv("GRAPHC_CPU", "avx3", 1);
  auto bad = codegen::cpu::chooseVectorTarget();
  REQUIRE(!bad);
  CHECK_THAT(bad.diag().message, Catch::StartsWith("GRAPHC_CPU=avx3: unknown vector ISA"));
  if (old)
    ::setenv("GRAPHC_CPU", saved.c_str(), 1);
  else
    ::unsetenv("GRAPHC_CPU");
}

namespace {

/// The optimised LLVM IR of kernel group `group` of `model`'s step under `isa`.
std::string stepKernelIr(const runtime::CompiledModel &model, int group, const std::string &isa) {
  driver::BuildOptions o;
  o.cpu = isa;
  auto text = driver::emitCpuText(model, o, driver::CpuText::LlvmIr);
  REQUIRE(bool(text));
  const size_t at = text->find(fmt::format("define void @step_k{}(", group));
  REQUIRE(at != std::string::npos);
  return text->substr(at, text->find("\n}\n", at) - at);
}

const std::regex vectorStore(R"(store <(4|8|16) x float>)");

} // namespace

TEST_CASE("every optimizer's in-place update is vectorised with no run-time overlap checks, "
          "under every ISA",
          "[cpu]") {
  // The update writes the parameters and the optimizer state over the very
  // buffers it reads. Unannotated, LLVM guards its vector loop with checks
  // that the buffers do not overlap; they always do, and the update ran
  // scalar (the seed MLP's: 2.0 ms a step, 0.9 ms vectorised). The kernel's
  // loop is declared free of loop-carried dependences instead: its
  // optimised code stores whole vectors and compares no pointers.
  // The step count beside it is computed once per call, not per element:
  // stored under `element == 0` inside the loop, it cost a vector compare
  // of the indices per vector and, under AVX-512, a masked scatter (Adagrad's
  // update on the seed MLP: 1.6-1.9 ms a step, 1.2 without, on AMD Zen 5).
  const std::regex pointerCompare(R"(icmp \w+ ptr)");
  const std::regex perElementStore(R"(icmp eq <\d+ x i64>|llvm\.masked\.scatter)");
  for (auto &[name, spec] : test::coverageModels()) {
    INFO(name);
    auto c = driver::compile(spec, {1, 32, 32});
    REQUIRE(bool(c));
    // The kernel that computes the new parameters (a BatchNorm model's
    // running statistics are packed in beside them).
    const ir::Graph &step = c->model.step;
    ir::ValueId params = step.output("params");
    REQUIRE(params >= 0);
    if (step.node(params).op == ir::Op::FlatPack)
      params = step.node(params).inputs[0];
    const int update = step.node(params).group;
    REQUIRE(update >= 0);
    for (const std::string &isa : runnableIsas()) {
      INFO("isa " << isa);
      const std::string body = stepKernelIr(c->model, update, isa);
      CHECK(std::regex_search(body, vectorStore));
      CHECK_FALSE(std::regex_search(body, pointerCompare));
      CHECK_FALSE(std::regex_search(body, perElementStore));
    }
  }
}

TEST_CASE("no kernel gathers or scatters its vectors, under every ISA", "[cpu]") {
  // Max pools and their gradients read and write windows at a stride; left
  // to its cost model, LLVM vectorised those loops with AVX-512 gathers and
  // scatters, which AMD's cores microcode and Intel's (after the Gather
  // Data Sampling fix) run slowly: LeNet's pool gradient took 6.4 ms a
  // step where scalar code takes 4.0 (Zen 5). The code is built to prefer
  // neither, so the vectoriser keeps such loops scalar or shuffles.
  const std::regex gatherScatter(R"(llvm\.masked\.(gather|scatter))");
  auto models = test::coverageModels();
  models.push_back({"batchnorm net", test::batchNormNet()});
  for (auto &[name, spec] : models) {
    INFO(name);
    auto c = driver::compile(spec, spec.input.value_or(ir::Shape{1, 32, 32}));
    REQUIRE(bool(c));
    for (const std::string &isa : runnableIsas()) {
      INFO("isa " << isa);
      driver::BuildOptions o;
      o.cpu = isa;
      auto text = driver::emitCpuText(c->model, o, driver::CpuText::LlvmIr);
      REQUIRE(bool(text));
      CHECK_FALSE(std::regex_search(*text, gatherScatter));
    }
  }
}

TEST_CASE("BatchNorm's fused sums compute their chains as vectors, under every ISA", "[cpu]") {
  // A group of sums with their chain adds 32 (or 8) elements at a time,
  // lane by lane; LLVM unrolled that short loop first, into scalar code it
  // could not vectorise, because the chain's stores might overlap its
  // loads. The loop is declared parallel and kept whole: its optimised
  // code stores whole vectors (the stored chain values, the lanes).
  auto c = driver::compile(test::batchNormNet(), {3, 10, 10});
  REQUIRE(bool(c));
  const auto &groups = c->model.step.groups();
  int checked = 0;
  for (size_t k = 0; k < groups.size(); ++k) {
    if (groups[k].kind != "elementwise_reduce")
      continue;
    INFO("group k" << k << ": " << groups[k].reason);
    for (const std::string &isa : runnableIsas()) {
      INFO("isa " << isa);
      CHECK(std::regex_search(stepKernelIr(c->model, int(k), isa), vectorStore));
    }
    ++checked;
  }
  CHECK(checked >= 4); // each BatchNorm's forward and backward sums
}

TEST_CASE("the CPU executable rejects bad batches instead of crashing", "[cpu]") {
  driver::BuildOptions o;
  o.maxBatch = 8;
  auto spec = test::coverageModels()[3].second;
  auto exe = driver::build(spec, {1, 32, 32}, o);
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

TEST_CASE("BatchNorm's sums run in one pass with their chains, the bits of the unfused sums, "
          "matching the interpreter under every ISA",
          "[cpu]") {
  const nn::ModelSpec spec = test::batchNormNet();
  const ir::Shape sample = *spec.input;

  // Forward, each variance's square is summed in the pass that makes it;
  // backward, each BatchNorm's three sums share one pass.
  auto c = driver::compile(spec, sample);
  REQUIRE(bool(c));
  const std::string ir = print(c->model.step);
  INFO(ir);
  CHECK(ir.find("elementwise_reduce \"elementwise chain of 2 ops over [N,4,10,10] with 1 sum ") !=
        std::string::npos);
  CHECK(ir.find("elementwise_reduce \"elementwise chain of 6 ops over [N,6,5,5] with 3 sums") !=
        std::string::npos);
  passes::PipelineOptions off;
  off.fuseReductions = false;
  auto plain = driver::compile(spec, sample, off);
  REQUIRE(bool(plain));
  CHECK(print(plain->model.step).find("elementwise_reduce") == std::string::npos);

  driver::BuildOptions o;
  o.maxBatch = 16;
  o.seed = 4;
  o.target = "interp";
  auto ref = driver::build(spec, sample, o);
  REQUIRE(bool(ref));
  const int64_t np = (*ref)->info().numParams;
  // Consecutive steps: momentum and the running statistics carry over.
  std::mt19937 rng(9);
  std::vector<std::pair<ir::Tensor, ir::Tensor>> batches;
  for (int64_t n : {7, 1, 16})
    batches.emplace_back(test::randomTensor({n, 3, 10, 10}, rng, -1, 2),
                         test::randomLabels(n, 10, rng));
  std::vector<float> wantLoss;
  for (auto &[x, l] : batches) {
    std::vector<float> xs(x.data.begin(), x.data.end());
    std::vector<int32_t> ls(l.data.begin(), l.data.end());
    float loss = 0;
    REQUIRE(bool((*ref)->trainStep(xs.data(), ls.data(), int64_t(ls.size()), &loss, nullptr)));
    wantLoss.push_back(loss);
  }
  const std::vector<float> want((*ref)->params(), (*ref)->params() + np);
  for (const std::string &isa : runnableIsas()) {
    INFO("isa " << isa);
    std::vector<std::vector<float>> got;
    for (bool fused : {true, false}) {
      INFO((fused ? "sums fused" : "sums apart"));
      o.target = "cpu";
      o.cpu = isa;
      o.fuseReductions = fused;
      auto cpu = driver::build(spec, sample, o);
      REQUIRE(bool(cpu));
      for (size_t s = 0; s < batches.size(); ++s) {
        auto &[x, l] = batches[s];
        std::vector<float> xs(x.data.begin(), x.data.end());
        std::vector<int32_t> ls(l.data.begin(), l.data.end());
        float loss = 0;
        REQUIRE(bool((*cpu)->trainStep(xs.data(), ls.data(), int64_t(ls.size()), &loss, nullptr)));
        CHECK(std::abs(loss - wantLoss[s]) <= 1e-4 * std::max(1.0f, std::abs(wantLoss[s])));
      }
      got.emplace_back((*cpu)->params(), (*cpu)->params() + np);
      CHECK(test::maxElementError(got.back().data(), want.data(), size_t(np)) <= 1e-4);
    }
    CHECK(got[0] == got[1]);
  }
}
