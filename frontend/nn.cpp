// frontend/nn.cpp - module constructors with Torch7's defaults.
#include "frontend/nn.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

namespace graphc::nn {

Module layer(Kind k, std::vector<double> args) {
  Module m;
  m.kind = k;
  m.args = std::move(args);
  return m;
}

const std::vector<LayerInfo> &layers() {
  static const std::vector<LayerInfo> table = {
#define GRAPHC_LAYER(K, methods, cudnn, rule, minArgs, maxArgs, params, unlisted, t7, op)          \
  {Kind::K, #K, methods, cudnn, rule, minArgs, maxArgs, params, unlisted, t7, op},
#include "frontend/layers.def"
#undef GRAPHC_LAYER
  };
  return table;
}

const LayerInfo &layerInfo(Kind k) { return layers()[size_t(k)]; }

const LayerInfo *findLayer(std::string_view name) {
  if (name.substr(0, 3) == "nn.")
    name.remove_prefix(3);
  for (const LayerInfo &l : layers())
    if (name == l.name)
      return &l;
  return nullptr;
}

std::string kindName(Kind k) { return std::string("nn.") + layerInfo(k).name; }

bool isContainer(Kind k) { return std::string_view(layerInfo(k).methods) == "Container"; }

std::string TensorArg::str() const { return fmt::format("tensor {}", fmt::join(sizes, "x")); }

std::string Module::str() const {
  std::vector<std::string> parts;
  for (double a : args)
    parts.push_back(fmt::format("{}", a));
  // The tensor argument in its place: the kernel second, the table first
  // (SpatialConvolutionMap's args are kW, kH, dW, dH).
  if (kind == Kind::SpatialSubtractiveNormalization && tensor)
    parts.push_back(tensor->str());
  if (kind == Kind::SpatialConvolutionMap && tensor)
    parts.insert(parts.begin(), tensor->str());
  // BatchNorm's `affine` is a Lua boolean.
  if ((kind == Kind::BatchNormalization || kind == Kind::SpatialBatchNormalization) &&
      parts.size() == 4)
    parts[3] = args[3] != 0 ? "true" : "false";
  return fmt::format("{}({}){}", kindName(kind), fmt::join(parts, ", "), ceil ? ":ceil()" : "");
}

std::string Criterion::str() const {
  switch (kind) {
  case CriterionKind::ClassNLL: return "nn.ClassNLLCriterion()";
  case CriterionKind::CrossEntropy: return "nn.CrossEntropyCriterion()";
  case CriterionKind::MSE: return "nn.MSECriterion()";
  }
  return "nn.?Criterion()";
}

Module View(int64_t n) { return layer(Kind::View, {double(n)}); }
Module Reshape(std::vector<int64_t> dims) {
  return layer(Kind::Reshape, std::vector<double>(dims.begin(), dims.end()));
}
Module Linear(int64_t in, int64_t out) { return layer(Kind::Linear, {double(in), double(out)}); }
Module ReLU() { return layer(Kind::ReLU, {}); }
Module Tanh() { return layer(Kind::Tanh, {}); }
Module Sigmoid() { return layer(Kind::Sigmoid, {}); }
Module SoftMax() { return layer(Kind::SoftMax, {}); }
Module LogSoftMax() { return layer(Kind::LogSoftMax, {}); }
Module Dropout(double p) { return layer(Kind::Dropout, {p}); }

Module SpatialConvolution(int64_t nIn, int64_t nOut, int64_t kW, int64_t kH, int64_t dW, int64_t dH,
                          int64_t padW, int64_t padH) {
  return layer(Kind::SpatialConvolution,
               {double(nIn), double(nOut), double(kW), double(kH), double(dW), double(dH),
                double(padW), double(padH < 0 ? padW : padH)});
}

Module SpatialConvolutionMM(int64_t nIn, int64_t nOut, int64_t kW, int64_t kH, int64_t dW,
                            int64_t dH, int64_t padW, int64_t padH) {
  Module m = SpatialConvolution(nIn, nOut, kW, kH, dW, dH, padW, padH);
  m.kind = Kind::SpatialConvolutionMM;
  return m;
}

Module SpatialMaxPooling(int64_t kW, int64_t kH, int64_t dW, int64_t dH, int64_t padW,
                         int64_t padH) {
  return layer(Kind::SpatialMaxPooling, {double(kW), double(kH), double(dW < 0 ? kW : dW),
                                         double(dH < 0 ? kH : dH), double(padW), double(padH)});
}

Module Identity() { return layer(Kind::Identity, {}); }

Module Threshold(double th, double v, bool inplace) {
  Module m = layer(Kind::Threshold, {th, v});
  m.inplace = inplace;
  return m;
}

Module MulConstant(double c, bool inplace) {
  Module m = layer(Kind::MulConstant, {c});
  m.inplace = inplace;
  return m;
}

Module AddConstant(double c, bool inplace) {
  Module m = layer(Kind::AddConstant, {c});
  m.inplace = inplace;
  return m;
}

Module ConcatTable() { return layer(Kind::ConcatTable, {}); }
Module ParallelTable() { return layer(Kind::ParallelTable, {}); }

Module CAddTable(bool inplace) {
  Module m = layer(Kind::CAddTable, {});
  m.inplace = inplace;
  return m;
}

Module Concat(int64_t dim) { return layer(Kind::Concat, {double(dim)}); }

Module JoinTable(int64_t dim, int64_t nInputDims) {
  if (nInputDims < 0)
    return layer(Kind::JoinTable, {double(dim)});
  return layer(Kind::JoinTable, {double(dim), double(nInputDims)});
}

Module SpatialAveragePooling(int64_t kW, int64_t kH, int64_t dW, int64_t dH, int64_t padW,
                             int64_t padH) {
  return layer(Kind::SpatialAveragePooling,
               {double(kW), double(kH), double(dW), double(dH), double(padW), double(padH)});
}

Module SpatialZeroPadding(int64_t l, int64_t r, int64_t t, int64_t b) {
  return layer(Kind::SpatialZeroPadding, {double(l), double(r), double(t), double(b)});
}

Module Padding(int64_t dim, int64_t pad, int64_t nInputDim, double value) {
  return layer(Kind::Padding, {double(dim), double(pad), double(nInputDim), value});
}

Module SpatialLPPooling(int64_t nInputPlane, double pnorm, int64_t kW, int64_t kH, int64_t dW,
                        int64_t dH) {
  return layer(Kind::SpatialLPPooling, {double(nInputPlane), pnorm, double(kW), double(kH),
                                        double(dW < 0 ? kW : dW), double(dH < 0 ? kH : dH)});
}

Module SpatialSubtractiveNormalization(int64_t nInputPlane, std::optional<TensorArg> kernel) {
  Module m = layer(Kind::SpatialSubtractiveNormalization, {double(nInputPlane)});
  m.tensor = std::move(kernel);
  return m;
}

Module SpatialConvolutionMap(TensorArg connTable, int64_t kW, int64_t kH, int64_t dW, int64_t dH) {
  Module m = layer(Kind::SpatialConvolutionMap, {double(kW), double(kH), double(dW), double(dH)});
  m.tensor = std::move(connTable);
  return m;
}

TensorArg fullTable(int64_t nin, int64_t nout) {
  TensorArg t{{nin * nout, 2}, {}};
  for (int64_t j = 1; j <= nout; ++j)
    for (int64_t i = 1; i <= nin; ++i)
      t.values.insert(t.values.end(), {double(i), double(j)});
  return t;
}

TensorArg oneToOneTable(int64_t n) {
  TensorArg t{{n, 2}, {}};
  for (int64_t i = 1; i <= n; ++i)
    t.values.insert(t.values.end(), {double(i), double(i)});
  return t;
}

Module BatchNormalization(int64_t nOutput, double eps, double momentum, bool affine) {
  return layer(Kind::BatchNormalization, {double(nOutput), eps, momentum, affine ? 1.0 : 0.0});
}

Module SpatialBatchNormalization(int64_t nOutput, double eps, double momentum, bool affine) {
  Module m = BatchNormalization(nOutput, eps, momentum, affine);
  m.kind = Kind::SpatialBatchNormalization;
  return m;
}

Expected<ir::Shape> inferSampleShape(const ModelSpec &spec) {
  auto at = [&](SourceLoc loc, std::string message) {
    Diag d;
    d.file = spec.file;
    d.line = std::max(loc.line, std::max(spec.modelLoc.line, 1));
    d.col = loc.line > 0 ? std::max(loc.col, 1) : 1;
    d.message = std::move(message);
    return d;
  };
  // The first layer that sees the input (ConcatTable's and Concat's modules all see it).
  const Module *first = &spec.model;
  while ((first->kind == Kind::Sequential || first->kind == Kind::ConcatTable ||
          first->kind == Kind::Concat) &&
         !first->children.empty())
    first = &first->children.front();
  auto whole = [](const std::vector<double> &args) {
    ir::Shape shape;
    for (double a : args) {
      if (a < 1 || a != double(int64_t(a)))
        return ir::Shape{};
      shape.push_back(int64_t(a));
    }
    return shape;
  };
  switch (first->kind) {
  case Kind::View:
  case Kind::Reshape:
    if (ir::Shape s = whole(first->args); !s.empty())
      return s;
    break;
  case Kind::Linear:
    if (ir::Shape s = whole({first->args.at(0)}); !s.empty())
      return s;
    break;
  case Kind::SpatialConvolution:
  case Kind::SpatialConvolutionMM: {
    int64_t c = int64_t(first->args.at(0));
    return at(first->loc, fmt::format("no input shape: layer 1, {}, fixes {} input "
                                      "channel{} but not the image size; pass --input "
                                      "{}x32x32 or add `input = {{{}, 32, 32}}`",
                                      first->str(), c, c == 1 ? "" : "s", c, c));
  }
  default: break;
  }
  if (first->kind == Kind::Sequential)
    return at(spec.modelLoc, "no input shape: the model has no layers");
  return at(first->loc, fmt::format("no input shape: layer 1, {}, does not fix it; "
                                    "pass --input 1x32x32 or add `input = {{1, 32, 32}}`",
                                    first->str()));
}

} // namespace graphc::nn
