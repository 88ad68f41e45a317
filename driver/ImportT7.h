// driver/ImportT7.h - trained Torch7 networks (torch.save(path, model)) into
// graphc: the module tree as a model spec and a model file, the weights as
// a flat parameter buffer under PyTorch's state_dict names.
//
// The file is read by the safe reader (runtime/T7.h): nothing in it runs.
// Modules are recognised by class name (nn.X, and cudnn.X where Torch7 has
// one) and read from the fields Torch7's modules keep (weight, bias, kW,
// padH, size, p, ...); torch.CudaTensor weights are read as host data.
#pragma once

#include "frontend/nn.h"
#include "ir/Error.h"

#include <string>
#include <vector>

namespace graphc::driver {

struct ImportedModel {
  nn::ModelSpec spec;        ///< the network; criterion and optimizer for fine-tuning
  std::vector<float> params; ///< the flat buffer, in frontend::paramLayout's order
  std::string modelFile;     ///< a model file (Lua) that rebuilds spec.model
};

/// Reads a .t7 file holding an nn module tree. An unsupported module is an
/// error naming its class and its place in the tree
/// (`root.modules[3].modules[2]`); so are weights of the wrong size.
Expected<ImportedModel> importT7(const std::string &path);

} // namespace graphc::driver
