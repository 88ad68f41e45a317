// tests/Isas.h - the vector ISAs the CPU checks run under.
#pragma once

#include "codegen/cpu/Jit.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace graphc::test {

/// Every vector ISA this CPU executes: the CPU checks run under each, so
/// an AVX-512 machine tests the AVX2 and generic code too.
inline std::vector<std::string> runnableIsas() {
  std::vector<std::string> out;
  for (const auto &t : codegen::cpu::vectorTargets()) {
    if (codegen::cpu::hostRuns(t))
      out.push_back(t.name);
    else
      WARN("skipped " << t.name << ": this CPU cannot execute its code");
  }
  return out;
}

} // namespace graphc::test
