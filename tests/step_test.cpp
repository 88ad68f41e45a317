// tests/step_test.cpp - the whole training step: optimizers against Torch7's
// rules computed independently, fused against unfused, and the seed MLP's
// fused IR against its golden text.
#include "TestUtil.h"
#include "frontend/ModelFile.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Autodiff.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"
#include "passes/Pipeline.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace graphc;
using namespace graphc::ir;

namespace {

passes::Pipeline compileStep(const Graph &forward, const passes::OptimizerConfig &o,
                             const std::string &stopAfter = "") {
  passes::PipelineOptions po;
  po.stopAfter = stopAfter;
  auto p = passes::runPipeline(forward, o, po);
  REQUIRE(bool(p));
  return std::move(*p);
}

passes::OptimizerConfig optimizer(const std::string &name, std::map<std::string, double> cfg) {
  auto o = passes::OptimizerConfig::fromTorch(name, cfg);
  REQUIRE(bool(o));
  return *o;
}

/// Runs `steps` training steps of `step` from `params`, feeding outputs back.
std::vector<double> train(const Graph &step, const passes::OptimizerConfig &o,
                          std::vector<double> params, const std::vector<Bindings> &batches) {
  Bindings b;
  b["params"] = Tensor({int64_t(params.size())});
  b["params"].data = params;
  b["step"] = Tensor({}, 0.0);
  for (const std::string &slot : o.stateSlots())
    b["state." + slot] = Tensor({int64_t(params.size())}, 0.0);
  for (const Bindings &batch : batches) {
    for (auto &[k, v] : batch)
      b[k] = v;
    auto out = run(step, b);
    REQUIRE(bool(out));
    b["params"] = out->at("params");
    b["step"] = out->at("step");
    for (const std::string &slot : o.stateSlots())
      b["state." + slot] = out->at("state." + slot);
  }
  return b["params"].data;
}

// --- an independent seed-MLP step in plain loops ---------------------------

struct Mlp {
  const std::vector<frontend::ParamInfo> &layout;
  std::vector<double> &p;
  double *w(int layer) { return p.data() + layout[size_t(2 * layer)].offset; }
  double *bias(int layer) { return p.data() + layout[size_t(2 * layer + 1)].offset; }
};

/// Gradient of the mean NLL of the seed MLP, written without the IR.
std::vector<double> mlpGradient(const std::vector<frontend::ParamInfo> &layout,
                                std::vector<double> p, const Tensor &x, const Tensor &labels) {
  Mlp m{layout, p};
  const int64_t n = x.shape[0];
  const int64_t sizes[4] = {1024, 1000, 1000, 10};
  std::vector<std::vector<double>> act(4);
  act[0] = x.data;
  for (int l = 0; l < 3; ++l) {
    int64_t in = sizes[l], out = sizes[l + 1];
    act[size_t(l + 1)].assign(size_t(n * out), 0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) {
        double s = m.bias(l)[j];
        for (int64_t k = 0; k < in; ++k)
          s += act[size_t(l)][size_t(i * in + k)] * m.w(l)[j * in + k];
        act[size_t(l + 1)][size_t(i * out + j)] = l < 2 ? std::max(s, 0.0) : s;
      }
  }
  // d loss / d logits = (softmax - onehot) / n
  std::vector<double> delta(size_t(n * 10));
  for (int64_t i = 0; i < n; ++i) {
    double *z = &act[3][size_t(i * 10)];
    double mx = *std::max_element(z, z + 10), sum = 0;
    for (int j = 0; j < 10; ++j)
      sum += std::exp(z[j] - mx);
    for (int j = 0; j < 10; ++j)
      delta[size_t(i * 10 + j)] =
          (std::exp(z[j] - mx) / sum - (labels.data[size_t(i)] == j ? 1 : 0)) / double(n);
  }
  std::vector<double> grad(p.size(), 0);
  for (int l = 2; l >= 0; --l) {
    int64_t in = sizes[l], out = sizes[l + 1];
    double *gw = grad.data() + layout[size_t(2 * l)].offset;
    double *gb = grad.data() + layout[size_t(2 * l + 1)].offset;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) {
        double d = delta[size_t(i * out + j)];
        gb[j] += d;
        for (int64_t k = 0; k < in; ++k)
          gw[j * in + k] += d * act[size_t(l)][size_t(i * in + k)];
      }
    if (l == 0)
      break;
    std::vector<double> prev(size_t(n * in), 0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < in; ++k) {
        double s = 0;
        for (int64_t j = 0; j < out; ++j)
          s += delta[size_t(i * out + j)] * m.w(l)[j * in + k];
        prev[size_t(i * in + k)] = act[size_t(l)][size_t(i * in + k)] > 0 ? s : 0;
      }
    delta = std::move(prev);
  }
  return grad;
}

/// Linear(6, 5), Tanh, Linear(5, 3), LogSoftMax under ClassNLL: the net on
/// which the optimizers are checked line by line against Torch7's.
struct SmallNet {
  frontend::Traced t;
  Graph withGrad;

  SmallNet() {
    nn::ModelSpec spec;
    spec.model.add(nn::Linear(6, 5)).add(nn::Tanh()).add(nn::Linear(5, 3)).add(nn::LogSoftMax());
    spec.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
    auto traced = frontend::trace(spec, {6});
    REQUIRE(bool(traced));
    t = std::move(*traced);
    withGrad = passes::autodiff(t.graph);
  }
  /// Random start parameters, then a random batch of each size.
  std::pair<std::vector<double>, std::vector<Bindings>>
  start(unsigned seed, const std::vector<int64_t> &sizes) const {
    std::mt19937 rng(seed);
    std::vector<double> params = test::randomTensor({t.numParams}, rng).data;
    std::vector<Bindings> batches;
    for (int64_t n : sizes)
      batches.push_back(
          {{"x", test::randomTensor({n, 6}, rng)}, {"labels", test::randomLabels(n, 3, rng)}});
    return {params, batches};
  }
  /// Torch7's feval: autodiff's gradient at `x` on batch `b`.
  std::vector<double> feval(const std::vector<double> &x, const Bindings &b) const {
    Bindings in = b;
    in["params"] = Tensor({int64_t(x.size())});
    in["params"].data = x;
    return run(withGrad, in)->at("grad").data;
  }
};

struct OptimCase {
  const char *name;
  std::map<std::string, double> cfg;
};

} // namespace

TEST_CASE("3 adagrad steps of the seed MLP follow Torch7's rule", "[step]") {
  auto spec = test::seedMlp();
  auto t = frontend::trace(spec, {1, 32, 32});
  REQUIRE(bool(t));
  auto o = optimizer("adagrad", {{"learningRate", 0.01}});
  Graph step = compileStep(t->graph, o).step;

  auto init = frontend::initParams(t->params, 42);
  std::vector<double> params(init.begin(), init.end());
  std::mt19937 rng(3);
  std::vector<Bindings> batches;
  for (int64_t n : {5, 5, 1}) // an odd batch and a batch of one
    batches.push_back({{"x", test::randomTensor({n, 1, 32, 32}, rng, 0, 1)},
                       {"labels", test::randomLabels(n, 10, rng)}});
  std::vector<double> got = train(step, o, params, batches);

  // Torch7: v += g^2; x -= clr * g / (sqrt(v) + 1e-10), clr = lr / (1 + t*lrd).
  std::vector<double> x = params, v(params.size(), 0);
  for (const Bindings &b : batches) {
    Tensor flatX = b.at("x");
    flatX.shape = {flatX.shape[0], 1024};
    auto g = mlpGradient(t->params, x, flatX, b.at("labels"));
    for (size_t i = 0; i < x.size(); ++i) {
      v[i] += g[i] * g[i];
      x[i] -= 0.01 * g[i] / (std::sqrt(v[i]) + 1e-10);
    }
  }
  CHECK(test::relError(got, x) < 1e-9);
  double moved = test::relError(got, params);
  CHECK(moved > 1e-4); // the steps did change the parameters
}

TEST_CASE("sgd and adam follow Torch7's rules on the autodiff gradient", "[step]") {
  const SmallNet net;
  const OptimCase cases[] = {
      {"sgd", {{"learningRate", 0.1}}},
      {"sgd", {{"learningRate", 0.1}, {"momentum", 0.9}}},
      {"sgd",
       {{"learningRate", 0.1},
        {"momentum", 0.9},
        {"dampening", 0.0},
        {"nesterov", 1},
        {"weightDecay", 0.01},
        {"learningRateDecay", 0.1}}},
      {"adagrad", {{"learningRate", 0.1}, {"learningRateDecay", 0.5}, {"weightDecay", 0.1}}},
      {"adam", {}},
      {"adam",
       {{"learningRate", 0.01},
        {"beta1", 0.8},
        {"beta2", 0.99},
        {"epsilon", 1e-6},
        {"weightDecay", 0.05},
        {"learningRateDecay", 0.2}}},
  };
  for (const OptimCase &c : cases) {
    auto o = optimizer(c.name, c.cfg);
    INFO(o.str());
    Graph step = compileStep(net.t.graph, o).step;
    auto [params, batches] = net.start(11, {4, 3, 1, 4});
    std::vector<double> got = train(step, o, params, batches);

    // Torch7's optim.sgd / optim.adam, line by line, on autodiff's gradient.
    std::vector<double> x = params, s1(x.size(), 0), s2(x.size(), 0);
    double tcount = 0;
    for (const Bindings &b : batches) {
      std::vector<double> g = net.feval(x, b);
      for (size_t i = 0; i < x.size(); ++i)
        g[i] += o.weightDecay * x[i];
      double clr = o.learningRate / (1 + tcount * o.learningRateDecay);
      if (o.name == "sgd") {
        for (size_t i = 0; i < x.size(); ++i) {
          double d = g[i];
          if (o.momentum != 0) {
            s1[i] = tcount == 0 ? g[i] : o.momentum * s1[i] + (1 - o.dampening) * g[i];
            d = o.nesterov ? g[i] + o.momentum * s1[i] : s1[i];
          }
          x[i] -= clr * d;
        }
      } else if (o.name == "adagrad") {
        for (size_t i = 0; i < x.size(); ++i) {
          s1[i] += g[i] * g[i];
          x[i] -= clr * g[i] / (std::sqrt(s1[i]) + 1e-10);
        }
      } else {
        double t1 = tcount + 1;
        double size = clr * std::sqrt(1 - std::pow(o.beta2, t1)) / (1 - std::pow(o.beta1, t1));
        for (size_t i = 0; i < x.size(); ++i) {
          s1[i] = o.beta1 * s1[i] + (1 - o.beta1) * g[i];
          s2[i] = o.beta2 * s2[i] + (1 - o.beta2) * g[i] * g[i];
          x[i] -= size * s1[i] / (std::sqrt(s2[i]) + o.epsilon);
        }
      }
      tcount += 1;
    }
    CHECK(test::relError(got, x) < 1e-12);
  }
}

TEST_CASE("rmsprop, adadelta and nag follow Torch7's rules on the autodiff gradient",
          "[step][optim]") {
  const SmallNet net;
  const OptimCase cases[] = {
      {"rmsprop", {}},
      {"rmsprop",
       {{"learningRate", 0.05},
        {"alpha", 0.8},
        {"epsilon", 1e-3},
        {"weightDecay", 0.05},
        {"initialMean", 0.5}}},
      {"adadelta", {}},
      {"adadelta", {{"rho", 0.7}, {"eps", 1e-3}, {"weightDecay", 0.05}}},
      {"nag", {{"learningRate", 0.1}}},
      {"nag",
       {{"learningRate", 0.1},
        {"momentum", 0.6},
        {"dampening", 0},
        {"weightDecay", 0.05},
        {"learningRateDecay", 0.3}}},
  };
  for (const OptimCase &c : cases) {
    auto o = optimizer(c.name, c.cfg);
    INFO(o.str());
    Graph step = compileStep(net.t.graph, o).step;
    auto [params, batches] = net.start(12, {4, 3, 1, 4, 2});
    std::vector<double> got = train(step, o, params, batches);

    // Torch7's optim.rmsprop / adadelta / nag, line by line: state tensors
    // are created on the first call, feval runs where Torch7 calls it.
    const size_t np = params.size();
    std::vector<double> x = params, m, var, acc, dfdx;
    double evalCounter = 0;
    for (const Bindings &b : batches) {
      if (o.name == "rmsprop") {
        std::vector<double> g = net.feval(x, b);
        for (size_t i = 0; i < np; ++i)
          g[i] += o.weightDecay * x[i];
        if (m.empty())
          m.assign(np, o.initialMean);
        for (size_t i = 0; i < np; ++i) {
          m[i] = m[i] * o.alpha + (1 - o.alpha) * g[i] * g[i];
          x[i] += -o.learningRate * g[i] / (std::sqrt(m[i]) + o.epsilon);
        }
      } else if (o.name == "adadelta") {
        std::vector<double> g = net.feval(x, b);
        for (size_t i = 0; i < np; ++i)
          g[i] += o.weightDecay * x[i];
        if (var.empty())
          var.assign(np, 0), acc.assign(np, 0);
        for (size_t i = 0; i < np; ++i) {
          var[i] = var[i] * o.rho + (1 - o.rho) * g[i] * g[i];
          double paramStd = std::sqrt(var[i] + o.eps);
          double delta = std::sqrt(acc[i] + o.eps) / paramStd * g[i];
          x[i] += -1 * delta;
          acc[i] = acc[i] * o.rho + (1 - o.rho) * delta * delta;
        }
      } else {
        std::vector<double> xCopy = x;
        if (!dfdx.empty())
          for (size_t i = 0; i < np; ++i)
            x[i] += o.momentum * dfdx[i];
        std::vector<double> g = net.feval(x, b);
        for (size_t i = 0; i < np; ++i)
          g[i] += o.weightDecay * x[i];
        double clr = o.learningRate / (1 + evalCounter * o.learningRateDecay);
        if (dfdx.empty())
          dfdx.assign(np, 0);
        else
          for (double &d : dfdx)
            d *= o.momentum;
        for (size_t i = 0; i < np; ++i) {
          dfdx[i] += -clr * g[i];
          x[i] = xCopy[i] + dfdx[i];
        }
      }
      evalCounter += 1;
    }
    CHECK(test::relError(got, params) > 1e-4); // the steps moved
    CHECK(test::relError(got, x) < 1e-12);
  }
}

TEST_CASE("Torch7's defaults and keys for rmsprop, adadelta and nag", "[step][optim]") {
  auto rms = optimizer("rmsprop", {});
  CHECK(rms.learningRate == 1e-2);
  CHECK(rms.alpha == 0.99);
  CHECK(rms.epsilon == 1e-8);
  CHECK(rms.weightDecay == 0);
  CHECK(rms.initialMean == 0);
  CHECK(rms.stateSlots() == std::vector<std::string>{"m"});
  CHECK(rms.str() == "optim.rmsprop {learningRate = 0.01, alpha = 0.99, epsilon = 1e-08, "
                     "weightDecay = 0, initialMean = 0}");
  auto ada = optimizer("adadelta", {});
  CHECK(ada.rho == 0.9);
  CHECK(ada.eps == 1e-6);
  CHECK(ada.weightDecay == 0);
  CHECK(ada.stateSlots() == std::vector<std::string>{"accDelta", "paramVariance"});
  CHECK(ada.str() == "optim.adadelta {rho = 0.9, eps = 1e-06, weightDecay = 0}");
  auto nag = optimizer("nag", {});
  CHECK(nag.learningRate == 1e-3);
  CHECK(nag.learningRateDecay == 0);
  CHECK(nag.weightDecay == 0);
  CHECK(nag.momentum == 0.9);
  CHECK(nag.stateSlots() == std::vector<std::string>{"dfdx"});
  CHECK(nag.str() ==
        "optim.nag {learningRate = 0.001, learningRateDecay = 0, weightDecay = 0, momentum = 0.9}");
  // Keys the Torch7 function does not read are errors that name the key.
  for (auto [name, key] : {std::pair{"rmsprop", "learningRateDecay"},
                           {"rmsprop", "momentum"},
                           {"adadelta", "learningRate"},
                           {"adadelta", "epsilon"},
                           {"nag", "nesterov"},
                           {"nag", "beta1"}}) {
    auto bad = passes::OptimizerConfig::fromTorch(name, {{key, 0.5}});
    INFO(name << " " << key);
    REQUIRE(!bad);
    CHECK_THAT(bad.diag().message,
               Catch::Contains(std::string("optim.") + name + " has no setting '" + key + "'"));
  }
  auto still = passes::OptimizerConfig::fromTorch("nag", {{"momentum", 0}});
  REQUIRE(!still);
  CHECK_THAT(still.diag().message, Catch::Contains("'momentum' must be positive"));
}

TEST_CASE("Torch7's optimizer defaults", "[step]") {
  auto sgd = optimizer("sgd", {{"momentum", 0.5}});
  CHECK(sgd.learningRate == 1e-3);
  CHECK(sgd.dampening == 0.5); // defaults to the momentum
  auto adam = optimizer("adam", {});
  CHECK(adam.beta1 == 0.9);
  CHECK(adam.beta2 == 0.999);
  CHECK(adam.epsilon == 1e-8);
  CHECK(adam.stateSlots() == std::vector<std::string>{"m", "v"});
  auto bad = passes::OptimizerConfig::fromTorch("adagrad", {{"momentum", 0.9}});
  REQUIRE(!bad);
  CHECK_THAT(bad.diag().message, Catch::Contains("no setting 'momentum'"));
  CHECK(!passes::OptimizerConfig::fromTorch("lbfgs", {}));
}

namespace {

/// Models that exercise every fusion rule and every layer kind.
std::vector<std::pair<std::string, nn::ModelSpec>> fusionModels() {
  std::vector<std::pair<std::string, nn::ModelSpec>> out;
  nn::ModelSpec mlp;
  mlp.model.add(nn::View(16))
      .add(nn::Linear(16, 8))
      .add(nn::ReLU())
      .add(nn::Linear(8, 8))
      .add(nn::ReLU())
      .add(nn::Linear(8, 4))
      .add(nn::LogSoftMax());
  mlp.criterion = nn::Criterion{nn::CriterionKind::ClassNLL, {}};
  out.push_back({"small mlp", mlp});
  nn::ModelSpec conv;
  conv.model.add(nn::SpatialConvolution(1, 3, 3, 3, 1, 1, 1))
      .add(nn::ReLU())
      .add(nn::SpatialMaxPooling(2, 2))
      .add(nn::SpatialConvolutionMM(3, 2, 2, 2))
      .add(nn::Tanh())
      .add(nn::View(2 * 1 * 1))
      .add(nn::Linear(2, 3))
      .add(nn::Sigmoid());
  conv.criterion = nn::Criterion{nn::CriterionKind::CrossEntropy, {}};
  out.push_back({"conv", conv});
  nn::ModelSpec mse;
  mse.model.add(nn::View(16))
      .add(nn::Linear(16, 5))
      .add(nn::Dropout(0.3))
      .add(nn::Linear(5, 4))
      .add(nn::SoftMax());
  mse.criterion = nn::Criterion{nn::CriterionKind::MSE, {}};
  out.push_back({"mse with dropout", mse});
  return out;
}

} // namespace

TEST_CASE("fused and unfused steps compute the same results", "[step][fusion]") {
  for (auto &[name, spec] : fusionModels()) {
    INFO(name);
    auto t = frontend::trace(spec, {1, 4, 4});
    INFO((t ? "" : t.diag().str()));
    REQUIRE(bool(t));
    for (const char *opt : {"adagrad", "sgd", "adam"}) {
      auto o = optimizer(opt, {{"learningRate", 0.1}});
      Graph unfused = compileStep(t->graph, o, "canonicalize").step;
      passes::FusionResult fused = passes::fuse(unfused);
      REQUIRE(bool(verify(fused.graph)));
      REQUIRE(!fused.graph.groups().empty());
      for (const Node &n : fused.graph.nodes())
        CHECK((ir::isFree(n.op) || n.group >= 0));
      for (int64_t batch : {1, 7}) {
        std::mt19937 rng(static_cast<uint32_t>(batch));
        Bindings b{{"x", test::randomTensor({batch, 1, 4, 4}, rng)},
                   {"labels", test::randomLabels(batch, t->classes, rng)},
                   {"params", test::randomTensor({t->numParams}, rng)},
                   {"step", Tensor({}, 2.0)},
                   {"seed", Tensor({}, 5.0)}};
        for (const std::string &slot : o.stateSlots())
          b["state." + slot] = test::randomTensor({t->numParams}, rng, 0, 1);
        auto a = run(unfused, b), f = run(fused.graph, b);
        REQUIRE(bool(a));
        REQUIRE(bool(f));
        for (auto &[out, value] : *a) {
          INFO(opt << " output " << out << " batch " << batch);
          CHECK(test::relError(f->at(out).data, value.data) < 1e-12);
        }
      }
    }
  }
}

TEST_CASE("the seed MLP's fused step matches its golden IR", "[step][fusion]") {
  std::string path = std::string(GRAPHC_SOURCE_DIR) + "/tests/golden/mlp_step.ir";
  auto spec = frontend::loadModel(std::string(GRAPHC_SOURCE_DIR) + "/examples/mlp.model");
  REQUIRE(bool(spec));
  auto t = frontend::trace(*spec, {1, 32, 32});
  REQUIRE(bool(t));
  auto o = optimizer(spec->optimizer->name, spec->optimizer->config);
  passes::Pipeline p = compileStep(t->graph, o);
  std::string got = print(p.step);
  std::ifstream f(path);
  std::stringstream want;
  want << f.rdbuf();
  INFO("regenerate with: graphc compile examples/mlp.model --input 1x32x32 "
       "--print-after memplan, or copy the text below into "
       << path);
  CHECK(got == want.str());
  CHECK(p.step.groups().size() <= 12);
  // The golden text is itself valid IR that prints back identically.
  auto parsed = parseGraph(want.str(), path);
  REQUIRE(bool(parsed));
  CHECK(print(*parsed) == want.str());
}

TEST_CASE("memory planning reuses buffers and never overlaps live ones", "[step][memplan]") {
  auto t = frontend::trace(test::seedMlp(), {1, 32, 32});
  REQUIRE(bool(t));
  auto p = compileStep(t->graph, optimizer("adagrad", {}));
  const passes::MemoryPlan &m = p.plan;
  CHECK(m.batch == 256);
  CHECK(m.arenaBytes <= m.totalBytes);
  CHECK(m.peakBytes <= m.arenaBytes);
  // Two arena buffers whose lifetimes overlap must not share bytes.
  const Graph &g = p.step;
  std::vector<int> first(size_t(g.size()), -1), last(size_t(g.size()), -1);
  for (ValueId v = 0; v < g.size(); ++v) {
    ValueId o = m.aliasOf[size_t(v)];
    if (first[size_t(o)] < 0)
      first[size_t(o)] = v;
    last[size_t(o)] = std::max(last[size_t(o)], int(v));
    for (ValueId i : g.node(v).inputs)
      last[size_t(m.aliasOf[size_t(i)])] = std::max(last[size_t(m.aliasOf[size_t(i)])], int(v));
  }
  int buffers = 0;
  for (ValueId a = 0; a < g.size(); ++a) {
    if (m.offset[size_t(a)] < 0)
      continue;
    ++buffers;
    for (ValueId b = a + 1; b < g.size(); ++b) {
      if (m.offset[size_t(b)] < 0)
        continue;
      bool timeOverlap =
          !(last[size_t(a)] < first[size_t(b)] || last[size_t(b)] < first[size_t(a)]);
      int64_t ea = m.offset[size_t(a)] + g.type(a).numel(256) * 4;
      int64_t eb = m.offset[size_t(b)] + g.type(b).numel(256) * 4;
      bool spaceOverlap = m.offset[size_t(a)] < eb && m.offset[size_t(b)] < ea;
      INFO("%" << a << " and %" << b);
      CHECK(!(timeOverlap && spaceOverlap));
    }
  }
  CHECK(buffers >= 5);
}
