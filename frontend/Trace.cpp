// frontend/Trace.cpp - module tree to forward-and-loss IR.
#include "frontend/Trace.h"

#include "ir/Printer.h"
#include "ir/Random.h"
#include "ir/graphc_io.h"

#include <fmt/format.h>

#include <cmath>
#include <tuple>

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

/// What flows between modules: one tensor, or a table of values (a
/// ConcatTable's output, a CAddTable's input), as Torch7's modules pass Lua
/// tables.
struct Value {
  ValueId tensor = -1;
  std::vector<Value> items;

  Value() = default;
  Value(ValueId v) : tensor(v) {}
  static Value table(std::vector<Value> items) {
    Value t;
    t.items = std::move(items);
    return t;
  }
  bool isTable() const { return tensor < 0; }
};

/// "a table of 2 tensors", "a table of 3 values" (when some are tables).
std::string describe(const Value &v) {
  bool flat = true;
  for (const Value &i : v.items)
    flat &= !i.isTable();
  return fmt::format("a table of {} {}{}", v.items.size(), flat ? "tensor" : "value",
                     v.items.size() == 1 ? "" : "s");
}

/// Layers that hand on their input itself, so that a later in-place layer
/// writes into it: Identity, and View and Reshape (views of its storage).
bool aliasesInput(nn::Kind k) {
  return k == nn::Kind::Identity || k == nn::Kind::View || k == nn::Kind::Reshape;
}

/// The in-place layer that would overwrite `m`'s input tensor before `m` is
/// done with it, if any: the first layer of a Sequential that is not an
/// alias, or any branch of a ConcatTable or Concat. `path` gets its place
/// below `m` (".2.1").
const nn::Module *inPlaceHead(const nn::Module &m, std::string &path) {
  auto below = [&](size_t i) -> const nn::Module * {
    std::string sub;
    const nn::Module *h = inPlaceHead(m.children[i], sub);
    if (h)
      path += "." + std::to_string(i + 1) + sub;
    return h;
  };
  switch (m.kind) {
  case nn::Kind::Sequential:
    for (size_t i = 0; i < m.children.size(); ++i)
      if (!aliasesInput(m.children[i].kind))
        return below(i);
    return nullptr;
  case nn::Kind::ConcatTable:
  case nn::Kind::Concat:
    for (size_t i = 0; i < m.children.size(); ++i)
      if (const nn::Module *h = below(i))
        return h;
    return nullptr;
  case nn::Kind::CAddTable:
  case nn::Kind::ParallelTable: return nullptr; // their input is a table
  default: return m.inplace ? &m : nullptr;
  }
}

/// A connection table's connections and its input and output planes (the
/// largest plane numbers of its columns).
std::tuple<int64_t, int64_t, int64_t> tableSizes(const nn::TensorArg &t) {
  int64_t nIn = 0, nOut = 0;
  for (size_t i = 0; i + 1 < t.values.size(); i += 2) {
    nIn = std::max(nIn, int64_t(t.values[i]));
    nOut = std::max(nOut, int64_t(t.values[i + 1]));
  }
  return {t.sizes[0], nIn, nOut};
}

/// Appends `m`'s tensors to `out` (trainable, placed from `offset` on) and
/// `buffers` (placed later, after every trainable tensor).
void layout(const nn::Module &m, const std::string &prefix, std::vector<ParamInfo> &out,
            std::vector<ParamInfo> &buffers, int64_t &offset) {
  auto add = [&](const std::string &name, Shape shape, double bound, double shift = 0,
                 bool trainable = true) {
    double n = 1;
    for (int64_t d : shape)
      n *= double(d);
    if (offset < 0 || n + double(offset) > kMaxElements) {
      offset = -1; // too large: reported by paramLayout
      return;
    }
    ParamInfo p{prefix + name, offset, std::move(shape), bound, shift, trainable};
    if (auto it = m.init.find(name); it != m.init.end()) { // the script's
      const nn::Init &i = it->second;
      p.initNormal = i.normal;
      p.initBound = i.normal ? i.b : (i.b - i.a) / 2;
      p.initShift = i.normal ? i.a : (i.a + i.b) / 2;
    }
    if (!trainable) {
      buffers.push_back(std::move(p));
      return;
    }
    offset += p.numel();
    out.push_back(std::move(p));
  };
  const auto &a = m.args;
  switch (m.kind) {
  case nn::Kind::Sequential:
  case nn::Kind::ConcatTable:
  case nn::Kind::ParallelTable:
  case nn::Kind::Concat:
    for (size_t i = 0; i < m.children.size(); ++i)
      layout(m.children[i], prefix + std::to_string(i) + ".", out, buffers, offset);
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
  case nn::Kind::SpatialConvolutionMap: {
    // Torch7's reset(): each output plane's weights and bias in
    // ±1/sqrt(kW kH inputs), the same for every plane (LuaModel.cpp checks).
    auto [conns, nIn, nOut] = tableSizes(*m.tensor);
    double bound = 1.0 / std::sqrt(a[0] * a[1] * double(conns / nOut));
    add("weight", {conns, int64_t(a[1]), int64_t(a[0])}, bound);
    add("bias", {nOut}, bound);
    (void)nIn;
    break;
  }
  case nn::Kind::BatchNormalization:
  case nn::Kind::SpatialBatchNormalization: {
    // Torch7's reset(): weight uniform in [0, 1), bias 0, running_mean 0,
    // running_var 1; PyTorch's names.
    int64_t n = int64_t(a[0]);
    if (a[3] != 0) {
      add("weight", {n}, 0.5, 0.5);
      add("bias", {n}, 0);
    }
    add("running_mean", {n}, 0, 0, false);
    add("running_var", {n}, 0, 1, false);
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

    auto result = module(spec_.model, Value(x), "");
    if (!result)
      return result.diag();
    if (result->isTable())
      return errorAt(spec_.modelLoc,
                     fmt::format("the model's output is {}, not a tensor; combine it with "
                                 "nn.CAddTable() or nn.JoinTable(dim)",
                                 describe(*result)));
    ValueId y = result->tensor;
    const ir::Type &out = g_.type(y);
    t.classes = out.shape.empty() ? 1 : out.shape.back();
    g_.addOutput(GRAPHC_IO_OUTPUT, y);
    if (spec_.criterion) {
      auto loss = criterion(*spec_.criterion, y);
      if (!loss)
        return loss.diag();
      g_.addOutput(GRAPHC_IO_LOSS, *loss);
    }
    for (auto &[name, v] : buffers_)
      g_.addOutput(GRAPHC_IO_BUFFER + name, v);
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

  /// Module `i` of container `m` applied to `x`, with its layer path.
  Expected<Value> child(const nn::Module &m, size_t i, const Value &x, const std::string &prefix) {
    std::string outer = layerPath_;
    layerPath_ = (outer.empty() ? "" : outer + ".") + std::to_string(i + 1);
    auto y = module(m.children[i], x, prefix + std::to_string(i) + ".");
    if (!y)
      return y;
    if (!y->isTable()) {
      double elements = 1;
      for (int64_t d : g_.type(y->tensor).shape)
        elements *= d == kBatch ? 1.0 : double(d);
      if (elements > kMaxElements)
        return layerError(m.children[i],
                          fmt::format("output {} is too large", ir::str(g_.type(y->tensor).shape)));
    }
    layerPath_ = outer;
    return y;
  }

  /// Each module of a ConcatTable or Concat applied to the same input.
  Expected<std::vector<Value>> branches(const nn::Module &m, const Value &x,
                                        const std::string &prefix) {
    if (m.children.size() > 1)
      for (size_t i = 0; i < m.children.size(); ++i)
        if (std::string path; const nn::Module *h = inPlaceHead(m.children[i], path)) {
          layerPath_ = (layerPath_.empty() ? "" : layerPath_ + ".") + std::to_string(i + 1) + path;
          return layerError(*h, fmt::format("is in place: it overwrites the input that the other "
                                            "modules of {} (line {}) read too, which Torch7 "
                                            "would hand them changed; build it without "
                                            "inplace",
                                            nn::kindName(m.kind), m.loc.line));
        }
    std::vector<Value> out;
    for (size_t i = 0; i < m.children.size(); ++i) {
      auto y = child(m, i, x, prefix);
      if (!y)
        return y.diag();
      out.push_back(std::move(*y));
    }
    return out;
  }

  /// Tensors joined along Concat's or JoinTable's 1-based `dim` (negative:
  /// from the end; with nInputDims >= 0, past the batch dimension when the
  /// tensors have one more); the other dimensions must agree.
  Expected<Value> join(const nn::Module &m, const std::vector<ValueId> &parts, int64_t dim,
                       int64_t nInputDims) {
    const Shape first = g_.type(parts.at(0)).shape;
    const int rank = int(first.size());
    if (dim < 0)
      dim += rank + 1;
    else if (nInputDims >= 0 && rank == nInputDims + 1)
      ++dim;
    if (dim == 1)
      return layerError(m, "joins along the batch dimension, which graphc keeps symbolic; "
                           "join along another dimension");
    if (dim < 1 || dim > rank)
      return layerError(m, fmt::format("dimension {} is out of range for {}-dimensional "
                                       "inputs (the batch dimension first)",
                                       dim, rank));
    const int64_t axis = dim - 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      Shape s = g_.type(parts[i]).shape;
      bool ok = s.size() == first.size();
      for (size_t d = 0; ok && d < s.size(); ++d)
        ok = int64_t(d) == axis || s[d] == first[d];
      if (!ok)
        return layerError(m, fmt::format("cannot join {} and {} along dimension {}", ir::str(first),
                                         ir::str(s), dim));
    }
    if (parts.size() == 1)
      return Value(parts[0]);
    return Value(g_.add(Op::Concat, parts, {{"axis", axis}}));
  }

  Expected<Value> module(const nn::Module &m, const Value &x, const std::string &prefix) {
    switch (m.kind) {
    case nn::Kind::Sequential: {
      Value y = x;
      for (size_t i = 0; i < m.children.size(); ++i) {
        auto next = child(m, i, y, prefix);
        if (!next)
          return next;
        y = std::move(*next);
      }
      return y;
    }
    case nn::Kind::Identity: return x;
    case nn::Kind::ConcatTable: {
      auto out = branches(m, x, prefix);
      if (!out)
        return out.diag();
      return Value::table(std::move(*out));
    }
    case nn::Kind::ParallelTable: {
      if (!x.isTable())
        return layerError(m, fmt::format("expects a table of at least {} entries, got a tensor {}",
                                         m.children.size(), ir::str(g_.type(x.tensor).shape)));
      if (x.items.size() < m.children.size())
        return layerError(
            m, fmt::format("has {} modules but its input is {}", m.children.size(), describe(x)));
      std::vector<Value> out;
      for (size_t i = 0; i < m.children.size(); ++i) {
        auto y = child(m, i, x.items[i], prefix);
        if (!y)
          return y;
        out.push_back(std::move(*y));
      }
      return Value::table(std::move(out));
    }
    case nn::Kind::Concat: {
      auto out = branches(m, x, prefix);
      if (!out)
        return out.diag();
      std::vector<ValueId> parts;
      for (size_t i = 0; i < out->size(); ++i) {
        if ((*out)[i].isTable())
          return layerError(
              m, fmt::format("module {} returns {}, not a tensor", i + 1, describe((*out)[i])));
        parts.push_back((*out)[i].tensor);
      }
      if (parts.empty())
        return layerError(m, "has no modules");
      return join(m, parts, int64_t(m.args[0]), -1);
    }
    case nn::Kind::CAddTable:
    case nn::Kind::JoinTable: {
      if (!x.isTable())
        return layerError(m, fmt::format("expects a table of tensors (the output of an "
                                         "nn.ConcatTable), got a tensor {}",
                                         ir::str(g_.type(x.tensor).shape)));
      std::vector<ValueId> parts;
      for (const Value &v : x.items) {
        if (v.isTable())
          return layerError(m, fmt::format("expects a table of tensors, got {}", describe(x)));
        parts.push_back(v.tensor);
      }
      if (parts.empty())
        return layerError(m, "expects a table of at least one tensor, got an empty table");
      if (m.kind == nn::Kind::JoinTable)
        return join(m, parts, int64_t(m.args[0]), m.args.size() > 1 ? int64_t(m.args[1]) : -1);
      // Torch7 adds tensors of the first one's size, or of as many elements.
      const ir::Type first = g_.type(parts[0]);
      ValueId sum = parts[0];
      for (size_t i = 1; i < parts.size(); ++i) {
        ValueId p = parts[i];
        const ir::Type t = g_.type(p);
        if (t.shape != first.shape) {
          if (t.batched() != first.batched() || t.rowNumel() != first.rowNumel())
            return layerError(m, fmt::format("cannot add {} (entry {}) to {} (entry 1)",
                                             ir::str(t.shape), i + 1, ir::str(first.shape)));
          p = g_.add(Op::Reshape, {p}, {{"shape", first.shape}});
        }
        sum = g_.add(Op::Add, {sum, p});
      }
      return Value(sum);
    }
    default: break;
    }
    if (x.isTable())
      return layerError(m, fmt::format("expects a tensor, got {}; combine a table with "
                                       "nn.CAddTable() or nn.JoinTable(dim)",
                                       describe(x)));
    auto y = layer(m, x.tensor, prefix);
    if (!y)
      return y.diag();
    return Value(*y);
  }

  /// A layer that takes one tensor.
  Expected<ValueId> layer(const nn::Module &m, ValueId x, const std::string &prefix) {
    const auto &a = m.args;
    const ir::Type in = g_.type(x); // a copy: the graph grows below
    std::string shape = ir::str(in.shape);
    if (auto op = nn::layerInfo(m.kind).op) // an elementwise layer (frontend/layers.def)
      return g_.add(*op, {x});
    switch (m.kind) {
    case nn::Kind::Threshold: {
      ValueId above = g_.add(Op::Greater, {x, g_.constant(a[0])});
      return g_.add(Op::Select, {above, x, g_.constant(a[1])});
    }
    case nn::Kind::MulConstant: return g_.add(Op::Mul, {x, g_.constant(a[0])});
    case nn::Kind::AddConstant: return g_.add(Op::Add, {x, g_.constant(a[0])});
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
    case nn::Kind::BatchNormalization:
    case nn::Kind::SpatialBatchNormalization: return batchNorm(m, x, prefix);
    case nn::Kind::SpatialZeroPadding: {
      // Torch7: a negative size crops that side, a positive one pads it.
      if (in.rank() != 4)
        return layerError(m, fmt::format("expects input [N,C,H,W], got {}", shape));
      auto kept = [&](int64_t size, double before, double after) {
        return size + std::min(0.0, before) + std::min(0.0, after);
      };
      if (kept(in.shape[2], a[2], a[3]) < 1 || kept(in.shape[3], a[0], a[1]) < 1)
        return layerError(m, fmt::format("crops the input {} to nothing", shape));
      ValueId y = crop(x, 3, int64_t(a[0]), int64_t(a[1]));
      y = crop(y, 2, int64_t(a[2]), int64_t(a[3]));
      y = pad(y, 3, std::max<int64_t>(0, int64_t(a[0])), std::max<int64_t>(0, int64_t(a[1])), 0);
      return pad(y, 2, std::max<int64_t>(0, int64_t(a[2])), std::max<int64_t>(0, int64_t(a[3])), 0);
    }
    case nn::Kind::Padding: {
      // Torch7's dim counts past the batch dimension when the input has
      // nInputDim + 1 dimensions (graphc's always do).
      int64_t dim = int64_t(a[0]), nInputDim = int64_t(a[2]), amount = int64_t(a[1]);
      if (nInputDim >= 0 && in.rank() == nInputDim + 1)
        ++dim;
      if (dim == 1)
        return layerError(m, "pads the batch dimension, which graphc keeps symbolic; give "
                             "nInputDim so that dim counts past it");
      if (dim > in.rank())
        return layerError(m, fmt::format("dimension {} is out of range for {} (the batch "
                                         "dimension first)",
                                         dim, shape));
      return pad(x, dim - 1, amount < 0 ? -amount : 0, amount > 0 ? amount : 0, a[3]);
    }
    case nn::Kind::SpatialLPPooling: return lpPooling(m, x);
    case nn::Kind::SpatialSubtractiveNormalization: return subtractiveNormalization(m, x);
    case nn::Kind::SpatialConvolutionMap: return convolutionMap(m, x, prefix);
    case nn::Kind::SpatialMaxPooling:
    case nn::Kind::SpatialAveragePooling: {
      if (in.rank() != 4)
        return layerError(m, fmt::format("expects input [N,C,H,W], got {}", shape));
      int64_t kw = int64_t(a[0]), kh = int64_t(a[1]);
      int64_t pw = int64_t(a[4]), ph = int64_t(a[5]);
      if (2 * pw > kw || 2 * ph > kh)
        return layerError(m, "padding must be at most half the kernel size");
      if (in.shape[2] + 2 * ph < kh || in.shape[3] + 2 * pw < kw)
        return layerError(m,
                          fmt::format("window {}x{} is larger than the input {}", kw, kh, shape));
      int64_t sh = int64_t(a[3]), sw = int64_t(a[2]);
      ir::Attrs attrs{{"kernel", std::vector<int64_t>{kh, kw}},
                      {"stride", std::vector<int64_t>{sh, sw}},
                      {"pad", std::vector<int64_t>{ph, pw}}};
      if (m.ceil) {
        // Torch7's ceil mode rounds the window count up, then drops a last
        // window that would start in the padding; pad_end pads the bottom
        // and right just enough for the windows that this adds.
        // THNN drops it in both dimensions when either is padded (`if (padW
        // || padH)`; PyTorch drops it always).
        const bool padded = ph > 0 || pw > 0;
        auto windows = [padded](int64_t in, int64_t k, int64_t s, int64_t p) {
          int64_t n = (in + 2 * p - k + s - 1) / s + 1;
          if (padded && (n - 1) * s >= in + p)
            --n;
          return n;
        };
        int64_t nh = windows(in.shape[2], kh, sh, ph), nw = windows(in.shape[3], kw, sw, pw);
        // Without padding Torch7 keeps a last window that starts past the
        // input (a kernel smaller than the stride), which pools nothing.
        if ((nh - 1) * sh - ph >= in.shape[2] || (nw - 1) * sw - pw >= in.shape[3])
          return layerError(m, fmt::format("ceil mode (:ceil()) on input {} makes a last window "
                                           "that starts past the input, which pools nothing "
                                           "(a kernel smaller than its stride): drop :ceil()",
                                           shape));
        int64_t eh = std::max<int64_t>(0, (nh - 1) * sh + kh - in.shape[2] - 2 * ph);
        int64_t ew = std::max<int64_t>(0, (nw - 1) * sw + kw - in.shape[3] - 2 * pw);
        if (eh > 0 || ew > 0)
          attrs.set("pad_end", std::vector<int64_t>{eh, ew});
      }
      return g_.add(m.kind == nn::Kind::SpatialMaxPooling ? Op::MaxPool2d : Op::AvgPool2d, {x},
                    attrs);
    }
    default: break;
    }
    return layerError(m, "cannot be traced");
  }

  /// A constant tensor of `shape`, row-major `values`.
  ValueId constTensor(Shape shape, std::vector<double> values) {
    return g_.add(Op::ConstTensor, {},
                  {{"shape", std::move(shape)}, {"values", std::move(values)}});
  }

  /// Torch7's SpatialLPPooling: Power(p), SpatialAveragePooling, MulConstant(kW kH),
  /// Power(1/p); for p = 2 Square and Sqrt, whose gradient Torch7 sets to 0
  /// where the result is 0 (an all-zero window).
  Expected<ValueId> lpPooling(const nn::Module &m, ValueId x) {
    const ir::Type in = g_.type(x);
    const auto &a = m.args;
    const double p = a[1];
    const int64_t kw = int64_t(a[2]), kh = int64_t(a[3]);
    if (in.rank() != 4)
      return layerError(m, fmt::format("expects input [N,C,H,W], got {}", ir::str(in.shape)));
    if (in.shape[2] < kh || in.shape[3] < kw)
      return layerError(
          m, fmt::format("window {}x{} is larger than the input {}", kw, kh, ir::str(in.shape)));
    ValueId y = p == 2 ? g_.add(Op::Square, {x}) : g_.add(Op::Pow, {x, g_.constant(p)});
    y = g_.add(Op::AvgPool2d, {y},
               {{"kernel", std::vector<int64_t>{kh, kw}},
                {"stride", std::vector<int64_t>{int64_t(a[5]), int64_t(a[4])}},
                {"pad", std::vector<int64_t>{0, 0}}});
    y = g_.add(Op::Mul, {y, g_.constant(double(kw * kh))});
    if (p != 2)
      return g_.add(Op::Pow, {y, g_.constant(1 / p)});
    // sqrt(y + (y == 0)) (y > 0): sqrt(y) where y > 0, else 0 with a zero gradient.
    ValueId positive = g_.add(Op::Greater, {y, g_.constant(0.0)});
    ValueId zero = g_.add(Op::Sub, {g_.constant(1.0), positive});
    return g_.add(Op::Mul, {g_.add(Op::Sqrt, {g_.add(Op::Add, {y, zero})}), positive});
  }

  /// Torch7's SpatialSubtractiveNormalization: x minus its local mean, the
  /// zero-padded convolution of every plane with the kernel normalised to
  /// sum 1/nInputPlane (a 1-D kernel k applied along both axes: k k^T),
  /// divided by that convolution of an all-ones input (which corrects the
  /// borders, where part of the kernel falls in the padding).
  Expected<ValueId> subtractiveNormalization(const nn::Module &m, ValueId x) {
    const ir::Type in = g_.type(x);
    const int64_t c = int64_t(m.args[0]);
    if (in.rank() != 4 || in.shape[1] != c)
      return layerError(m, fmt::format("expects input [N,{},H,W], got {}", c, ir::str(in.shape)));
    nn::TensorArg k = m.tensor ? *m.tensor : nn::TensorArg{{9, 9}, std::vector<double>(81, 1.0)};
    const bool separable = k.sizes.size() == 1;
    const int64_t kh = k.sizes[0], kw = separable ? kh : k.sizes[1];
    double sum = 0;
    for (double v : k.values)
      sum += v;
    const double norm = sum * double(c);
    // weight [1, c, kh, kw], the same for every plane
    std::vector<double> w;
    for (int64_t p = 0; p < c; ++p)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          w.push_back(separable ? (k.values[size_t(i)] / norm) * (k.values[size_t(j)] / norm)
                                : k.values[size_t(i * kw + j)] / norm);
    const int64_t h = in.shape[2], wd = in.shape[3], ph = kh / 2, pw = kw / 2;
    // coef [1, H, W]: the convolution of ones, over the planes
    std::vector<double> coef(size_t(h * wd), 0.0);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < wd; ++xx) {
        double s = 0;
        for (int64_t p = 0; p < c; ++p)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              int64_t yi = y + i - ph, xj = xx + j - pw;
              if (yi >= 0 && yi < h && xj >= 0 && xj < wd)
                s += w[size_t((p * kh + i) * kw + j)];
            }
        coef[size_t(y * wd + xx)] = s;
      }
    ValueId weight = constTensor({1, c, kh, kw}, std::move(w));
    ValueId sums =
        g_.add(Op::Conv2d, {x, weight},
               {{"stride", std::vector<int64_t>{1, 1}}, {"pad", std::vector<int64_t>{ph, pw}}});
    ValueId mean = g_.add(Op::Div, {sums, constTensor({1, h, wd}, std::move(coef))});
    return g_.add(Op::Sub, {x, mean});
  }

  /// Torch7's SpatialConvolutionMap: output plane o is bias[o] plus, for each
  /// connection k = (i, o) of the table, input plane i correlated with
  /// weight[k]. Lowered as a full convolution whose weight [nOut, nIn, kH,
  /// kW] is built from the compact one by a constant 0/1 matrix (a reshape
  /// for nn.tables.full's order), so that gradients reach the compact weight.
  Expected<ValueId> convolutionMap(const nn::Module &m, ValueId x, const std::string &prefix) {
    const ir::Type in = g_.type(x);
    const auto &a = m.args;
    const nn::TensorArg &table = *m.tensor;
    auto [conns, nIn, nOut] = tableSizes(table);
    const int64_t kw = int64_t(a[0]), kh = int64_t(a[1]);
    if (in.rank() != 4)
      return layerError(m, fmt::format("expects input [N,{},H,W], got {}", nIn, ir::str(in.shape)));
    if (in.shape[1] != nIn)
      return layerError(m, fmt::format("its table connects {} input planes, got {} (input {})", nIn,
                                       in.shape[1], ir::str(in.shape)));
    if (in.shape[2] < kh || in.shape[3] < kw)
      return layerError(
          m, fmt::format("kernel {}x{} is larger than the input {}", kw, kh, ir::str(in.shape)));
    ValueId w = param(prefix + "weight"), b = param(prefix + "bias");
    bool full = conns == nIn * nOut;
    for (int64_t k = 0; full && k < conns; ++k)
      full = int64_t(table.values[size_t(2 * k)]) == k % nIn + 1 &&
             int64_t(table.values[size_t(2 * k + 1)]) == k / nIn + 1;
    ValueId weight;
    if (full) {
      weight = g_.add(Op::Reshape, {w}, {{"shape", Shape{nOut, nIn, kh, kw}}});
    } else {
      // scatter [nOut nIn, conns]: row (o, i) has a 1 in column k for each connection k = (i, o)
      std::vector<double> scatter(size_t(nOut * nIn * conns), 0.0);
      for (int64_t k = 0; k < conns; ++k) {
        int64_t i = int64_t(table.values[size_t(2 * k)]) - 1;
        int64_t o = int64_t(table.values[size_t(2 * k + 1)]) - 1;
        scatter[size_t((o * nIn + i) * conns + k)] += 1;
      }
      ValueId flat = g_.add(Op::Reshape, {w}, {{"shape", Shape{conns, kh * kw}}});
      ValueId dense =
          g_.add(Op::MatMul, {constTensor({nOut * nIn, conns}, std::move(scatter)), flat});
      weight = g_.add(Op::Reshape, {dense}, {{"shape", Shape{nOut, nIn, kh, kw}}});
    }
    ValueId y = g_.add(Op::Conv2d, {x, weight},
                       {{"stride", std::vector<int64_t>{int64_t(a[3]), int64_t(a[2])}},
                        {"pad", std::vector<int64_t>{0, 0}}});
    return g_.add(Op::Add, {y, g_.add(Op::Reshape, {b}, {{"shape", Shape{nOut, 1, 1}}})});
  }

  /// `x` without -before entries before and -after entries after along
  /// `axis` where those are negative (Torch7's narrow).
  ValueId crop(ValueId x, int64_t axis, int64_t before, int64_t after) {
    int64_t from = std::max<int64_t>(0, -before), cut = from + std::max<int64_t>(0, -after);
    if (cut == 0)
      return x;
    int64_t size = g_.type(x).shape[size_t(axis)] - cut;
    return g_.add(Op::Slice, {x}, {{"axis", axis}, {"start", from}, {"size", size}});
  }

  /// `x` with `before` and `after` entries of `value` along `axis`: a
  /// concat with constants, whose gradient is the slice of x's part.
  ValueId pad(ValueId x, int64_t axis, int64_t before, int64_t after, double value) {
    std::vector<ValueId> parts;
    auto filler = [&](int64_t size) {
      Shape s = g_.type(x).shape;
      s[size_t(axis)] = size;
      return g_.add(Op::Broadcast, {g_.constant(value)}, {{"shape", s}});
    };
    if (before > 0)
      parts.push_back(filler(before));
    parts.push_back(x);
    if (after > 0)
      parts.push_back(filler(after));
    if (parts.size() == 1)
      return x;
    return g_.add(Op::Concat, parts, {{"axis", axis}});
  }

  /// Torch7's BatchNormalization over [N, C] and SpatialBatchNormalization
  /// over [N, C, H, W]: training normalises with the batch's mean and biased
  /// variance and moves the running statistics by `momentum` (the variance
  /// unbiased); evaluation normalises with the running statistics.
  Expected<ValueId> batchNorm(const nn::Module &m, ValueId x, const std::string &prefix) {
    const ir::Type in = g_.type(x);
    const bool spatial = m.kind == nn::Kind::SpatialBatchNormalization;
    const int64_t c = int64_t(m.args[0]);
    const double eps = m.args[1], momentum = m.args[2];
    if (in.rank() != (spatial ? 4 : 2) || in.shape[1] != c) {
      const char *hint = !spatial && in.rank() == 4  ? " (nn.SpatialBatchNormalization "
                                                       "normalises planes)"
                         : spatial && in.rank() == 2 ? " (nn.BatchNormalization normalises "
                                                       "features)"
                                                     : "";
      return layerError(m, fmt::format("expects input [N,{}{}], got {}{}", c, spatial ? ",H,W" : "",
                                       ir::str(in.shape), hint));
    }
    // A [C] tensor against x: [C,1,1] for planes.
    auto perChannel = [&](ValueId v) {
      return spatial ? g_.add(Op::Reshape, {v}, {{"shape", Shape{c, 1, 1}}}) : v;
    };
    auto invStd = [&](ValueId var) {
      return g_.add(Op::Div, {g_.constant(1.0),
                              g_.add(Op::Sqrt, {g_.add(Op::Add, {var, g_.constant(eps)})})});
    };
    ValueId mean = param(prefix + "running_mean"), var = param(prefix + "running_var");
    ValueId y;
    if (opt_.training) {
      std::vector<int64_t> axes = spatial ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
      ValueId batchMean = g_.add(Op::ReduceMean, {x}, {{"axes", axes}});
      ValueId d = g_.add(Op::Sub, {x, perChannel(batchMean)});
      ValueId batchVar = g_.add(Op::ReduceMean, {g_.add(Op::Square, {d})}, {{"axes", axes}});
      y = g_.add(Op::Mul, {d, perChannel(invStd(batchVar))});
      // running = (1 - momentum) running + momentum batch, the variance
      // unbiased over the n = N H W values of a channel (n - 1 kept >= 1).
      ValueId n = g_.add(Op::BatchSize, {x});
      if (spatial)
        n = g_.add(Op::Mul, {n, g_.constant(double(in.shape[2] * in.shape[3]))});
      ValueId unbias =
          g_.add(Op::Div,
                 {n, g_.add(Op::Max, {g_.add(Op::Sub, {n, g_.constant(1.0)}), g_.constant(1.0)})});
      auto move = [&](ValueId running, ValueId batch) {
        return g_.add(Op::Add, {g_.add(Op::Mul, {g_.constant(1 - momentum), running}),
                                g_.add(Op::Mul, {g_.constant(momentum), batch})});
      };
      buffers_.push_back({prefix + "running_mean", move(mean, batchMean)});
      buffers_.push_back({prefix + "running_var", move(var, g_.add(Op::Mul, {batchVar, unbias}))});
    } else {
      y = g_.add(Op::Mul, {g_.add(Op::Sub, {x, perChannel(mean)}), perChannel(invStd(var))});
    }
    if (m.args[3] != 0)
      y = g_.add(Op::Add, {g_.add(Op::Mul, {y, perChannel(param(prefix + "weight"))}),
                           perChannel(param(prefix + "bias"))});
    return y;
  }

  Expected<ValueId> criterion(const nn::Criterion &c, ValueId y) {
    auto loss = averaged(c, y);
    if (!loss || c.sizeAverage)
      return loss;
    // sizeAverage = false: the sum, the mean times the values averaged.
    ValueId count = g_.add(Op::BatchSize, {y});
    if (c.kind == nn::CriterionKind::MSE)
      count = g_.add(Op::Mul, {count, g_.constant(double(g_.type(y).shape[1]))});
    return g_.add(Op::Mul, {*loss, count});
  }

  Expected<ValueId> averaged(const nn::Criterion &c, ValueId y) {
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
  std::vector<std::pair<std::string, ValueId>> buffers_; ///< new running statistics
};

} // namespace

Expected<std::vector<ParamInfo>> paramLayout(const nn::Module &model) {
  std::vector<ParamInfo> out, buffers;
  int64_t offset = 0;
  layout(model, "", out, buffers, offset);
  for (ParamInfo &b : buffers) {
    if (offset < 0 || double(offset) + double(b.numel()) > kMaxElements) {
      offset = -1;
      break;
    }
    b.offset = offset;
    offset += b.numel();
    out.push_back(std::move(b));
  }
  if (offset < 0)
    return error(fmt::format("the model has more than {} parameters", int64_t(kMaxElements)));
  return out;
}

Expected<Traced> trace(const nn::ModelSpec &spec, const Shape &sample,
                       const TraceOptions &options) {
  return Tracer(spec, options).run(sample);
}

} // namespace graphc::frontend
