// tests/memory_estimate_test.cpp - the memory a model needs, known before
// anything is allocated: the estimate's parts against the compiled model's
// own sizes, and models too large for the limit refused with an error
// instead of std::bad_alloc.
#include "driver/Compile.h"
#include "driver/Memory.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>

using namespace graphc;
using namespace graphc::driver;

namespace {

/// View(in), Linear(in, out), LogSoftMax with adam (two state slots).
nn::ModelSpec linear(int64_t in, int64_t out, const std::string &optimizer = "adam") {
  nn::ModelSpec spec;
  spec.model.add(nn::View(in)).add(nn::Linear(in, out)).add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{};
  spec.optimizer = nn::Optimizer{optimizer, {}, {}};
  spec.file = "linear.model";
  return spec;
}

bool contains(const std::string &s, const std::string &part) {
  INFO(s);
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("the memory estimate adds up the compiled model's buffers", "[memory]") {
  passes::PipelineOptions po;
  po.planBatch = 64;
  auto c = compile(linear(100, 10), {100}, po);
  REQUIRE(c);
  const runtime::CompiledModel &m = c->model;
  MemoryEstimate e = estimateMemory(m);
  CHECK(e.batch == 64);
  CHECK(e.params == 1010 * 4);
  CHECK(e.slots == 2); // adam: m and v
  CHECK(e.optimizerState == 2 * 1010 * 4);
  CHECK(e.stepArena == uint64_t(m.stepPlan.arenaBytes));
  CHECK(e.predictArena == uint64_t(m.predictPlan.arenaBytes));
  CHECK(e.stepArena > 0);
  CHECK(e.other == 64 * 10 * 4 + 1010 * 4); // outputs, initial values
  CHECK(e.total() == e.params + e.optimizerState + e.stepArena + e.predictArena + e.other);
  CHECK(contains(e.str(), "parameters 3.9 KiB, optimizer state 7.9 KiB (2 slots), training "
                          "step's intermediates at batch 64"));

  // The arenas grow with the batch the plans are made for.
  po.planBatch = 256;
  auto big = compile(linear(100, 10), {100}, po);
  REQUIRE(big);
  CHECK(estimateMemory(big->model).stepArena > e.stepArena);

  // Evaluation only: no optimizer state, no step.
  auto eval = compileForEvaluation(linear(100, 10), {100}, po);
  REQUIRE(eval);
  MemoryEstimate ee = estimateMemory(eval->model);
  CHECK(ee.optimizerState == 0);
  CHECK(ee.stepArena == 0);
  CHECK(ee.params == 1010 * 4);
}

TEST_CASE("a model above the limit is refused before anything is allocated", "[memory]") {
  passes::PipelineOptions po;
  po.planBatch = 8;
  auto c = compile(linear(100, 10), {100}, po);
  REQUIRE(c);
  MemoryEstimate e = estimateMemory(c->model);
  CHECK(checkMemory(e, {e.total(), "a limit"}));
  Status over = checkMemory(e, {e.total() - 1, "a limit"});
  REQUIRE(!over);
  CHECK(contains(over.diag().message,
                 "the model needs about " + formatBytes(e.total()) + ": parameters 3.9 KiB"));
  CHECK(contains(over.diag().message, "more than a limit"));
  CHECK(checkMemory(e, {0, ""})); // no limit known

  MemoryLimit flag = memoryLimit(12345);
  CHECK(flag.bytes == 12345);
  CHECK(flag.source == "--max-memory 12.1 KiB");
  MemoryLimit machine = memoryLimit(0);
  CHECK(machine.bytes > 0); // Linux says what is available
  CHECK(!machine.source.empty());

  BuildOptions o;
  o.target = "interp";
  o.maxBatch = 8;
  o.maxMemory = e.total() - 1;
  auto refused = build(linear(100, 10), {100}, o);
  REQUIRE(!refused);
  CHECK(contains(refused.diag().message, "more than --max-memory"));
  o.maxMemory = e.total();
  CHECK(build(linear(100, 10), {100}, o));
}

TEST_CASE("a layer of 10^11 parameters is an error, not std::bad_alloc", "[memory]") {
  // nn.Linear(1024, 100000000): 410 GB of weights, more than any test machine.
  for (const char *target : {"interp", "cpu"}) {
    INFO(target);
    BuildOptions o;
    o.target = target;
    o.maxBatch = 256;
    auto exe = build(linear(1024, 100000000, "adagrad"), {1024}, o);
    REQUIRE(!exe);
    CHECK(contains(exe.diag().message, "the model needs about"));
    CHECK(contains(exe.diag().message, "parameters 381.8 GiB"));
  }
}
