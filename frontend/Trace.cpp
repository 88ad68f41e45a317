// frontend/Trace.cpp - module tree to forward-and-loss IR.
#include "frontend/Trace.h"

#include "ir/Printer.h"
#include "ir/Random.h"
#include "ir/graphc_io.h"

#include <fmt/format.h>

#include <cmath>

namespace graphc::frontend {
namespace {

using ir::DType;
using ir::kBatch;
using ir::Op;
using ir::Shape;
using ir::ValueId;

/// Sizes past this are refused before any arithmetic on them can overflow.
constexpr double kMaxElements = double(int64_t(1) << 40);

double product(const std::vector<double> &args) {
  double p = 1;
  for (double a : args)
    p *= a;
  return p;
}

void layout(const nn::Module &m, const std::string &prefix, std::vector<ParamInfo> &out,
            int64_t &offset) {
  auto add = [&](const std::string &name, Shape shape, double bound) {
    double n = 1;
    for (int64_t d : shape)
      n *= double(d);
    if (offset < 0 || n + double(offset) > kMaxElements) {
      offset = -1; // too large: reported by paramLayout
      return;
    }
    ParamInfo p{prefix + name, offset, std::move(shape), bound};
    offset += p.numel();
    out.push_back(std::move(p));
  };
  const auto &a = m.args;
  switch (m.kind) {
  case nn::Kind::Sequential:
    for (size_t i = 0; i < m.children.size(); ++i)
      layout(m.children[i], prefix + std::to_string(i) + ".", out, offset);
    break;
  case nn::Kind::Linear: {
    double bound = 1.0 / std::sqrt(a[0]);
    add("weight", {int64_t(a[1]), int64_t(a[0])}, bound);
    add("bias", {int64_t(a[1])}, bound);
    break;
  }
  case nn::Kind::SpatialConvolution:
  case nn::Kind::SpatialConvolutionMM: {
    double bound = 1.0 / std::sqrt(a[0] * a[2] * a[3]);
    add("weight", {int64_t(a[1]), int64_t(a[0]), int64_t(a[3]), int64_t(a[2])}, bound);
    add("bias", {int64_t(a[1])}, bound);
    break;
  }
  default: break;
  }
}

/// The graph is named after the model file: "examples/mlp.model" -> "mlp".
std::string graphName(const std::string &file) {
  std::string base = file.substr(file.find_last_of('/') + 1);
  base = base.substr(0, base.find('.'));
  std::string out;
  for (char c : base)
    out += std::isalnum((unsigned char)c) ? c : '_';
  if (out.empty() || std::isdigit((unsigned char)out[0]))
    out = "model" + out;
  return out;
}

class Tracer {
public:
  Tracer(const nn::ModelSpec &spec, const TraceOptions &opt) : spec_(spec), opt_(opt) {}

  Expected<Traced> run(const Shape &sample) {
    Traced t;
    auto params = paramLayout(spec_.model);
    if (!params)
      return errorAt(spec_.modelLoc, params.diag().message);
    t.params = std::move(*params);
    for (auto &p : t.params)
      t.numParams += p.numel();
    t.sample = sample;
    double elements = 1;
    for (int64_t d : sample) {
      elements *= double(d);
      if (d < 1 || elements > kMaxElements)
        return errorAt({},
                       fmt::format("input shape {} is not a valid sample shape", ir::str(sample)));
    }
    params_ = &t.params;

    Shape xs{kBatch};
    xs.insert(xs.end(), sample.begin(), sample.end());
    ValueId x = g_.input(GRAPHC_IO_X, {DType::F32, xs});
    labels_ = g_.input(GRAPHC_IO_LABELS, {DType::I32, {kBatch}});
    flat_ = g_.input(GRAPHC_IO_PARAMS, {DType::F32, {std::max<int64_t>(t.numParams, 1)}});

    auto y = module(spec_.model, x, "");
    if (!y)
      return y.diag();
    const ir::Type &out = g_.type(*y);
    t.classes = out.shape.empty() ? 1 : out.shape.back();
    g_.addOutput(GRAPHC_IO_OUTPUT, *y);
    if (spec_.criterion) {
      auto loss = criterion(*spec_.criterion, *y);
      if (!loss)
        return loss.diag();
      g_.addOutput(GRAPHC_IO_LOSS, *loss);
    }
    t.graph = std::move(g_);
    t.graph.setName(graphName(spec_.file));
    return t;
  }

private:
  Diag errorAt(nn::SourceLoc loc, std::string msg) {
    Diag d;
    d.file = spec_.file;
    d.line = loc.line;
    d.col = loc.col;
    d.message = std::move(msg);
    return d;
  }

  Diag layerError(const nn::Module &m, const std::string &msg) {
    return errorAt(m.loc, fmt::format("layer {} {}: {}", layerPath_, m.str(), msg));
  }

  ValueId param(const std::string &name) {
    for (const ParamInfo &p : *params_)
      if (p.name == name)
        return g_.add(Op::Param, {flat_},
                      {{"name", p.name}, {"offset", p.offset}, {"shape", p.shape}});
    GRAPHC_CHECK(false, "no parameter named {}", name);
    return -1;
  }

  Expected<ValueId> module(const nn::Module &m, ValueId x, const std::string &prefix) {
    const auto &a = m.args;
    const ir::Type in = g_.type(x); // a copy: the graph grows below
    std::string shape = ir::str(in.shape);
    switch (m.kind) {
    case nn::Kind::Sequential:
      for (size_t i = 0; i < m.children.size(); ++i) {
        std::string outer = layerPath_;
        layerPath_ = (outer.empty() ? "" : outer + ".") + std::to_string(i + 1);
        auto y = module(m.children[i], x, prefix + std::to_string(i) + ".");
        if (!y)
          return y;
        double elements = 1;
        for (int64_t d : g_.type(*y).shape)
          elements *= d == kBatch ? 1.0 : double(d);
        if (elements > kMaxElements)
          return layerError(m.children[i],
                            fmt::format("output {} is too large", ir::str(g_.type(*y).shape)));
        layerPath_ = outer;
        x = *y;
      }
      return x;
    case nn::Kind::View:
    case nn::Kind::Reshape: {
      Shape target{kBatch};
      for (double d : a)
        target.push_back(int64_t(d));
      double want = product(a);
      if (want != double(in.rowNumel()))
        return layerError(m, fmt::format("expects {} elements per sample, got {} "
                                         "(input {})",
                                         want, in.rowNumel(), shape));
      return g_.add(Op::Reshape, {x}, {{"shape", target}});
    }
    case nn::Kind::Linear: {
      int64_t inputs = int64_t(a[0]);
      if (in.rank() != 2)
        return layerError(m, fmt::format("expects input [N,{}], got {} (add an "
                                         "nn.View to flatten it)",
                                         inputs, shape));
      if (in.shape[1] != inputs)
        return layerError(
            m, fmt::format("expects {} inputs, got {} (input {})", inputs, in.shape[1], shape));
      ValueId w = param(prefix + "weight"), b = param(prefix + "bias");
      ValueId y = g_.add(Op::MatMul, {x, w}, {{"transB", true}});
      return g_.add(Op::Add, {y, b});
    }
    case nn::Kind::ReLU: return g_.add(Op::Relu, {x});
    case nn::Kind::Tanh: return g_.add(Op::Tanh, {x});
    case nn::Kind::Sigmoid: return g_.add(Op::Sigmoid, {x});
    case nn::Kind::SoftMax:
    case nn::Kind::LogSoftMax:
      if (in.rank() != 2)
        return layerError(m, fmt::format("expects input [N,classes], got {}", shape));
      return g_.add(m.kind == nn::Kind::SoftMax ? Op::SoftMax : Op::LogSoftMax, {x});
    case nn::Kind::Dropout: {
      if (!opt_.training || a[0] == 0)
        return x;
      if (seed_ < 0)
        seed_ = g_.input(GRAPHC_IO_SEED, {DType::I32, {}});
      ValueId mask = g_.add(Op::RandomMask, {seed_},
                            {{"p", a[0]}, {"salt", int64_t(++dropouts_)}, {"shape", in.shape}});
      return g_.add(Op::Mul, {x, mask});
    }
    case nn::Kind::SpatialConvolution:
    case nn::Kind::SpatialConvolutionMM: {
      int64_t c = int64_t(a[0]);
      if (in.rank() != 4)
        return layerError(m, fmt::format("expects input [N,{},H,W], got {}", c, shape));
      if (in.shape[1] != c)
        return layerError(
            m, fmt::format("expects {} input planes, got {} (input {})", c, in.shape[1], shape));
      int64_t kw = int64_t(a[2]), kh = int64_t(a[3]);
      int64_t ph = int64_t(a[7]), pw = int64_t(a[6]);
      if (in.shape[2] + 2 * ph < kh || in.shape[3] + 2 * pw < kw)
        return layerError(m, fmt::format("kernel {}x{} is larger than the padded "
                                         "input {}",
                                         kw, kh, shape));
      ValueId w = param(prefix + "weight"), b = param(prefix + "bias");
      ValueId y = g_.add(Op::Conv2d, {x, w},
                         {{"stride", std::vector<int64_t>{int64_t(a[5]), int64_t(a[4])}},
                          {"pad", std::vector<int64_t>{ph, pw}}});
      ValueId b3 = g_.add(Op::Reshape, {b}, {{"shape", Shape{int64_t(a[1]), 1, 1}}});
      return g_.add(Op::Add, {y, b3});
    }
    case nn::Kind::SpatialMaxPooling: {
      if (in.rank() != 4)
        return layerError(m, fmt::format("expects input [N,C,H,W], got {}", shape));
      int64_t kw = int64_t(a[0]), kh = int64_t(a[1]);
      int64_t pw = int64_t(a[4]), ph = int64_t(a[5]);
      if (2 * pw > kw || 2 * ph > kh)
        return layerError(m, "padding must be at most half the kernel size");
      if (in.shape[2] + 2 * ph < kh || in.shape[3] + 2 * pw < kw)
        return layerError(m,
                          fmt::format("window {}x{} is larger than the input {}", kw, kh, shape));
      return g_.add(Op::MaxPool2d, {x},
                    {{"kernel", std::vector<int64_t>{kh, kw}},
                     {"stride", std::vector<int64_t>{int64_t(a[3]), int64_t(a[2])}},
                     {"pad", std::vector<int64_t>{ph, pw}}});
    }
    }
    return layerError(m, "cannot be traced");
  }

  Expected<ValueId> criterion(const nn::Criterion &c, ValueId y) {
    const ir::Type t = g_.type(y);
    if (t.rank() != 2)
      return errorAt(c.loc, fmt::format("{} expects the model output [N,classes], "
                                        "got {}",
                                        c.str(), ir::str(t.shape)));
    switch (c.kind) {
    case nn::CriterionKind::ClassNLL: return g_.add(Op::NllLoss, {y, labels_});
    case nn::CriterionKind::CrossEntropy:
      return g_.add(Op::NllLoss, {g_.add(Op::LogSoftMax, {y}), labels_});
    case nn::CriterionKind::MSE: {
      ValueId target = g_.add(Op::OneHot, {labels_}, {{"classes", t.shape[1]}});
      ValueId d = g_.add(Op::Sub, {y, target});
      return g_.add(Op::ReduceMean, {g_.add(Op::Square, {d})}, {{"axes", std::vector<int64_t>{}}});
    }
    }
    return errorAt(c.loc, "unknown criterion");
  }

  const nn::ModelSpec &spec_;
  TraceOptions opt_;
  ir::Graph g_;
  const std::vector<ParamInfo> *params_ = nullptr;
  ValueId flat_ = -1, labels_ = -1, seed_ = -1;
  int dropouts_ = 0;
  std::string layerPath_;
};

} // namespace

Expected<std::vector<ParamInfo>> paramLayout(const nn::Module &model) {
  std::vector<ParamInfo> out;
  int64_t offset = 0;
  layout(model, "", out, offset);
  if (offset < 0)
    return error(fmt::format("the model has more than {} parameters", int64_t(kMaxElements)));
  return out;
}

Expected<Traced> trace(const nn::ModelSpec &spec, const Shape &sample,
                       const TraceOptions &options) {
  return Tracer(spec, options).run(sample);
}

} // namespace graphc::frontend
