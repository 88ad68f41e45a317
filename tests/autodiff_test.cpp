// tests/autodiff_test.cpp - every VJP rule against central finite differences
// in double precision, through the reference interpreter.
#include "TestUtil.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Autodiff.h"

#include <catch2/catch.hpp>

#include <functional>
#include <set>

using namespace graphc;
using namespace graphc::ir;

namespace {

struct Arg {
  Type type;
  double lo = -1, hi = 1; ///< range of the random values
  bool differentiate = true;
  bool labels = false; ///< i32 class labels in [0, hi)
};

struct Case {
  const char *name;
  std::vector<Arg> args;
  std::function<ValueId(Graph &, const std::vector<ValueId> &)> build;
};

/// loss = sum(op(args) * w) for a random w, so every output element matters.
void checkGradients(const Case &c, int64_t batch, uint32_t seed) {
  Graph g;
  std::vector<ValueId> ins;
  for (size_t i = 0; i < c.args.size(); ++i)
    ins.push_back(g.input("a" + std::to_string(i), c.args[i].type));
  ValueId y = c.build(g, ins);
  ValueId w = g.input("w", g.type(y));
  ValueId loss = g.add(Op::ReduceSum, {g.add(Op::Mul, {y, w})}, {{"axes", std::vector<int64_t>{}}});
  std::vector<ValueId> wrt;
  for (size_t i = 0; i < ins.size(); ++i)
    if (c.args[i].differentiate)
      wrt.push_back(ins[i]);
  auto grads = passes::gradients(g, loss, wrt);
  for (size_t i = 0; i < grads.size(); ++i)
    g.addOutput("g" + std::to_string(i), grads[i]);
  g.addOutput("loss", loss);
  REQUIRE(bool(verify(g)));

  std::mt19937 rng(seed);
  Bindings b;
  for (size_t i = 0; i < c.args.size(); ++i) {
    const Arg &a = c.args[i];
    Shape s = concrete(a.type.shape, batch);
    b["a" + std::to_string(i)] = a.labels ? test::randomLabels(s[0], int64_t(a.hi), rng)
                                          : test::randomTensor(s, rng, a.lo, a.hi);
  }
  b["w"] = test::randomTensor(concrete(g.type(y).shape, batch), rng);
  auto out = run(g, b);
  REQUIRE(bool(out));

  size_t k = 0;
  for (size_t i = 0; i < c.args.size(); ++i) {
    if (!c.args[i].differentiate)
      continue;
    std::string name = "a" + std::to_string(i);
    const Tensor &analytic = out->at("g" + std::to_string(k++));
    std::vector<double> numeric(b[name].data.size());
    const double eps = 1e-6;
    for (size_t e = 0; e < numeric.size(); ++e) {
      double x0 = b[name].data[e];
      b[name].data[e] = x0 + eps;
      double fp = run(g, b)->at("loss").data[0];
      b[name].data[e] = x0 - eps;
      double fm = run(g, b)->at("loss").data[0];
      b[name].data[e] = x0;
      numeric[e] = (fp - fm) / (2 * eps);
    }
    double err = test::relError(analytic.data, numeric);
    INFO(c.name << " batch " << batch << " operand " << i << "\n" << print(g));
    CAPTURE(analytic.data, numeric);
    CHECK(err < 1e-6);
  }
}

Type f32(Shape s) { return {DType::F32, std::move(s)}; }

std::vector<Case> cases() {
  auto unary = [](Op op) {
    return [op](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0]}); };
  };
  auto binary = [](Op op) {
    return [op](Graph &g, const std::vector<ValueId> &a) { return g.add(op, {a[0], a[1]}); };
  };
  const Type x{DType::F32, {kBatch, 4}};
  std::vector<Case> cs{
      {"add (broadcast bias)", {{x}, {f32({4})}}, binary(Op::Add)},
      {"sub (broadcast column)", {{x}, {f32({kBatch, 1})}}, binary(Op::Sub)},
      {"mul", {{x}, {x}}, binary(Op::Mul)},
      {"div", {{x}, {x, 0.5, 2}}, binary(Op::Div)},
      {"max", {{x}, {x}}, binary(Op::Max)},
      {"min (scalar)", {{x}, {f32({})}}, binary(Op::Min)},
      {"select",
       {{x, 0, 1, false}, {x}, {x}},
       [](Graph &g, const std::vector<ValueId> &a) {
         ValueId m = g.add(Op::Greater, {a[0], g.constant(0.5)});
         return g.add(Op::Select, {m, a[1], a[2]});
       }},
      {"neg", {{x}}, unary(Op::Neg)},
      {"exp", {{x}}, unary(Op::Exp)},
      {"log", {{x, 0.5, 2}}, unary(Op::Log)},
      {"sqrt", {{x, 0.5, 2}}, unary(Op::Sqrt)},
      {"square", {{x}}, unary(Op::Square)},
      {"relu", {{x}}, unary(Op::Relu)},
      {"tanh", {{x}}, unary(Op::Tanh)},
      {"sigmoid", {{x}}, unary(Op::Sigmoid)},
      {"softmax", {{x}}, unary(Op::SoftMax)},
      {"log_softmax", {{x}}, unary(Op::LogSoftMax)},
      {"reshape",
       {{f32({kBatch, 2, 3})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Reshape, {a[0]}, {{"shape", Shape{kBatch, 6}}});
       }},
      {"transpose",
       {{f32({kBatch, 2, 3})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Transpose, {a[0]}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
       }},
      {"avgpool2d 3x2 stride 2 pad 1",
       {{f32({kBatch, 2, 5, 4})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::AvgPool2d, {a[0]},
                      {{"kernel", std::vector<int64_t>{3, 2}},
                       {"stride", std::vector<int64_t>{2, 2}},
                       {"pad", std::vector<int64_t>{1, 1}}});
       }},
      {"concat along channels",
       {{f32({kBatch, 2, 3})}, {f32({kBatch, 1, 3})}, {f32({kBatch, 3, 3})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Concat, {a[0], a[1], a[2]}, {{"axis", int64_t(1)}});
       }},
      {"concat along the last axis, one operand twice",
       {{f32({kBatch, 2, 3})}, {f32({kBatch, 2, 1})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Concat, {a[0], a[1], a[0]}, {{"axis", int64_t(2)}});
       }},
      {"concat of unbatched operands along axis 0",
       {{f32({2, 3})}, {f32({1, 3})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Concat, {a[0], a[1]}, {{"axis", int64_t(0)}});
       }},
      {"pow (positive base)",
       {{f32({kBatch, 3}), 0.5, 2}, {f32({3}), 0.5, 2}},
       [](Graph &g, const std::vector<ValueId> &a) { return g.add(Op::Pow, {a[0], a[1]}); }},
      {"slice (cropping)",
       {{f32({kBatch, 3, 6})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Slice, {a[0]},
                      {{"axis", int64_t(2)}, {"start", int64_t(1)}, {"size", int64_t(3)}});
       }},
      {"broadcast",
       {{f32({3, 1})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Broadcast, {a[0]}, {{"shape", Shape{kBatch, 3, 4}}});
       }},
      {"param view",
       {{f32({20})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::Param, {a[0]},
                      {{"name", "w"}, {"offset", int64_t(5)}, {"shape", Shape{3, 4}}});
       }},
      {"reduce_sum over N",
       {{f32({kBatch, 3, 2})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::ReduceSum, {a[0]}, {{"axes", std::vector<int64_t>{0, 2}}});
       }},
      {"reduce_sum keepdims",
       {{x}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::ReduceSum, {a[0]},
                      {{"axes", std::vector<int64_t>{-1}}, {"keepdims", true}});
       }},
      {"reduce_mean all",
       {{x}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::ReduceMean, {a[0]}, {{"axes", std::vector<int64_t>{}}});
       }},
      {"reduce_mean rows",
       {{x}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::ReduceMean, {a[0]}, {{"axes", std::vector<int64_t>{1}}});
       }},
      {"reduce_max",
       {{x}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::ReduceMax, {a[0]}, {{"axes", std::vector<int64_t>{1}}});
       }},
      {"nll_loss",
       {{x}, {{DType::I32, {kBatch}}, 0, 4, false, true}},
       [](Graph &g, const std::vector<ValueId> &a) { return g.add(Op::NllLoss, {a[0], a[1]}); }},
      {"conv2d stride 2 pad 1",
       {{f32({kBatch, 2, 5, 6})}, {f32({3, 2, 3, 2})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(
             Op::Conv2d, {a[0], a[1]},
             {{"stride", std::vector<int64_t>{2, 1}}, {"pad", std::vector<int64_t>{1, 1}}});
       }},
      {"maxpool2d 2x2 stride 2 pad 1",
       {{f32({kBatch, 2, 5, 4})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::MaxPool2d, {a[0]},
                      {{"kernel", std::vector<int64_t>{2, 2}},
                       {"stride", std::vector<int64_t>{2, 2}},
                       {"pad", std::vector<int64_t>{1, 1}}});
       }},
      // Torch7's ceil mode: clipped last windows (pad_end).
      {"maxpool2d 3x3 stride 2 pad 1, ceil mode",
       {{f32({kBatch, 2, 6, 4})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::MaxPool2d, {a[0]},
                      {{"kernel", std::vector<int64_t>{3, 3}},
                       {"stride", std::vector<int64_t>{2, 2}},
                       {"pad", std::vector<int64_t>{1, 1}},
                       {"pad_end", std::vector<int64_t>{1, 1}}});
       }},
      {"avgpool2d 3x4 stride 2 pad 1 on 6x7, ceil mode",
       {{f32({kBatch, 2, 6, 7})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::AvgPool2d, {a[0]},
                      {{"kernel", std::vector<int64_t>{3, 4}},
                       {"stride", std::vector<int64_t>{2, 2}},
                       {"pad", std::vector<int64_t>{1, 1}},
                       {"pad_end", std::vector<int64_t>{1, 1}}});
       }},
      {"avgpool2d 3x3 stride 2, ceil mode",
       {{f32({kBatch, 2, 6, 4})}},
       [](Graph &g, const std::vector<ValueId> &a) {
         return g.add(Op::AvgPool2d, {a[0]},
                      {{"kernel", std::vector<int64_t>{3, 3}},
                       {"stride", std::vector<int64_t>{2, 2}},
                       {"pad_end", std::vector<int64_t>{1, 1}}});
       }},
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Type a = ta ? f32({5, kBatch}) : f32({kBatch, 5});
      Type b = tb ? f32({3, 5}) : f32({5, 3});
      if (ta) // a transposed operand cannot hold N in front: use fixed sizes
        a = f32({5, 4});
      cs.push_back(
          {ta ? (tb ? "matmul transA transB" : "matmul transA") : (tb ? "matmul transB" : "matmul"),
           {{a}, {b}},
           [ta, tb](Graph &g, const std::vector<ValueId> &v) {
             Attrs at;
             if (ta)
               at.set("transA", true);
             if (tb)
               at.set("transB", true);
             return g.add(Op::MatMul, {v[0], v[1]}, at);
           }});
    }
  cs.push_back({"matmul contracting over N (weight gradient)",
                {{f32({kBatch, 3})}, {f32({kBatch, 4})}},
                [](Graph &g, const std::vector<ValueId> &v) {
                  return g.add(Op::MatMul, {v[0], v[1]}, {{"transA", true}});
                }});
  return cs;
}

} // namespace

TEST_CASE("every VJP rule matches central finite differences", "[autodiff]") {
  uint32_t seed = 1;
  for (const Case &c : cases())
    for (int64_t batch : {1, 3}) {
      SECTION(std::string(c.name) + " batch " + std::to_string(batch)) {
        checkGradients(c, batch, seed);
      }
      ++seed;
    }
}

TEST_CASE("every differentiable op has a gradient check", "[autodiff]") {
  // The cases above name the ops they cover; a new differentiable op in
  // ops.def must get a case before this passes.
  std::set<Op> covered;
  for (const Case &c : cases()) {
    Graph g;
    std::vector<ValueId> ins;
    for (size_t i = 0; i < c.args.size(); ++i)
      ins.push_back(g.input("a" + std::to_string(i), c.args[i].type));
    c.build(g, ins);
    for (const Node &n : g.nodes())
      covered.insert(n.op);
  }
  for (int i = 0; i < kNumOps; ++i) {
    INFO(opName(Op(i)));
    if (opDifferentiable(Op(i)))
      CHECK(covered.count(Op(i)) == 1);
  }
}

namespace {

/// The flat gradient autodiff packs for `spec` against central finite
/// differences of the forward graph's loss, for every parameter.
void checkParamGradients(const nn::ModelSpec &spec, const Shape &sample, int64_t batch,
                         int64_t classes) {
  auto t = frontend::trace(spec, sample);
  if (!t)
    FAIL(t.diag().str());
  Graph g = passes::autodiff(t->graph);
  REQUIRE(bool(verify(g)));
  std::mt19937 rng(7);
  Shape xs{batch};
  xs.insert(xs.end(), sample.begin(), sample.end());
  Bindings b{{"x", test::randomTensor(xs, rng)},
             {"labels", test::randomLabels(batch, classes, rng)},
             {"params", test::randomTensor({t->numParams}, rng)}};
  auto out = run(g, b);
  REQUIRE(bool(out));
  const Tensor &grad = out->at("grad");
  REQUIRE(grad.numel() == t->numParams);
  // Finite differences on the flat buffer, through the forward graph alone.
  for (int64_t i = 0; i < t->numParams; ++i) {
    double x0 = b["params"].data[size_t(i)], eps = 1e-6;
    b["params"].data[size_t(i)] = x0 + eps;
    double fp = run(t->graph, b)->at("loss").data[0];
    b["params"].data[size_t(i)] = x0 - eps;
    double fm = run(t->graph, b)->at("loss").data[0];
    b["params"].data[size_t(i)] = x0;
    double numeric = (fp - fm) / (2 * eps);
    INFO("flat index " << i << " of " << t->numParams);
    CHECK(std::abs(grad.data[size_t(i)] - numeric) <= 1e-6 * std::max(1e-3, std::abs(numeric)));
  }
}

} // namespace

TEST_CASE("autodiff packs each parameter's gradient at its offset", "[autodiff]") {
  auto spec = test::seedMlp();
  spec.model = nn::Sequential();
  spec.model.add(nn::Linear(3, 4)).add(nn::Tanh()).add(nn::Linear(4, 2)).add(nn::LogSoftMax());
  checkParamGradients(spec, {3}, 5, 2);
}

TEST_CASE("Torch7's table layers and constants differentiate like finite differences",
          "[autodiff][layers]") {
  // A residual block (ConcatTable, CAddTable), Threshold, MulConstant,
  // AddConstant, a ParallelTable and JoinTable(1, 1), and nn.Concat(2).
  auto spec = test::seedMlp();
  nn::Module branch = nn::Sequential();
  branch.add(nn::Linear(4, 4)).add(nn::Threshold(0.1, -0.5)).add(nn::MulConstant(0.5));
  nn::Module twoWays = nn::ParallelTable();
  twoWays.add(nn::Linear(4, 3)).add(nn::AddConstant(0.25));
  nn::Module concat = nn::Concat(2);
  concat.add(nn::Linear(7, 2)).add(nn::Tanh()).add(nn::Linear(7, 1));
  spec.model = nn::Sequential();
  spec.model.add(nn::Linear(3, 4))
      .add(nn::ConcatTable().add(branch).add(nn::Identity()))
      .add(nn::CAddTable(true))
      .add(nn::ConcatTable().add(nn::Identity()).add(nn::Sigmoid()))
      .add(twoWays)
      .add(nn::JoinTable(1, 1))
      .add(concat)
      .add(nn::LogSoftMax());
  checkParamGradients(spec, {3}, 3, 10);
}

TEST_CASE("BatchNorm differentiates like finite differences, through the batch statistics",
          "[autodiff][layers]") {
  // The batch mean and variance depend on every sample, so each sample's
  // gradient runs through all of them; the running statistics get none.
  auto spec = test::seedMlp();
  spec.model = nn::Sequential();
  spec.model.add(nn::SpatialConvolution(2, 3, 2, 2))
      .add(nn::SpatialBatchNormalization(3))
      .add(nn::Tanh())
      .add(nn::View(12))
      .add(nn::Linear(12, 5))
      .add(nn::BatchNormalization(5, 1e-3, 0.2))
      .add(nn::Tanh())
      .add(nn::Linear(5, 4))
      .add(nn::LogSoftMax());
  checkParamGradients(spec, {2, 3, 3}, 4, 4);
}

TEST_CASE("SpatialZeroPadding and Padding differentiate like finite differences",
          "[autodiff][layers]") {
  auto spec = test::seedMlp();
  spec.model = nn::Sequential();
  spec.model.add(nn::SpatialZeroPadding(1, 0, 2, 1))
      .add(nn::SpatialConvolution(2, 2, 3, 3))
      .add(nn::Tanh())
      .add(nn::Padding(1, -1, 3, 0.5))
      .add(nn::SpatialZeroPadding(-1, 0, 0, -1)) // cropping
      .add(nn::SpatialZeroPadding(1, 0, 0, 1))
      .add(nn::View(3 * 4 * 3))
      .add(nn::Linear(36, 3))
      .add(nn::LogSoftMax());
  checkParamGradients(spec, {2, 3, 4}, 3, 3);
}

TEST_CASE("SpatialLPPooling, SpatialSubtractiveNormalization and SpatialConvolutionMap "
          "differentiate like finite differences",
          "[autodiff][layers]") {
  // The normalisation and the pooling have no parameters: the maps' weights
  // before them get their gradients through them.
  auto spec = test::seedMlp();
  spec.model = nn::Sequential();
  spec.model.add(nn::SpatialConvolutionMap(nn::oneToOneTable(2), 2, 2))
      .add(nn::SpatialSubtractiveNormalization(2, nn::TensorArg{{3}, {0.5, 1, 0.5}}))
      .add(nn::SpatialConvolutionMap(nn::fullTable(2, 3), 2, 1))
      .add(nn::SpatialLPPooling(3, 2, 2, 2, 1, 1))
      .add(nn::SpatialLPPooling(3, 3, 1, 2))
      .add(nn::View(6))
      .add(nn::Linear(6, 3))
      .add(nn::LogSoftMax());
  checkParamGradients(spec, {2, 4, 5}, 3, 3);
}
