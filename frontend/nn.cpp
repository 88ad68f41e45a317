// frontend/nn.cpp - module constructors with Torch7's defaults.
#include "frontend/nn.h"

#include <fmt/format.h>

namespace graphc::nn {
namespace {

Module make(Kind k, std::vector<double> args) {
  Module m;
  m.kind = k;
  m.args = std::move(args);
  return m;
}

} // namespace

std::string kindName(Kind k) {
  switch (k) {
  case Kind::Sequential: return "nn.Sequential";
  case Kind::View: return "nn.View";
  case Kind::Reshape: return "nn.Reshape";
  case Kind::Linear: return "nn.Linear";
  case Kind::ReLU: return "nn.ReLU";
  case Kind::Tanh: return "nn.Tanh";
  case Kind::Sigmoid: return "nn.Sigmoid";
  case Kind::SoftMax: return "nn.SoftMax";
  case Kind::LogSoftMax: return "nn.LogSoftMax";
  case Kind::Dropout: return "nn.Dropout";
  case Kind::SpatialConvolution: return "nn.SpatialConvolution";
  case Kind::SpatialConvolutionMM: return "nn.SpatialConvolutionMM";
  case Kind::SpatialMaxPooling: return "nn.SpatialMaxPooling";
  }
  return "nn.?";
}

std::string Module::str() const {
  std::vector<std::string> parts;
  for (double a : args)
    parts.push_back(fmt::format("{}", a));
  return fmt::format("{}({})", kindName(kind), fmt::join(parts, ", "));
}

std::string Criterion::str() const {
  switch (kind) {
  case CriterionKind::ClassNLL: return "nn.ClassNLLCriterion()";
  case CriterionKind::CrossEntropy: return "nn.CrossEntropyCriterion()";
  case CriterionKind::MSE: return "nn.MSECriterion()";
  }
  return "nn.?Criterion()";
}

Module View(int64_t n) { return make(Kind::View, {double(n)}); }
Module Reshape(std::vector<int64_t> dims) {
  return make(Kind::Reshape, std::vector<double>(dims.begin(), dims.end()));
}
Module Linear(int64_t in, int64_t out) {
  return make(Kind::Linear, {double(in), double(out)});
}
Module ReLU() { return make(Kind::ReLU, {}); }
Module Tanh() { return make(Kind::Tanh, {}); }
Module Sigmoid() { return make(Kind::Sigmoid, {}); }
Module SoftMax() { return make(Kind::SoftMax, {}); }
Module LogSoftMax() { return make(Kind::LogSoftMax, {}); }
Module Dropout(double p) { return make(Kind::Dropout, {p}); }

Module SpatialConvolution(int64_t nIn, int64_t nOut, int64_t kW, int64_t kH,
                          int64_t dW, int64_t dH, int64_t padW, int64_t padH) {
  return make(Kind::SpatialConvolution,
              {double(nIn), double(nOut), double(kW), double(kH), double(dW),
               double(dH), double(padW), double(padH < 0 ? padW : padH)});
}

Module SpatialConvolutionMM(int64_t nIn, int64_t nOut, int64_t kW, int64_t kH,
                            int64_t dW, int64_t dH, int64_t padW, int64_t padH) {
  Module m = SpatialConvolution(nIn, nOut, kW, kH, dW, dH, padW, padH);
  m.kind = Kind::SpatialConvolutionMM;
  return m;
}

Module SpatialMaxPooling(int64_t kW, int64_t kH, int64_t dW, int64_t dH,
                         int64_t padW, int64_t padH) {
  return make(Kind::SpatialMaxPooling,
              {double(kW), double(kH), double(dW < 0 ? kW : dW),
               double(dH < 0 ? kH : dH), double(padW), double(padH)});
}

} // namespace graphc::nn
