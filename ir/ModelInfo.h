// ir/ModelInfo.h - what every backend, executable and library knows about a
// traced model: the flat parameter layout with PyTorch's names, Torch7's
// initial values, the input and output sizes and the optimizer in effect.
//
// Plain data below the tracer and the passes, so that the runtime and the
// ahead-of-time writer need neither (DESIGN.md: `ir` is the bottom layer).
#pragma once

#include "ir/Type.h"

#include <cstdint>
#include <string>
#include <vector>

namespace graphc::ir {

/// One parameter tensor's place in the flat buffer.
struct ParamInfo {
  std::string name; ///< PyTorch state_dict name: "1.weight", "1.bias", ...
  int64_t offset;   ///< first element in the flat buffer
  Shape shape;
  double initBound;        ///< Torch7 reset(): uniform in [-bound, bound] ...
  double initShift = 0;    ///< ... plus this (BatchNorm: weight U(0,1), running_var 1)
  bool trainable = true;   ///< false: a buffer the step updates itself (BatchNorm's running
                           ///< statistics), after every trainable tensor in the flat buffer
  bool initNormal = false; ///< instead: normal, mean initShift, deviation initBound (a script's
                           ///< `:normal()`)

  int64_t numel() const;
};

/// Torch7's initial parameters: each tensor uniform in ±initBound plus
/// initShift, from `seed`.
std::vector<float> initParams(const std::vector<ParamInfo> &layout, uint64_t seed);

/// The optimizer as executables and libraries report it.
struct OptimizerSummary {
  std::string text; ///< `optim.adagrad {learningRate = 0.001, ...}`
  double learningRate = 0;

  const std::string &str() const { return text; }
};

/// The elements of the flat buffer the optimizer updates: every trainable
/// tensor, which come before the buffers.
int64_t trainableNumel(const std::vector<ParamInfo> &layout);

struct ModelInfo {
  std::string name;              ///< e.g. "mlp"
  std::vector<ParamInfo> params; ///< flat-buffer layout, state_dict names
  int64_t numParams = 0;
  Shape sample;        ///< per-sample input shape
  int64_t classes = 0; ///< width of the output
  OptimizerSummary optimizer;
  std::vector<std::string> stateSlots; ///< optimizer state buffers, by name
  bool hasDropout = false;
};

} // namespace graphc::ir
