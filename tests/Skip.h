// tests/Skip.h - a test case that cannot run here says so and is counted as
// skipped, never as passed.
//
// Debian's Catch2 (2.13) has no SKIP(). skipTestCase() prints the reason and
// marks the running test case; tests/catch_main.cpp counts the marked cases
// and, like Catch2 3, exits with 4 when every test case of the run was
// skipped and nothing failed. ctest runs one test case per test
// (catch_discover_tests) with SKIP_RETURN_CODE 4, so it reports Skipped.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

namespace graphc::test {

/// Test cases run and skipped so far in this process.
struct SkipCounts {
  bool current = false; ///< the running test case called skipTestCase
  int64_t ran = 0, skipped = 0;
};

inline SkipCounts &skipCounts() {
  static SkipCounts counts;
  return counts;
}

/// Marks the running test case skipped, saying why; the caller then returns.
/// Only for a test case that cannot run at all: a failed check still fails it.
inline void skipTestCase(const std::string &reason) {
  skipCounts().current = true;
  WARN("skipped: " << reason);
}

} // namespace graphc::test
