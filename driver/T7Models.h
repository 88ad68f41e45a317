// driver/T7Models.h - trained Torch7 networks (torch.save(path, model)) in
// and out of graphc. In: the module tree as a model spec and a model file,
// the weights as a flat parameter buffer under PyTorch's state_dict names.
// Out: a network and its weights as the .t7 file torch.save would write.
//
// The file is read by the safe reader (runtime/T7.h): nothing in it runs.
// Modules are recognised by class name (nn.X, and cudnn.X where Torch7 has
// one) and read from the fields Torch7's modules keep (weight, bias, kW,
// padH, size, p, ...); torch.CudaTensor weights are read as host data.
#pragma once

#include "frontend/nn.h"
#include "ir/Error.h"
#include "runtime/T7.h"

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

/// The network as model-file Lua: `nn.Sequential():add(nn.View(1024)):add(...)`.
std::string networkLua(const nn::Module &model);

/// `model` with the flat parameters `params` (frontend::paramLayout's
/// order), as torch.save(path, model:float()[, 'ascii']) writes it: the
/// class names and the fields Torch7's modules need (weight, bias,
/// gradWeight, gradBias, output, gradInput, train, _type and each layer's
/// own: kW, padH, size, p, ...). A layer with no Torch7 writer here is an
/// error naming it.
Expected<std::vector<uint8_t>> exportT7(const nn::Module &model, const std::vector<float> &params,
                                        runtime::T7Mode mode = runtime::T7Mode::Binary);

} // namespace graphc::driver
