// tests/Isas.h - the vector ISAs the CPU checks run under.
#pragma once

#include "TestUtil.h"
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
  // At a reduced size (the sanitizer run, whose instrumentation does not
  // reach JIT code) the best ISA only: the Release run takes every one.
  if (reducedSize() && out.size() > 1)
    out.resize(1);
  return out;
}

} // namespace graphc::test
