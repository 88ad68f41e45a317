// passes/Optimizer.cpp - Torch7's optimizers as elementwise IR.
#include "passes/Optimizer.h"

#include "ir/graphc_io.h"
#include "passes/Rewrite.h"

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

/// A config key and the field it sets; `shown` when str() prints it.
struct Setting {
  const char *key;
  double OptimizerConfig::*field;
  bool shown = true;
};

/// Each optimizer's config keys as Torch7 reads them, in the order str()
/// prints them. sgd's `nesterov` is a flag, read apart.
const std::map<std::string, std::vector<Setting>> &settings() {
  using C = OptimizerConfig;
  static const std::map<std::string, std::vector<Setting>> table = {
      {"sgd",
       {{"learningRate", &C::learningRate},
        {"learningRateDecay", &C::learningRateDecay},
        {"weightDecay", &C::weightDecay},
        {"momentum", &C::momentum},
        {"dampening", &C::dampening}}},
      {"adagrad",
       {{"learningRate", &C::learningRate},
        {"learningRateDecay", &C::learningRateDecay},
        {"weightDecay", &C::weightDecay}}},
      {"adam",
       {{"learningRate", &C::learningRate},
        {"learningRateDecay", &C::learningRateDecay},
        {"weightDecay", &C::weightDecay},
        {"beta1", &C::beta1},
        {"beta2", &C::beta2},
        {"epsilon", &C::epsilon}}},
      {"rmsprop",
       {{"learningRate", &C::learningRate},
        {"alpha", &C::alpha},
        {"epsilon", &C::epsilon},
        {"weightDecay", &C::weightDecay},
        {"initialMean", &C::initialMean}}},
      {"adadelta", {{"rho", &C::rho}, {"eps", &C::eps}, {"weightDecay", &C::weightDecay}}},
      // Torch7's nag reads `dampening` but never uses it.
      {"nag",
       {{"learningRate", &C::learningRate},
        {"learningRateDecay", &C::learningRateDecay},
        {"weightDecay", &C::weightDecay},
        {"momentum", &C::momentum},
        {"dampening", &C::dampening, false}}},
  };
  return table;
}

} // namespace

Expected<OptimizerConfig> OptimizerConfig::fromTorch(const std::string &name,
                                                     const std::map<std::string, double> &config) {
  auto known = settings().find(name);
  if (known == settings().end())
    return error(fmt::format("unknown optimizer optim.{}; graphc supports optim.sgd, "
                             "optim.adagrad, optim.adam, optim.rmsprop, optim.adadelta "
                             "and optim.nag",
                             name));
  OptimizerConfig c;
  c.name = name;
  if (name == "rmsprop")
    c.learningRate = 1e-2;
  if (name == "adadelta")
    c.learningRate = 1; // Torch7's adadelta takes the whole delta
  if (name == "nag")
    c.momentum = 0.9;
  double nesterov = 0;
  for (auto &[k, v] : config) {
    double *field = name == "sgd" && k == "nesterov" ? &nesterov : nullptr;
    for (const Setting &s : known->second)
      if (k == s.key)
        field = &(c.*s.field);
    if (!field)
      return error(fmt::format("optim.{} has no setting '{}'", name, k));
    if (!std::isfinite(v))
      return error(fmt::format("optim.{} setting '{}' must be finite", name, k));
    *field = v;
  }
  c.nesterov = nesterov != 0;
  if (name == "sgd" && !config.count("dampening"))
    c.dampening = c.momentum; // Torch7: dampening defaults to momentum
  if (c.nesterov && (c.momentum <= 0 || c.dampening != 0))
    return error("optim.sgd: nesterov needs a momentum and zero dampening");
  if (name == "nag" && c.momentum <= 0)
    return error("optim.nag: 'momentum' must be positive for Nesterov's accelerated gradient");
  return c;
}

std::vector<std::string> OptimizerConfig::names() {
  std::vector<std::string> out;
  for (const auto &[name, keys] : settings())
    out.push_back(name);
  return out;
}

std::vector<std::string> OptimizerConfig::stateSlots() const {
  if (name == "adagrad")
    return {"v"};
  if (name == "adam")
    return {"m", "v"};
  if (name == "rmsprop")
    return {"m"};
  if (name == "adadelta")
    return {"accDelta", "paramVariance"};
  if (name == "nag")
    return {"dfdx"};
  if (momentum != 0)
    return {"momentum"};
  return {};
}

std::string OptimizerConfig::str() const {
  std::vector<std::string> parts;
  for (const Setting &s : settings().at(name))
    if (s.shown)
      parts.push_back(fmt::format("{} = {}", s.key, this->*s.field));
  if (name == "sgd")
    parts.push_back(fmt::format("nesterov = {}", nesterov));
  return fmt::format("optim.{} {{{}}}", name, fmt::join(parts, ", "));
}

namespace {

/// withGrad with its forward and backward reading x + momentum * v (v the
/// input `state.dfdx`) wherever they read the parameters `x`.
Graph atLookAhead(const Graph &withGrad, double momentum) {
  RuleTable rules;
  rules[Op::Input] = [&](Graph &out, const Node &n) -> std::optional<ValueId> {
    if (n.attrs.s("name") != GRAPHC_IO_PARAMS)
      return std::nullopt;
    ValueId x = out.addTyped(n.op, n.type, {}, n.attrs);
    ValueId v = out.input(GRAPHC_IO_STATE "dfdx", n.type);
    return out.add(Op::Add, {x, out.add(Op::Mul, {out.constant(momentum), v})});
  };
  return rebuild(withGrad, rules);
}

/// The buffers of a traced graph (BatchNorm's running statistics): each
/// `buffer.NAME` output and the offset of NAME's view in the flat buffer.
struct Buffers {
  int64_t trainable = 0; ///< the elements before the first buffer
  std::vector<ValueId> values;
  std::vector<int64_t> offsets;
};

Buffers findBuffers(const Graph &g, int64_t size) {
  const std::string prefix = GRAPHC_IO_BUFFER;
  std::map<int64_t, ValueId> byOffset;
  std::map<std::string, int64_t> viewAt;
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op == Op::Param)
      viewAt[g.node(v).attrs.s("name")] = g.node(v).attrs.i("offset");
  for (const Output &out : g.outputs())
    if (out.name.rfind(prefix, 0) == 0) {
      auto at = viewAt.find(out.name.substr(prefix.size()));
      GRAPHC_CHECK(at != viewAt.end(), "output {} names no parameter view", out.name);
      byOffset[at->second] = out.value;
    }
  Buffers b;
  b.trainable = byOffset.empty() ? size : byOffset.begin()->first;
  int64_t end = b.trainable;
  for (auto &[offset, v] : byOffset) {
    GRAPHC_CHECK(offset == end, "the buffers do not tile the end of the flat buffer");
    end += g.type(v).numel();
    b.values.push_back(v);
    b.offsets.push_back(offset);
  }
  GRAPHC_CHECK(end == size, "the buffers do not reach the end of the flat buffer");
  return b;
}

} // namespace

Graph gradientsProgram(const Graph &withGrad) {
  RuleTable rules;
  rules[Op::RandomMask] = [](Graph &out, const Node &n) -> std::optional<ValueId> {
    if (n.inputs.size() != 1)
      return std::nullopt;
    ValueId offset = out.findInput(GRAPHC_IO_OFFSET);
    if (offset < 0)
      offset = out.input(GRAPHC_IO_OFFSET, {DType::I32, {}});
    return out.addTyped(n.op, n.type, {n.inputs[0], offset}, n.attrs);
  };
  Graph g = rebuild(withGrad, rules);
  ValueId x = g.findInput(GRAPHC_IO_PARAMS), grad = g.output(GRAPHC_IO_GRAD);
  GRAPHC_CHECK(x >= 0 && grad >= 0, "the gradients program needs `params` and `grad`");
  const int64_t size = g.type(x).shape[0];
  const Buffers buffers = findBuffers(g, size);
  std::vector<Output> outputs;
  for (const Output &o : g.outputs())
    if (o.name != GRAPHC_IO_GRAD && o.name.rfind(GRAPHC_IO_BUFFER, 0) != 0)
      outputs.push_back(o);
  if (buffers.trainable < size) {
    std::vector<ValueId> parts;
    std::vector<int64_t> offsets;
    if (buffers.trainable > 0) {
      parts.push_back(g.add(Op::Param, {grad},
                            {{"name", "trainable"},
                             {"offset", 0},
                             {"shape", Shape{buffers.trainable}}}));
      offsets.push_back(0);
    }
    for (size_t i = 0; i < buffers.values.size(); ++i) {
      ValueId b = buffers.values[i];
      parts.push_back(g.add(Op::Reshape, {b}, {{"shape", Shape{g.type(b).numel()}}}));
      offsets.push_back(buffers.offsets[i]);
    }
    grad = g.add(Op::FlatPack, parts, {{"offsets", offsets}, {"size", size}});
  }
  outputs.push_back({GRAPHC_IO_GRAD, grad});
  g.outputs() = outputs;
  return g;
}

Graph updateProgram(const Graph &forward, const OptimizerConfig &cfg) {
  GRAPHC_CHECK(cfg.name != "nag", "optim.nag has no separate update program");
  ValueId fx = forward.findInput(GRAPHC_IO_PARAMS);
  GRAPHC_CHECK(fx >= 0, "the update program needs `params`");
  const Type flat = forward.type(fx);
  const Buffers buffers = findBuffers(forward, flat.shape[0]);
  // A graph lowerOptimizer takes: params, the gradient as an input, and each
  // buffer's new value as a view of the gradient's tail.
  Graph g(forward.name());
  g.input(GRAPHC_IO_PARAMS, flat);
  ValueId grad = g.input(GRAPHC_IO_GRAD, flat);
  std::vector<Output> outputs{{GRAPHC_IO_GRAD, grad}};
  for (size_t i = 0; i < buffers.values.size(); ++i) {
    ValueId b = buffers.values[i];
    std::string name;
    for (const Output &o : forward.outputs())
      if (o.value == b && o.name.rfind(GRAPHC_IO_BUFFER, 0) == 0)
        name = o.name.substr(sizeof GRAPHC_IO_BUFFER - 1);
    ValueId view = g.add(Op::Param, {grad},
                         {{"name", name},
                          {"offset", buffers.offsets[i]},
                          {"shape", Shape{forward.type(b).numel()}}});
    outputs.push_back({GRAPHC_IO_BUFFER + name, view});
  }
  g.outputs() = outputs;
  return lowerOptimizer(g, cfg);
}

Graph lowerOptimizer(const Graph &withGrad, const OptimizerConfig &cfg) {
  Graph g = cfg.name == "nag" ? atLookAhead(withGrad, cfg.momentum) : withGrad;
  Ops o{g};
  ValueId x = g.findInput(GRAPHC_IO_PARAMS), grad = g.output("grad");
  GRAPHC_CHECK(x >= 0 && grad >= 0, "the optimizer needs `params` and `grad`");
  const Type flat = g.type(x);
  // With buffers (BatchNorm's running statistics) at the end of the flat
  // buffer, the rules run over the trainable prefix [0, T) alone, through
  // views; the buffers' new values and the state's untouched tail are
  // packed behind it.
  const Buffers buffers = findBuffers(g, flat.shape[0]);
  const int64_t trainable = buffers.trainable, size = flat.shape[0];
  auto prefix = [&](ValueId v) {
    if (trainable == size)
      return v;
    return g.add(
        Op::Param, {v},
        {{"name", "trainable"}, {"offset", 0}, {"shape", Shape{std::max<int64_t>(trainable, 1)}}});
  };
  ValueId t = g.input(GRAPHC_IO_STEP, {DType::F32, {}});
  std::map<std::string, ValueId> state, stateIn;
  for (const std::string &slot : cfg.stateSlots()) {
    ValueId s = g.findInput(GRAPHC_IO_STATE + slot);
    stateIn[slot] = s >= 0 ? s : g.input(GRAPHC_IO_STATE + slot, flat);
    state[slot] = prefix(stateIn[slot]);
  }
  x = prefix(x);
  auto first = [&] { return g.add(Op::Greater, {o.c(0.5), t}); }; // the first update

  // clr = lr / (1 + t * lrd); g += wd * x (nag: at the look-ahead point)
  ValueId clr = o.c(cfg.learningRate);
  if (cfg.learningRateDecay != 0)
    clr = o.div(clr, o.add(o.c(1), o.mul(t, o.c(cfg.learningRateDecay))));
  ValueId gr = prefix(grad);
  if (cfg.weightDecay != 0) {
    ValueId at = cfg.name == "nag" ? o.add(x, o.mul(o.c(cfg.momentum), state["dfdx"])) : x;
    gr = o.add(gr, o.mul(o.c(cfg.weightDecay), at));
  }
  auto sqrt = [&](ValueId v) { return g.add(Op::Sqrt, {v}); };
  auto square = [&](ValueId v) { return g.add(Op::Square, {v}); };
  // r v + (1 - r) w, Torch7's v:mul(r):addcmul(1 - r, ...)
  auto leaky = [&](double r, ValueId v, ValueId w) {
    return o.add(o.mul(o.c(r), v), o.mul(o.c(1 - r), w));
  };

  std::map<std::string, ValueId> next;
  ValueId step = -1, updated = -1; // x - step, or the updated x
  if (cfg.name == "adagrad") {
    // v += g^2; x -= clr * g / (sqrt(v) + 1e-10)
    ValueId v = o.add(state["v"], square(gr));
    next["v"] = v;
    step = o.div(o.mul(clr, gr), o.add(sqrt(v), o.c(1e-10)));
  } else if (cfg.name == "adam") {
    // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; t' = t + 1;
    // x -= clr * sqrt(1 - b2^t') / (1 - b1^t') * m / (sqrt(v) + eps)
    ValueId m = leaky(cfg.beta1, state["m"], gr);
    ValueId v = leaky(cfg.beta2, state["v"], square(gr));
    next["m"] = m;
    next["v"] = v;
    ValueId t1 = o.add(t, o.c(1));
    auto powT = [&](double beta) { return g.add(Op::Exp, {o.mul(t1, o.c(std::log(beta)))}); };
    ValueId bc1 = o.sub(o.c(1), powT(cfg.beta1));
    ValueId bc2 = o.sub(o.c(1), powT(cfg.beta2));
    ValueId size = o.div(o.mul(clr, sqrt(bc2)), bc1);
    step = o.mul(size, o.div(m, o.add(sqrt(v), o.c(cfg.epsilon))));
  } else if (cfg.name == "rmsprop") {
    // m starts at initialMean; m = alpha m + (1-alpha) g^2;
    // x -= lr * g / (sqrt(m) + epsilon)
    ValueId m0 = state["m"];
    if (cfg.initialMean != 0)
      m0 = g.add(Op::Select,
                 {first(),
                  g.add(Op::Broadcast, {o.c(cfg.initialMean)}, {{"shape", g.type(x).shape}}), m0});
    ValueId m = leaky(cfg.alpha, m0, square(gr));
    next["m"] = m;
    step = o.div(o.mul(clr, gr), o.add(sqrt(m), o.c(cfg.epsilon)));
  } else if (cfg.name == "adadelta") {
    // var = rho var + (1-rho) g^2; delta = sqrt(acc + eps) / sqrt(var + eps) * g;
    // x -= delta; acc = rho acc + (1-rho) delta^2
    ValueId var = leaky(cfg.rho, state["paramVariance"], square(gr));
    ValueId delta = o.mul(
        o.div(sqrt(o.add(state["accDelta"], o.c(cfg.eps))), sqrt(o.add(var, o.c(cfg.eps)))), gr);
    next["paramVariance"] = var;
    next["accDelta"] = leaky(cfg.rho, state["accDelta"], square(delta));
    step = delta;
  } else if (cfg.name == "nag") {
    // v' = mom v - clr g (g at x + mom v); x += v'
    ValueId v = o.sub(o.mul(o.c(cfg.momentum), state["dfdx"]), o.mul(clr, gr));
    next["dfdx"] = v;
    updated = o.add(x, v);
  } else {
    // Momentum buffer starts as a copy of the first gradient (Torch7).
    ValueId d = gr;
    if (cfg.momentum != 0) {
      ValueId isFirst = first();
      ValueId later =
          o.add(o.mul(o.c(cfg.momentum), state["momentum"]), o.mul(o.c(1 - cfg.dampening), gr));
      ValueId buf = g.add(Op::Select, {isFirst, gr, later});
      next["momentum"] = buf;
      d = cfg.nesterov ? o.add(gr, o.mul(o.c(cfg.momentum), buf)) : buf;
    }
    step = o.mul(clr, d);
  }

  Graph out = std::move(g);
  std::vector<Output> outputs;
  for (const Output &out0 : out.outputs())
    if (out0.name != "grad" && out0.name.rfind(GRAPHC_IO_BUFFER, 0) != 0)
      outputs.push_back(out0);
  ValueId params = updated >= 0 ? updated : out.add(Op::Sub, {x, step});
  // `tail(v, after)`: v's prefix result followed by `after` (the buffers'
  // new values, or the state's tail as it was).
  auto tail = [&](ValueId head, std::vector<ValueId> parts, std::vector<int64_t> offsets) {
    if (trainable > 0) {
      parts.insert(parts.begin(), head);
      offsets.insert(offsets.begin(), 0);
    }
    return out.add(Op::FlatPack, parts, {{"offsets", offsets}, {"size", size}});
  };
  if (trainable < size) {
    std::vector<ValueId> parts;
    for (ValueId b : buffers.values)
      parts.push_back(out.add(Op::Reshape, {b}, {{"shape", Shape{out.type(b).numel()}}}));
    params = tail(params, parts, buffers.offsets);
    for (auto &[slot, v] : next)
      v = tail(
          v,
          {out.add(
              Op::Param, {stateIn[slot]},
              {{"name", "buffers"}, {"offset", trainable}, {"shape", Shape{size - trainable}}})},
          {trainable});
  }
  outputs.push_back({GRAPHC_IO_PARAMS, params});
  for (auto &[slot, v] : next)
    outputs.push_back({GRAPHC_IO_STATE + slot, v});
  outputs.push_back({GRAPHC_IO_STEP, out.add(Op::Add, {t, out.constant(1.0)})});
  out.outputs() = outputs;
  return out;
}

} // namespace graphc::passes
