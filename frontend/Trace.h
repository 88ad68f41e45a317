// frontend/Trace.h - a module tree, its criterion and an input shape, traced
// into the forward-and-loss IR graph.
//
// The graph takes `x` f32[N, sample...], `labels` i32[N], the flat parameter
// buffer `params` f32[P] (every weight and bias is a `param` view into it,
// DESIGN.md decision 2) and, when Dropout is active, a step `seed` i32[]. It
// returns `loss` (the criterion, a mean over the batch) and `output` (the
// model's last layer). Shape errors name the layer, its position and both
// shapes, located at the layer's constructor in the model file.
#pragma once

#include "frontend/nn.h"
#include "ir/Graph.h"
#include "ir/ModelInfo.h"

#include <string>
#include <vector>

namespace graphc::frontend {

/// One parameter tensor's place in the flat buffer (ir/ModelInfo.h).
using ir::ParamInfo;
/// Torch7's initial parameters (ir/ModelInfo.h).
using ir::initParams;

struct TraceOptions {
  bool training = true; ///< Dropout active (model:training())
};

struct Traced {
  ir::Graph graph;
  std::vector<ParamInfo> params;
  int64_t numParams = 0; ///< size of the flat buffer
  ir::Shape sample;      ///< per-sample input shape
  int64_t classes = 0;   ///< size of the model's last dimension
};

/// Traces `spec` for inputs of per-sample shape `sample` (no batch dim).
Expected<Traced> trace(const nn::ModelSpec &spec, const ir::Shape &sample,
                       const TraceOptions &options = {});

/// The flat-buffer layout of a module tree's parameters, in state_dict order;
/// an error when the model is too large to address.
Expected<std::vector<ParamInfo>> paramLayout(const nn::Module &model);

} // namespace graphc::frontend
