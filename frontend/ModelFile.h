// frontend/ModelFile.h - the `.model` language: the Lua subset a Torch7 user
// already writes (DESIGN.md, "The model file").
//
// A small evaluator, not a Lua implementation: it runs the statements in
// order over numbers, strings, booleans, tables and nn/optim constructors,
// and reports anything outside the subset (loops, functions, `if`) as an
// error naming the construct and its line.
#pragma once

#include "frontend/nn.h"
#include "ir/Error.h"

#include <string>
#include <string_view>

namespace graphc::frontend {

/// Evaluates model-file text; `file` names it in diagnostics.
Expected<nn::ModelSpec> parseModel(std::string_view text, const std::string &file);

/// Reads and evaluates a model file from disk. With GRAPHC_MODEL_EVALUATOR=lua
/// in the environment, runs it in the embedded Lua instead (LuaModel.h);
/// `subset` (or unset) is this evaluator, anything else an error.
Expected<nn::ModelSpec> loadModel(const std::string &path);

} // namespace graphc::frontend
