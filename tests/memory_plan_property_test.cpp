// tests/memory_plan_property_test.cpp - memory plans checked as properties,
// not at the one batch the developers happen to use: every model in tests/
// and examples/ planned at every batch from 1 to 300 and each plan put to
// the independent checker (passes/PlanCheck.h); a CPU step with the plan
// bitwise equal to one where every buffer has its own bytes; and batch 100,
// as `graphc train --batch 100` builds it, against the interpreter.
//
// The interpreter keeps each value in its own tensor and never reads a
// plan, so the plan-against-no-reuse comparison runs on the CPU target. The
// cuda target takes the same plans (checked as they are made) but needs a
// GPU to run them; no comparison is made for it here.
#include "TestUtil.h"
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "frontend/ModelFile.h"
#include "ir/Printer.h"
#include "passes/PlanCheck.h"
#include "runtime/Dataset.h"
#include "JitRunner.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

using namespace graphc;
using namespace graphc::ir;

namespace {

struct NamedModel {
  std::string name;
  nn::ModelSpec spec;
  Shape sample;
};

/// The coverage models of tests/TestUtil.h and every examples/*.model, with
/// the sample shape `graphc train` gives each on 28x28 images.
std::vector<NamedModel> everyModel() {
  std::vector<NamedModel> out;
  for (auto &[name, spec] : test::coverageModels())
    out.push_back({name, spec, {1, 32, 32}});
  std::vector<std::filesystem::path> files;
  for (const auto &e :
       std::filesystem::directory_iterator(std::string(GRAPHC_SOURCE_DIR) + "/examples"))
    if (e.path().extension() == ".model")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto &f : files) {
    auto spec = frontend::loadModel(f.string());
    INFO(f.string() << ": " << (spec ? "" : spec.diag().str()));
    REQUIRE(bool(spec));
    auto sample =
        spec->input ? Expected<Shape>(*spec->input) : driver::imageSampleShape(*spec, 28, 28);
    REQUIRE(bool(sample));
    out.push_back({"examples/" + f.filename().string(), *spec, *sample});
  }
  REQUIRE(out.size() >= 7);
  return out;
}

runtime::CompiledModel compile(const NamedModel &m) {
  auto c = driver::compile(m.spec, m.sample);
  INFO(m.name << ": " << (c ? "" : c.diag().str()));
  REQUIRE(bool(c));
  return std::move(c->model);
}

/// Graph inputs and outputs as raw 32-bit words, named as JitRunner::run wants.
using Buffers = std::map<std::string, std::vector<uint32_t>>;

/// Deterministic inputs of step graph `g` at batch `n`: parameters in
/// +-0.1, valid labels, small positive optimizer state.
Buffers stepInputs(const Graph &g, int64_t classes, int64_t n) {
  std::mt19937 rng{uint32_t(n)};
  std::uniform_real_distribution<float> unit(0, 1);
  std::uniform_int_distribution<int32_t> label(0, int32_t(classes) - 1);
  Buffers in;
  for (ValueId v : g.inputs()) {
    std::string name = g.node(v).attrs.s("name");
    std::vector<uint32_t> &w = in[name];
    w.resize(size_t(g.type(v).numel(n)));
    for (size_t i = 0; i < w.size(); ++i) {
      if (name == "labels")
        w[i] = std::bit_cast<uint32_t>(label(rng));
      else if (name == "seed")
        w[i] = std::bit_cast<uint32_t>(int32_t(12345));
      else if (name == "step")
        w[i] = std::bit_cast<uint32_t>(3.0f);
      else if (name == "params")
        w[i] = std::bit_cast<uint32_t>(0.2f * unit(rng) - 0.1f);
      else if (name.rfind("state.", 0) == 0)
        w[i] = std::bit_cast<uint32_t>(0.01f * unit(rng));
      else
        w[i] = std::bit_cast<uint32_t>(unit(rng));
    }
  }
  return in;
}

/// Runs compiled program `p` at batch `n` on copies of `inputs`; its outputs.
Buffers runStep(test::JitRunner &runner, codegen::cpu::Program &p, Buffers inputs, int64_t n) {
  Buffers out;
  std::map<std::string, void *> io;
  for (auto &[name, w] : inputs)
    io[name] = w.data();
  for (const Output &o : p.graph.outputs()) {
    out[o.name].assign(size_t(p.graph.type(o.value).numel(n)), 0x7fc00bad);
    io["out:" + o.name] = out[o.name].data();
  }
  runner.run(p, io, n);
  return out;
}

/// "" when `a` and `b` are bitwise equal, else where they first differ.
std::string firstDifference(const Buffers &a, const Buffers &b) {
  for (const auto &[name, wa] : a) {
    const std::vector<uint32_t> &wb = b.at(name);
    auto [ia, ib] = std::mismatch(wa.begin(), wa.end(), wb.begin(), wb.end());
    if (ia == wa.end() && ib == wb.end())
      continue;
    size_t i = size_t(ia - wa.begin());
    std::ostringstream s;
    s << "output " << name << " (" << wa.size() << " words) differs first at " << i;
    if (i < wa.size() && i < wb.size())
      s << ": " << std::bit_cast<float>(wa[i]) << " with the plan, " << std::bit_cast<float>(wb[i])
        << " with every buffer its own";
    return s.str();
  }
  return "";
}

} // namespace

TEST_CASE("every model's plans pass the checker at every batch from 1 to 300", "[plan]") {
  std::ostringstream report;
  int64_t plans = 0, problems = 0;
  const std::vector<NamedModel> models = everyModel();
  for (const NamedModel &m : models) {
    runtime::CompiledModel c = compile(m);
    int64_t modelProblems = 0;
    std::vector<int64_t> badBatches;
    std::string first;
    for (int64_t batch = 1; batch <= 300; ++batch)
      for (const Graph *g : {&c.step, &c.predict})
        for (auto placement : {passes::Placement::Reuse, passes::Placement::Separate}) {
          passes::MemoryPlan plan = passes::planMemory(*g, batch, placement);
          std::vector<std::string> found = passes::planProblems(*g, plan);
          ++plans;
          if (found.empty())
            continue;
          modelProblems += int64_t(found.size());
          if (badBatches.empty() || badBatches.back() != batch)
            badBatches.push_back(batch);
          if (first.empty())
            first = fmt::format("@{} at batch {}: {}", g->name(), batch, found.front());
        }
    problems += modelProblems;
    report << m.name << ": " << modelProblems << " problems";
    if (!badBatches.empty())
      report << " at " << badBatches.size() << " batches (first " << badBatches.front() << "); "
             << first;
    report << "\n";
  }
  INFO(plans << " plans checked\n" << report.str());
  CHECK(plans == int64_t(models.size()) * 300 * 2 * 2);
  CHECK(problems == 0);
}

TEST_CASE("the checker finds overlaps, misplaced buffers and illegal sharing", "[plan]") {
  NamedModel small = everyModel()[1];
  REQUIRE(small.name == "small relu mlp");
  runtime::CompiledModel c = compile(small);
  const Graph &g = c.step;
  const passes::MemoryPlan good = passes::planMemory(g, 100);
  REQUIRE(passes::planProblems(g, good).empty());
  auto expectProblem = [&](const passes::MemoryPlan &bad, const std::string &words) {
    auto found = passes::planProblems(g, bad);
    std::string all;
    for (const std::string &f : found)
      all += f + "\n";
    INFO("want a problem with '" << words << "', got:\n" << all);
    CHECK(all.find(words) != std::string::npos);
    CHECK(!passes::checkPlan(g, bad));
  };
  std::vector<ValueId> owners;
  for (ValueId v = 0; v < g.size(); ++v)
    if (good.offset[size_t(v)] >= 0)
      owners.push_back(v);
  REQUIRE(owners.size() >= 4);

  passes::MemoryPlan bad = good;
  for (ValueId v : owners)
    bad.offset[size_t(v)] = 0;
  expectProblem(bad, "are live at the same time and overlap");

  bad = good;
  bad.offset[size_t(owners[0])] += 32;
  expectProblem(bad, "is not 64-byte aligned");

  bad = good;
  bad.arenaBytes = 64;
  expectProblem(bad, "lies outside the arena");

  bad = good;
  bad.offset[size_t(owners[0])] = -1;
  expectProblem(bad, "but has no memory");

  // A kernel's result written over its own operand: only views may share.
  ValueId result = -1, operand = -1;
  for (ValueId v : owners)
    for (ValueId u = 0; u < g.size() && result < 0; ++u)
      if (g.node(u).group == g.node(v).group)
        for (ValueId i : g.node(u).inputs)
          if (good.offset[size_t(i)] >= 0 && g.node(i).group != g.node(v).group)
            result = v, operand = i;
  REQUIRE(result >= 0);
  bad = good;
  bad.offset[size_t(result)] = -1;
  bad.aliasOf[size_t(result)] = operand;
  expectProblem(bad, "cannot compute in place");

  // The overlap of issue 19, by hand: one buffer moved 64 bytes past the
  // start of another that is live at the same time.
  ValueId a = -1, b = -1;
  std::string issue;
  for (ValueId x : owners)
    for (ValueId y : owners)
      if (issue.empty() && x != y) {
        bad = good;
        bad.offset[size_t(y)] = good.offset[size_t(x)] + 64;
        for (const std::string &f : passes::planProblems(g, bad))
          if (f.find("overlap") != std::string::npos)
            issue = f, a = x, b = y;
      }
  INFO(issue);
  CHECK(issue.find(ir::valueName(g, a)) != std::string::npos);
  CHECK(issue.find(ir::valueName(g, b)) != std::string::npos);
  CHECK(issue.find("live ") != std::string::npos);
}

TEST_CASE("a CPU step with the plan is bitwise equal to one with every buffer its own",
          "[plan][cpu]") {
  const std::vector<int64_t> batches =
      test::sized<std::vector<int64_t>>({1, 3, 7, 100, 129, 257}, {1, 7, 129});
  std::set<std::string> seen; // examples/mlp.model is the seed MLP again
  for (const NamedModel &m : everyModel()) {
    runtime::CompiledModel c = compile(m);
    if (!seen.insert(print(c.step)).second)
      continue;
    // One JIT module per model: per batch, the step with its plan and the
    // step with every buffer its own.
    std::vector<codegen::cpu::Program> programs(2 * batches.size());
    std::vector<codegen::cpu::Program *> all;
    std::vector<std::string> prefixes;
    for (size_t b = 0; b < batches.size(); ++b)
      for (auto placement : {passes::Placement::Reuse, passes::Placement::Separate}) {
        codegen::cpu::Program &p = programs[all.size()];
        p.graph = c.step;
        p.plan = passes::planMemory(c.step, batches[b], placement);
        prefixes.push_back(fmt::format("b{}_{}_", batches[b], all.size() % 2));
        all.push_back(&p);
      }
    test::JitRunner runner(1);
    Status compiled = runner.compile(all, prefixes);
    INFO(m.name << ": " << (compiled ? "" : compiled.diag().str()));
    REQUIRE(bool(compiled));
    for (size_t b = 0; b < batches.size(); ++b) {
      const int64_t n = batches[b];
      codegen::cpu::Program &planned = programs[2 * b], &separate = programs[2 * b + 1];
      INFO(m.name << " at batch " << n << ": arena " << planned.plan.arenaBytes
                  << " bytes with the plan, " << separate.plan.arenaBytes << " without reuse");
      CHECK(separate.plan.arenaBytes >= planned.plan.arenaBytes);
      Buffers in = stepInputs(c.step, c.info.classes, n);
      Buffers a = runStep(runner, planned, in, n);
      CHECK(firstDifference(a, runStep(runner, separate, in, n)) == "");
      CHECK(firstDifference(a, runStep(runner, planned, in, n)) == "");
    }
  }
}

TEST_CASE("at batch 100 every example model trains on the cpu target as in the "
          "interpreter",
          "[plan][train]") {
  // Each step starts from the interpreter's parameters and optimizer state;
  // the loss, the outputs, every parameter tensor and every optimizer state
  // tensor are compared element by element to 1e-4 (maxElementError). The
  // gradients are checked through the state they update (sgd's momentum
  // holds the first gradient; adagrad's v += g^2).
  //
  // One exception, and only for adagrad: its step lr * g / (sqrt(v) + 1e-10)
  // is +-lr at the first step for any g, even one within rounding of zero
  // (raw 0-255 pixels give the seed MLP gradients in the thousands), where
  // the sign is float-against-double noise. So the parameters are allowed
  // what a gradient error of 1e-4 of the tensor's largest gradient moves
  // through that rule: lr * 1e-4 max|g| / sqrt(v), and up to 2 lr (a flip)
  // only where |g| itself is below that error. Flips are counted and must
  // be rare, so a wrong update cannot hide among them.
  constexpr int64_t kBatch = 100, kSteps = 3;
  runtime::SyntheticOptions so;
  so.train = kBatch * kSteps;
  so.test = 1;
  runtime::Dataset data = runtime::syntheticDataset(so);
  for (const NamedModel &m : everyModel()) {
    if (m.name.rfind("examples/", 0) != 0)
      continue;
    auto format = runtime::sampleFormat(data.train.rows, data.train.cols, m.sample);
    REQUIRE(bool(format));
    // As `graphc train --batch 100` builds them: the plan is made for 100.
    driver::BuildOptions bo;
    bo.maxBatch = kBatch;
    bo.threads = 1;
    auto cpu = driver::build(m.spec, m.sample, bo);
    bo.target = "interp";
    auto ref = driver::build(m.spec, m.sample, bo);
    REQUIRE(bool(cpu));
    REQUIRE(bool(ref));
    const auto &info = (*ref)->info();
    const size_t np = size_t(info.numParams);
    std::vector<float> x(size_t(kBatch * format->numel()));
    std::vector<int32_t> labels(static_cast<size_t>(kBatch));
    std::vector<float> out(size_t(kBatch * info.classes)), want(out);
    for (int64_t step = 0; step < kSteps; ++step) {
      std::vector<int64_t> idx(static_cast<size_t>(kBatch));
      std::iota(idx.begin(), idx.end(), step * kBatch);
      runtime::fillBatch(data.train, *format, idx.data(), kBatch, x.data(), labels.data());
      std::vector<float> vBefore;
      if (info.stateSlots == std::vector<std::string>{"v"})
        vBefore.assign((*ref)->state("v"), (*ref)->state("v") + np);
      float loss = 0, wantLoss = 0;
      REQUIRE(bool((*cpu)->trainStep(x.data(), labels.data(), kBatch, &loss, out.data())));
      REQUIRE(bool((*ref)->trainStep(x.data(), labels.data(), kBatch, &wantLoss, want.data())));
      INFO(m.name << " step " << step << ": loss " << loss << " on the cpu, " << wantLoss
                  << " in the interpreter");
      CHECK(std::abs(loss - wantLoss) <= 1e-4 * std::max(1.0f, std::abs(wantLoss)));
      CHECK(test::maxElementError(out.data(), want.data(), out.size()) <= 1e-4);
      const bool adagrad = info.stateSlots == std::vector<std::string>{"v"};
      const double lr = info.optimizer.learningRate;
      for (const ir::ParamInfo &p : info.params) {
        const size_t at = size_t(p.offset), n = size_t(p.numel());
        const float *got = (*cpu)->params() + at, *expect = (*ref)->params() + at;
        std::vector<float> masked(got, got + n);
        int64_t flipped = 0;
        if (adagrad) {
          // |g| from the interpreter's v before and after; the gradient is
          // taken as exact to 1e-4 of the tensor's largest, and each element
          // may differ by what that much error moves through adagrad's rule.
          const float *v = (*ref)->state("v") + at, *v0 = vBefore.data() + at;
          std::vector<double> g(n);
          for (size_t i = 0; i < n; ++i)
            g[i] = std::sqrt(std::max(0.0, double(v[i]) - double(v0[i])));
          const double noise = 1e-4 * *std::max_element(g.begin(), g.end());
          for (size_t i = 0; i < n; ++i) {
            const double apart = std::abs(double(masked[i]) - double(expect[i]));
            const double moved = lr * noise / (std::sqrt(double(v[i])) + 1e-10);
            if (g[i] <= noise && apart <= 2 * lr + 1e-7)
              flipped += apart > moved, masked[i] = expect[i];
            else if (apart <= moved)
              masked[i] = expect[i];
          }
        }
        INFO("parameter " << p.name << ": " << flipped << " of " << n
                          << " elements moved the other way, their gradient within 1e-4 of "
                             "the tensor's largest of zero");
        CHECK(test::maxElementError(masked.data(), expect, n) <= 1e-4);
        CHECK(flipped <= int64_t(n / 1000 + 2));
      }
      std::copy((*ref)->params(), (*ref)->params() + np, (*cpu)->params());
      for (const std::string &slot : info.stateSlots) {
        INFO("optimizer state " << slot);
        for (const ir::ParamInfo &p : info.params) {
          INFO("parameter " << p.name);
          CHECK(test::maxElementError((*cpu)->state(slot) + p.offset,
                                      (*ref)->state(slot) + p.offset, size_t(p.numel())) <= 1e-4);
        }
        std::copy((*ref)->state(slot), (*ref)->state(slot) + np, (*cpu)->state(slot));
      }
    }
  }
}
