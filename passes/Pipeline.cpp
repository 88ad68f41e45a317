// passes/Pipeline.cpp - the list of steps, with printing and verification.
#include "passes/Pipeline.h"

#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Autodiff.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"
#include "passes/PlanCheck.h"
#include "passes/Rewrite.h"

#include <fmt/format.h>

#include <chrono>
#include <functional>

namespace graphc::passes {

using namespace ir;

const std::vector<std::string> &passNames() {
  static const std::vector<std::string> names{"autodiff", "optimizer", "canonicalize", "fusion",
                                              "memplan"};
  return names;
}

Status checkPassNames(const std::set<std::string> &names, const std::string &flag) {
  for (const std::string &n : names) {
    if (n == "all" || n == "trace")
      continue;
    const auto &all = passNames();
    if (std::find(all.begin(), all.end(), n) == all.end())
      return error(
          fmt::format("{}: unknown pass '{}'; the passes are {}", flag, n, fmt::join(all, ", ")));
  }
  return {};
}

Expected<Pipeline> runPipeline(const Graph &forward, const OptimizerConfig &opt,
                               const PipelineOptions &o) {
  Pipeline p;
  p.step = forward;
  auto wants = [](const std::set<std::string> &s, const std::string &name) {
    return s.count("all") > 0 || s.count(name) > 0;
  };
  using Step = std::function<Graph(const Graph &)>;
  const std::vector<std::pair<std::string, Step>> steps{
      {"autodiff", [](const Graph &g) { return autodiff(g); }},
      {"optimizer",
       [&](const Graph &g) {
         switch (o.program) {
         case PipelineOptions::Program::Gradients: return gradientsProgram(g);
         case PipelineOptions::Program::Update: return updateProgram(g, opt);
         default: return lowerOptimizer(g, opt);
         }
       }},
      {"canonicalize",
       [&](const Graph &g) {
         return o.training ? canonicalize(g) : rebuild(canonicalize(g), {}, true);
       }},
      {"fusion",
       [&](const Graph &g) {
         FusionResult r = fuse(g, {o.fuseReductions, o.fusePools});
         p.fusionNotes = std::move(r.notes);
         return std::move(r.graph);
       }},
      {"memplan",
       [&](const Graph &g) {
         p.plan = planMemory(g, o.planBatch);
         return g;
       }},
  };
  const std::string what = o.label.empty() ? "IR" : o.label + " IR";
  for (const auto &[name, run] : steps) {
    const bool update = o.program == PipelineOptions::Program::Update;
    if ((!o.training && (name == "autodiff" || name == "optimizer")) ||
        (o.training && update && name == "autodiff")) {
      if (name == o.stopAfter) // evaluation computes no gradient and updates nothing
        break;
      continue;
    }
    const bool printing = wants(o.printBefore, name) || wants(o.printAfter, name);
    std::string before = printing ? print(p.step) : std::string();
    if (wants(o.printBefore, name))
      p.printed += fmt::format("// ----- {} before {} -----\n{}", what, name, before);
    PassStats s;
    s.name = name;
    s.nodesBefore = p.step.size();
    auto t0 = std::chrono::steady_clock::now();
    Graph next = run(p.step);
    s.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (o.verify) {
      if (Status v = verify(next); !v) {
        Diag d = v.diag();
        d.message = fmt::format("after pass {}: {}", name, d.message);
        GRAPHC_CHECK(false, "{}", d.message);
      }
      if (name == "memplan")
        requireSoundPlan(next, p.plan);
    }
    p.step = std::move(next);
    s.nodesAfter = p.step.size();
    s.groups = int(p.step.groups().size());
    s.plannedBytes = name == "memplan" ? p.plan.arenaBytes : 0;
    p.stats.push_back(s);
    if (wants(o.printAfter, name)) {
      std::string after = print(p.step);
      p.printed += fmt::format("// ----- {} after {} -----\n", what, name);
      p.printed += after == before ? std::string("(unchanged)\n") : after;
      if (name == "fusion")
        for (const std::string &note : p.fusionNotes)
          p.printed += "// not fused: " + note + "\n";
      if (name == "memplan")
        p.printed += "// " + p.plan.summary() + "\n";
    }
    if (name == o.stopAfter)
      break;
  }
  return p;
}

std::string formatStats(const Pipeline &p) {
  std::string out = fmt::format("{:<14} {:>8} {:>8} {:>8} {:>14} {:>9}\n", "pass", "nodes in",
                                "out", "kernels", "planned bytes", "ms");
  for (const PassStats &s : p.stats)
    out += fmt::format("{:<14} {:>8} {:>8} {:>8} {:>14} {:>9.2f}\n", s.name, s.nodesBefore,
                       s.nodesAfter, s.groups,
                       s.plannedBytes ? fmt::format("{}", s.plannedBytes) : "-", s.ms);
  if (p.plan.batch > 0)
    out += p.plan.summary() + "\n";
  return out;
}

} // namespace graphc::passes
