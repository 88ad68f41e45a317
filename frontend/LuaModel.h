// frontend/LuaModel.h - what the two halves of the model-file Lua share:
// LuaModel.cpp (the sandbox, and the C++ side that checks the layers'
// arguments) hands the layer table to the Lua modules of LuaTorch7.cpp, so a
// layer's Torch7 name is written once, in LuaModel.cpp's table.
#pragma once

namespace graphc::frontend {

/// The Lua source of graphc's Torch7 modules (LuaTorch7.cpp). The chunk takes
/// (getinfo, loadUserFile, _G, loadstring, writeStderr, layers, criteria) and
/// returns `collect`; `layers` maps each nn.X name to its methods ("Module",
/// "Container" or "Pooling"), whether cudnn has it too and the rule that
/// sizes its parameters; `criteria` lists the criterion names.
const char *torch7Prelude();

} // namespace graphc::frontend
