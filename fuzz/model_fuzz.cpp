// fuzz/model_fuzz.cpp - the model-file reader, the embedded, sandboxed Lua
// (frontend/ModelFile.h), on any bytes, with small limits so that each input
// ends quickly: every input runs, and what it builds is traced to IR and
// verified. Errors come back as Expected; nothing may crash, hang, leak or
// escape the sandbox. The model's folder does not exist, so require and
// dofile find nothing to read.
#include "frontend/ModelFile.h"
#include "frontend/Trace.h"
#include "ir/Verifier.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  graphc::frontend::LuaLimits limits;
  limits.memoryBytes = size_t(64) << 20;
  limits.instructions = 2'000'000;
  limits.seconds = 2;
  auto spec = graphc::frontend::parseModel(text, "/nonexistent/graphc-fuzz/fuzz.lua", limits);
  if (!spec)
    return 0;
  graphc::ir::Shape sample = spec->input ? *spec->input : graphc::ir::Shape{1, 28, 28};
  auto traced = graphc::frontend::trace(*spec, sample);
  if (traced)
    (void)graphc::ir::verify(traced->graph);
  return 0;
}
