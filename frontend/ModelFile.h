// frontend/ModelFile.h - model files (`.model`, a Torch7 `model.lua`): Lua
// scripts run by a real, embedded, sandboxed Lua 5.1 (Torch7's language
// level), with graphc's own nn, optim, torch, cudnn, ... modules
// (frontend/LuaTorch7.cpp) recording the module tree (DESIGN.md, "The model
// file").
//
// The sandbox: no io, os, debug or package.loadlib; require, dofile and
// loadfile reach only graphc's modules and .lua files in the model's own
// folder; precompiled bytecode is refused; memory (through the allocator),
// executed instructions and wall-clock time (through the count hook) are
// capped, and each ends the script with a located error. Lua errors never
// unwind through C++ frames: every call into Lua that can raise runs under
// lua_cpcall/lua_pcall, and the results are read back with raw, non-raising
// calls only.
#pragma once

#include "frontend/nn.h"
#include "ir/Error.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace graphc::frontend {

/// What one model script may use before it is stopped.
struct LuaLimits {
  size_t memoryBytes = size_t(512) << 20; ///< everything Lua allocates
  uint64_t instructions = 200'000'000;    ///< Lua VM instructions executed (about 1 s)
  double seconds = 10;                    ///< wall-clock time
};

/// Runs model-script text in the sandbox; `file` names it in diagnostics, and
/// its folder is where require/dofile look for the script's own .lua files.
/// `args` is the script's command line (`graphc train MODEL -- ARGS`): its
/// global `arg`, with arg[0] the file, as `th` gives it, for torch.CmdLine
/// and lapp.
Expected<nn::ModelSpec> parseModel(std::string_view text, const std::string &file,
                                   const LuaLimits &limits = {},
                                   const std::vector<std::string> &args = {});

/// A model file's text; an error for a folder, an unreadable file or one
/// above 64 MiB.
Expected<std::string> readModelText(const std::string &path);

/// Reads a model file from disk and runs it in the sandbox.
Expected<nn::ModelSpec> loadModel(const std::string &path, const LuaLimits &limits = {},
                                  const std::vector<std::string> &args = {});

} // namespace graphc::frontend
