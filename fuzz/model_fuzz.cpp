// fuzz/model_fuzz.cpp - the model-file evaluator on any bytes: every input
// is evaluated, and what evaluates is traced to IR and verified. Errors come
// back as Expected; nothing may crash, hang or leak.
#include "frontend/ModelFile.h"
#include "frontend/Trace.h"
#include "ir/Verifier.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  auto spec = graphc::frontend::parseModel(text, "fuzz.model");
  if (!spec)
    return 0;
  graphc::ir::Shape sample = spec->input ? *spec->input : graphc::ir::Shape{1, 28, 28};
  auto traced = graphc::frontend::trace(*spec, sample);
  if (traced)
    (void)graphc::ir::verify(traced->graph);
  return 0;
}
