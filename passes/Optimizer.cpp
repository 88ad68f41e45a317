// passes/Optimizer.cpp - Torch7's sgd, adagrad and adam as elementwise IR.
#include "passes/Optimizer.h"

#include "ir/graphc_io.h"

#include <fmt/format.h>

#include <cmath>

namespace graphc::passes {
namespace {

using namespace ir;

struct Ops {
  Graph &g;
  ValueId c(double v) { return g.constant(v); }
  ValueId add(ValueId a, ValueId b) { return g.add(Op::Add, {a, b}); }
  ValueId sub(ValueId a, ValueId b) { return g.add(Op::Sub, {a, b}); }
  ValueId mul(ValueId a, ValueId b) { return g.add(Op::Mul, {a, b}); }
  ValueId div(ValueId a, ValueId b) { return g.add(Op::Div, {a, b}); }
};

} // namespace

Expected<OptimizerConfig> OptimizerConfig::fromTorch(const std::string &name,
                                                     const std::map<std::string, double> &config) {
  OptimizerConfig c;
  c.name = name;
  std::map<std::string, double *> keys{{"learningRate", &c.learningRate},
                                       {"learningRateDecay", &c.learningRateDecay},
                                       {"weightDecay", &c.weightDecay}};
  double nesterov = 0;
  bool dampeningSet = config.count("dampening") > 0;
  if (name == "sgd") {
    keys["momentum"] = &c.momentum;
    keys["dampening"] = &c.dampening;
    keys["nesterov"] = &nesterov;
  } else if (name == "adam") {
    keys["beta1"] = &c.beta1;
    keys["beta2"] = &c.beta2;
    keys["epsilon"] = &c.epsilon;
  } else if (name != "adagrad") {
    return error(fmt::format("unknown optimizer optim.{}; graphc supports "
                             "optim.sgd, optim.adagrad and optim.adam",
                             name));
  }
  for (auto &[k, v] : config) {
    auto it = keys.find(k);
    if (it == keys.end())
      return error(fmt::format("optim.{} has no setting '{}'", name, k));
    if (!std::isfinite(v))
      return error(fmt::format("optim.{} setting '{}' must be finite", name, k));
    *it->second = v;
  }
  c.nesterov = nesterov != 0;
  if (name == "sgd" && !dampeningSet)
    c.dampening = c.momentum; // Torch7: dampening defaults to momentum
  if (c.nesterov && (c.momentum <= 0 || c.dampening != 0))
    return error("optim.sgd: nesterov needs a momentum and zero dampening");
  return c;
}

std::vector<std::string> OptimizerConfig::stateSlots() const {
  if (name == "adagrad")
    return {"v"};
  if (name == "adam")
    return {"m", "v"};
  if (momentum != 0)
    return {"momentum"};
  return {};
}

std::string OptimizerConfig::str() const {
  std::string s = fmt::format("optim.{} {{learningRate = {}, learningRateDecay = {}, "
                              "weightDecay = {}",
                              name, learningRate, learningRateDecay, weightDecay);
  if (name == "sgd")
    s += fmt::format(", momentum = {}, dampening = {}, nesterov = {}", momentum, dampening,
                     nesterov);
  if (name == "adam")
    s += fmt::format(", beta1 = {}, beta2 = {}, epsilon = {}", beta1, beta2, epsilon);
  return s + "}";
}

Graph lowerOptimizer(const Graph &withGrad, const OptimizerConfig &cfg) {
  Graph g = withGrad;
  Ops o{g};
  ValueId x = g.findInput(GRAPHC_IO_PARAMS), grad = g.output("grad");
  GRAPHC_CHECK(x >= 0 && grad >= 0, "the optimizer needs `params` and `grad`");
  const Type flat = g.type(x);
  ValueId t = g.input(GRAPHC_IO_STEP, {DType::F32, {}});
  std::map<std::string, ValueId> state;
  for (const std::string &slot : cfg.stateSlots())
    state[slot] = g.input(GRAPHC_IO_STATE + slot, flat);

  // clr = lr / (1 + t * lrd); g += wd * x
  ValueId clr = o.c(cfg.learningRate);
  if (cfg.learningRateDecay != 0)
    clr = o.div(clr, o.add(o.c(1), o.mul(t, o.c(cfg.learningRateDecay))));
  ValueId gr = grad;
  if (cfg.weightDecay != 0)
    gr = o.add(gr, o.mul(o.c(cfg.weightDecay), x));

  std::map<std::string, ValueId> next;
  ValueId step;
  if (cfg.name == "adagrad") {
    // v += g^2; x -= clr * g / (sqrt(v) + 1e-10)
    ValueId v = o.add(state["v"], g.add(Op::Square, {gr}));
    next["v"] = v;
    step = o.div(o.mul(clr, gr), o.add(g.add(Op::Sqrt, {v}), o.c(1e-10)));
  } else if (cfg.name == "adam") {
    // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; t' = t + 1;
    // x -= clr * sqrt(1 - b2^t') / (1 - b1^t') * m / (sqrt(v) + eps)
    ValueId m = o.add(o.mul(o.c(cfg.beta1), state["m"]), o.mul(o.c(1 - cfg.beta1), gr));
    ValueId v = o.add(o.mul(o.c(cfg.beta2), state["v"]),
                      o.mul(o.c(1 - cfg.beta2), g.add(Op::Square, {gr})));
    next["m"] = m;
    next["v"] = v;
    ValueId t1 = o.add(t, o.c(1));
    auto powT = [&](double beta) { return g.add(Op::Exp, {o.mul(t1, o.c(std::log(beta)))}); };
    ValueId bc1 = o.sub(o.c(1), powT(cfg.beta1));
    ValueId bc2 = o.sub(o.c(1), powT(cfg.beta2));
    ValueId size = o.div(o.mul(clr, g.add(Op::Sqrt, {bc2})), bc1);
    step = o.mul(size, o.div(m, o.add(g.add(Op::Sqrt, {v}), o.c(cfg.epsilon))));
  } else {
    // Momentum buffer starts as a copy of the first gradient (Torch7).
    ValueId d = gr;
    if (cfg.momentum != 0) {
      ValueId first = g.add(Op::Greater, {o.c(0.5), t});
      ValueId later =
          o.add(o.mul(o.c(cfg.momentum), state["momentum"]), o.mul(o.c(1 - cfg.dampening), gr));
      ValueId buf = g.add(Op::Select, {first, gr, later});
      next["momentum"] = buf;
      d = cfg.nesterov ? o.add(gr, o.mul(o.c(cfg.momentum), buf)) : buf;
    }
    step = o.mul(clr, d);
  }

  Graph out = std::move(g);
  std::vector<Output> outputs;
  for (const Output &out0 : out.outputs())
    if (out0.name != "grad")
      outputs.push_back(out0);
  outputs.push_back({GRAPHC_IO_PARAMS, out.add(Op::Sub, {x, step})});
  for (auto &[slot, v] : next)
    outputs.push_back({GRAPHC_IO_STATE + slot, v});
  outputs.push_back({GRAPHC_IO_STEP, out.add(Op::Add, {t, out.constant(1.0)})});
  out.outputs() = outputs;
  return out;
}

} // namespace graphc::passes
