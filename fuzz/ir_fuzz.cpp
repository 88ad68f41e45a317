// fuzz/ir_fuzz.cpp - the IR text parser on any bytes. What parses is
// verified, printed and parsed again: the printer's text must parse.
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  auto g = graphc::ir::parseGraph(text, "fuzz.ir");
  if (!g)
    return 0;
  (void)graphc::ir::verify(*g);
  std::string printed = graphc::ir::print(*g);
  auto again = graphc::ir::parseGraph(printed, "fuzz.printed.ir");
  if (!again) {
    std::fprintf(stderr, "printed IR does not parse:\n%s\n", printed.c_str());
    std::abort();
  }
  return 0;
}
