// frontend/nn.h - a Torch7-style module tree, built from C++ or a model file.
//
//   nn::Sequential m;
//   m.add(nn::View(1024)).add(nn::Linear(1024, 1000)).add(nn::ReLU());
//
// A module is plain data: its kind, its constructor arguments as Torch7 takes
// them, and where it was written in a model file (for error messages). The
// tracer (frontend/Trace.h) turns a tree plus criterion and optimizer into IR.
#pragma once

#include "ir/Error.h"
#include "ir/Op.h"
#include "ir/Type.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace graphc::nn {

/// Where something was written in a model file; line 0 when built in C++.
struct SourceLoc {
  int line = 0;
  int col = 0;
};

/// A layer kind: one per line of frontend/layers.def.
enum class Kind {
#define GRAPHC_LAYER(K, ...) K,
#include "frontend/layers.def"
#undef GRAPHC_LAYER
};

/// What frontend/layers.def says of a layer kind (its columns).
struct LayerInfo {
  Kind kind;
  const char *name;      ///< Torch7's class name without "nn.": "Linear"
  const char *methods;   ///< "Module", "Container", "Pooling" or "AvgPooling"
  bool cudnn;            ///< cudnn.X exists too
  const char *paramRule; ///< its parameters' sizes in LuaTorch7.cpp's `paramRules`, or ""
  size_t minArgs, maxArgs;
  const char *params;       ///< the constructor's signature: "(inputSize, outputSize)"
  size_t unlisted;          ///< optional arguments left out of messages
  bool t7;                  ///< read from .t7 files
  std::optional<ir::Op> op; ///< the one elementwise op the layer applies, if that is all it does
};

struct Module;

/// Every layer, in layers.def's order.
const std::vector<LayerInfo> &layers();
const LayerInfo &layerInfo(Kind k);
/// The layer of a Torch7 class name, "Linear" or "nn.Linear".
const LayerInfo *findLayer(std::string_view name);
/// A module of kind `k` with constructor arguments `args` (Torch7's order).
Module layer(Kind k, std::vector<double> args = {});

/// Torch7's name of a module kind, e.g. "nn.Linear".
std::string kindName(Kind k);

/// A parameter's initial values as a script set them (`m.weight:normal(0,
/// 0.01)`, `:uniform(a, b)`, `:zero()`, `:fill(v)`, `m:reset(stdv)`): uniform
/// in [a, b] (a constant when a == b), or normal with mean a and deviation b.
struct Init {
  bool normal = false;
  double a = 0, b = 0;
};

/// A tensor a script hands a layer by value (a kernel, a connection table):
/// its sizes and its elements, row-major.
struct TensorArg {
  std::vector<int64_t> sizes;
  std::vector<double> values;
  std::string str() const; ///< "tensor 9x9"
};

struct Module {
  Kind kind = Kind::Sequential;
  std::vector<double> args;         ///< constructor arguments, in Torch7's order
  std::optional<TensorArg> tensor;  ///< the tensor argument (SpatialSubtractiveNormalization's
                                    ///< kernel, SpatialConvolutionMap's connection table)
  std::vector<Module> children;     ///< the modules of a container
  bool inplace = false;             ///< built in place (`nn.ReLU(true)`): writes into its input
  bool ceil = false;                ///< pooling in ceil mode (`:ceil()`): the last window may
                                    ///< hang over the edge
  std::map<std::string, Init> init; ///< "weight", "bias": set by the script, else Torch7's reset()
  SourceLoc loc;

  /// The constructor call as written: `nn.Linear(1000, 10)`.
  std::string str() const;
  /// Adds a module to a container; returns the container so calls chain.
  Module &add(Module m) {
    children.push_back(std::move(m));
    return *this;
  }
};

/// Whether a module holds others: Sequential, ConcatTable, ParallelTable, Concat.
bool isContainer(Kind k);

/// `nn.Sequential()`; `add` returns the container so calls chain.
struct Sequential : Module {
  Sequential() { kind = Kind::Sequential; }
  Sequential &add(Module m) {
    children.push_back(std::move(m));
    return *this;
  }
};

Module View(int64_t n);
Module Reshape(std::vector<int64_t> dims);
Module Linear(int64_t in, int64_t out);
Module ReLU();
Module Tanh();
Module Sigmoid();
Module SoftMax();
Module LogSoftMax();
Module Dropout(double p = 0.5);
/// nn.SpatialConvolution(nIn, nOut, kW, kH, dW=1, dH=1, padW=0, padH=padW).
Module SpatialConvolution(int64_t nIn, int64_t nOut, int64_t kW, int64_t kH, int64_t dW = 1,
                          int64_t dH = 1, int64_t padW = 0, int64_t padH = -1);
Module SpatialConvolutionMM(int64_t nIn, int64_t nOut, int64_t kW, int64_t kH, int64_t dW = 1,
                            int64_t dH = 1, int64_t padW = 0, int64_t padH = -1);
/// nn.SpatialMaxPooling(kW, kH, dW=kW, dH=kH, padW=0, padH=0).
Module SpatialMaxPooling(int64_t kW, int64_t kH, int64_t dW = -1, int64_t dH = -1, int64_t padW = 0,
                         int64_t padH = 0);
Module Identity();
/// nn.Threshold(th=1e-6, v=0, ip=false): y = x > th ? x : v.
Module Threshold(double th = 1e-6, double v = 0, bool inplace = false);
/// nn.MulConstant(c, ip=false): y = c x.
Module MulConstant(double c, bool inplace = false);
/// nn.AddConstant(c, ip=false): y = x + c.
Module AddConstant(double c, bool inplace = false);
/// nn.ConcatTable(): each module applied to the same input; the outputs as a table.
Module ConcatTable();
/// nn.ParallelTable(): module i applied to entry i of a table.
Module ParallelTable();
/// nn.CAddTable(ip=false): the sum of a table's tensors.
Module CAddTable(bool inplace = false);
/// nn.Concat(dim): each module applied to the same input; the outputs joined along dim (1-based).
Module Concat(int64_t dim);
/// nn.JoinTable(dim, nInputDims): a table's tensors joined along dim (1-based; with
/// nInputDims, dim counts from after the batch dimension of a batched input).
Module JoinTable(int64_t dim, int64_t nInputDims = -1);
/// nn.SpatialAveragePooling(kW, kH, dW=1, dH=1, padW=0, padH=0): Torch7's
/// defaults, count_include_pad and floor mode (each window's sum / (kW kH)).
Module SpatialAveragePooling(int64_t kW, int64_t kH, int64_t dW = 1, int64_t dH = 1,
                             int64_t padW = 0, int64_t padH = 0);
/// nn.BatchNormalization(nOutput, eps=1e-5, momentum=0.1, affine=true) over
/// [N, nOutput]: batch statistics while training, the running mean and
/// (unbiased) variance kept with `momentum` for evaluation.
Module BatchNormalization(int64_t nOutput, double eps = 1e-5, double momentum = 0.1,
                          bool affine = true);
/// nn.SpatialZeroPadding(l, r=l, t=l, b=l): zeros around each plane (left,
/// right, top, bottom); a negative size crops that side, as Torch7's does.
Module SpatialZeroPadding(int64_t l, int64_t r, int64_t t, int64_t b);
/// nn.Padding(dim, pad, nInputDim, value=0): |pad| entries of `value` added
/// along dim (1-based; counted after the batch dimension when the input has
/// nInputDim + 1 dimensions), before the input when pad < 0, after it when > 0.
Module Padding(int64_t dim, int64_t pad, int64_t nInputDim = -1, double value = 0);
/// nn.SpatialLPPooling(nInputPlane, pnorm, kW, kH, dW=kW, dH=kH): Torch7's
/// Power(p) (Square for p = 2), SpatialAveragePooling(kW, kH, dW, dH),
/// MulConstant(kW kH), Power(1/p) (Sqrt).
Module SpatialLPPooling(int64_t nInputPlane, double pnorm, int64_t kW, int64_t kH, int64_t dW = -1,
                        int64_t dH = -1);
/// nn.SpatialSubtractiveNormalization(nInputPlane=1, kernel=9x9 ones): the
/// input minus its local mean over every plane, weighted by the (1-D:
/// separable) kernel, divided at the borders by the kernel's weight that
/// falls inside the image (Torch7's coefficients).
Module SpatialSubtractiveNormalization(int64_t nInputPlane = 1,
                                       std::optional<TensorArg> kernel = std::nullopt);
/// nn.SpatialConvolutionMap(connTable, kW, kH, dW=1, dH=1): planes connected
/// as the [nConnections, 2] table says (input, output; 1-based); weight
/// [nConnections, kH, kW], bias [nOutputPlane].
Module SpatialConvolutionMap(TensorArg connTable, int64_t kW, int64_t kH, int64_t dW = 1,
                             int64_t dH = 1);
/// nn.tables.full(nin, nout) and nn.tables.oneToOne(n): Torch7's connection tables.
TensorArg fullTable(int64_t nin, int64_t nout);
TensorArg oneToOneTable(int64_t n);

/// nn.SpatialBatchNormalization(nOutput, eps, momentum, affine) over [N, nOutput, H, W],
/// with statistics per plane.
Module SpatialBatchNormalization(int64_t nOutput, double eps = 1e-5, double momentum = 0.1,
                                 bool affine = true);

enum class CriterionKind { ClassNLL, CrossEntropy, MSE };

struct Criterion {
  CriterionKind kind = CriterionKind::ClassNLL;
  SourceLoc loc;
  /// Torch7's: the mean over the batch (MSE: over every element); false: the sum.
  bool sizeAverage = true;
  std::string str() const; ///< `nn.ClassNLLCriterion()`
};

/// `optim.sgd`, `optim.adagrad`, `optim.adam`, `optim.rmsprop`, `optim.adadelta` or
/// `optim.nag` with its config table.
struct Optimizer {
  std::string name = "adagrad";
  std::map<std::string, double> config; ///< as written; defaults filled later
  SourceLoc loc;
};

/// Everything a model file (or a C++ program) says about a training run.
struct ModelSpec {
  Sequential model;
  std::optional<Criterion> criterion;
  std::optional<Optimizer> optimizer;
  std::optional<ir::Shape> input; ///< per-sample shape, from `input = {1, 32, 32}`
  std::string file;               ///< the model file, for diagnostics
  SourceLoc modelLoc;             ///< where `model` was assigned
};

/// The per-sample input shape the model's first layer fixes: `nn.View(n)`
/// or `nn.Reshape(n)` (or several sizes), or `nn.Linear(in, out)` (a flat
/// sample of `in` values). A first convolution fixes its channels but not
/// the image size: an error located at the layer that suggests `--input`.
/// Any other first layer: an error asking for `--input`.
Expected<ir::Shape> inferSampleShape(const ModelSpec &spec);

} // namespace graphc::nn
