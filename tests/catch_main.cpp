// tests/catch_main.cpp - the Catch2 main, compiled once. Every test runs with
// memory-plan checks on (passes/PlanCheck.h), as debug builds do.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "passes/PlanCheck.h"

namespace {
const bool planChecksOn = (graphc::passes::enablePlanChecks(true), true);
} // namespace
