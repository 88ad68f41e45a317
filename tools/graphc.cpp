// tools/graphc.cpp - the command line: `graphc compile`, and later `train`/`eval`.
//
// Every user error arrives here as a Diag and is printed as one
// `file:line:col: error: message` line on stderr with exit code 1.
#include "frontend/ModelFile.h"
#include "frontend/Trace.h"
#include "ir/Dot.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Pipeline.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <fstream>

using namespace graphc;

namespace {

int report(const Diag &d) {
  std::fprintf(stderr, "%s\n", d.str().c_str());
  return 1;
}

/// "1x32x32" -> {1, 32, 32}.
Expected<ir::Shape> parseShape(const std::string &text) {
  ir::Shape shape;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('x', pos);
    if (end == std::string::npos)
      end = text.size();
    int64_t d = 0;
    auto [p, ec] = std::from_chars(text.data() + pos, text.data() + end, d);
    if (ec != std::errc() || p != text.data() + end || d < 1 || d > (1 << 24))
      return error(fmt::format("--input: expected sizes like 1x32x32, got {}",
                               quote(text)));
    shape.push_back(d);
    pos = end + 1;
  }
  return shape;
}

struct CompileOptions {
  std::string model;
  std::string input;
  bool printIr = false;
  std::vector<std::string> printAfter, printBefore;
  bool printAfterAll = false;
  std::string stopAfter;
  bool stats = false;
  std::string dot;
  int64_t planBatch = 256;
};

Expected<passes::OptimizerConfig> optimizerConfig(const nn::ModelSpec &spec) {
  auto cfg = passes::OptimizerConfig::fromTorch(spec.optimizer->name,
                                                spec.optimizer->config);
  if (!cfg) {
    Diag d = cfg.diag();
    d.file = spec.file;
    d.line = spec.optimizer->loc.line;
    d.col = spec.optimizer->loc.col;
    return d;
  }
  return cfg;
}

/// Writes `text` to `path` through a temporary file and a rename.
Status writeFileAtomic(const std::string &path, const std::string &text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    if (!f.flush())
      return error(fmt::format("cannot write {}", path));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return error(fmt::format("cannot write {}", path));
  return {};
}

/// Loads the model file and checks that it defines a full training setup.
Expected<nn::ModelSpec> loadTrainingSpec(const std::string &path) {
  auto spec = frontend::loadModel(path);
  if (!spec)
    return spec;
  auto missing = [&](const char *what, const char *example) {
    Diag d;
    d.file = path;
    d.line = std::max(spec->modelLoc.line, 1);
    d.col = 1;
    d.message = fmt::format("no {} defined; add e.g. `{}`", what, example);
    return d;
  };
  if (!spec->criterion)
    return missing("criterion", "criterion = nn.ClassNLLCriterion()");
  if (!spec->optimizer)
    return missing("optimizer", "optimizer = optim.adagrad");
  return spec;
}

Expected<ir::Shape> sampleShape(const nn::ModelSpec &spec, const std::string &flag) {
  if (!flag.empty())
    return parseShape(flag);
  if (spec.input)
    return *spec.input;
  Diag d;
  d.file = spec.file;
  d.line = std::max(spec.modelLoc.line, 1);
  d.col = 1;
  d.message = "no input shape: pass --input 1x32x32 or add `input = {1, 32, 32}`";
  return d;
}

int runCompile(const CompileOptions &o) {
  auto spec = loadTrainingSpec(o.model);
  if (!spec)
    return report(spec.diag());
  auto sample = sampleShape(*spec, o.input);
  if (!sample)
    return report(sample.diag());
  auto traced = frontend::trace(*spec, *sample);
  if (!traced)
    return report(traced.diag());
  if (auto s = ir::verify(traced->graph); !s)
    return report(s.diag());
  if (o.printIr)
    std::fputs(ir::print(traced->graph).c_str(), stdout);

  passes::PipelineOptions po;
  po.printAfter.insert(o.printAfter.begin(), o.printAfter.end());
  po.printBefore.insert(o.printBefore.begin(), o.printBefore.end());
  if (o.printAfterAll)
    po.printAfter.insert("all");
  for (auto [names, flag] : {std::pair{&po.printAfter, "--print-after"},
                             std::pair{&po.printBefore, "--print-before"}})
    if (Status s = passes::checkPassNames(*names, flag); !s)
      return report(s.diag());
  if (!o.stopAfter.empty())
    if (Status s = passes::checkPassNames({o.stopAfter}, "--stop-after"); !s)
      return report(s.diag());
  po.stopAfter = o.stopAfter;
  po.planBatch = o.planBatch;
  auto cfg = optimizerConfig(*spec);
  if (!cfg)
    return report(cfg.diag());
  auto p = passes::runPipeline(traced->graph, *cfg, po);
  if (!p)
    return report(p.diag());
  if (po.printAfter.count("all"))
    std::fputs(fmt::format("// ----- IR after trace -----\n{}",
                           ir::print(traced->graph)).c_str(), stdout);
  std::fputs(p->printed.c_str(), stdout);
  if (o.stats)
    std::fputs(passes::formatStats(*p).c_str(), stdout);
  if (!o.dot.empty())
    if (Status s = writeFileAtomic(o.dot, ir::toDot(p->step)); !s)
      return report(s.diag());
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"graphc - compiles Torch7-style nn.Sequential models, their loss "
               "and optimizer into fused training code"};
  app.require_subcommand(1);

  CompileOptions co;
  auto *compile = app.add_subcommand(
      "compile", "Trace a model file into the IR and compile it");
  compile->add_option("model", co.model, "the .model file")->required();
  compile->add_option("--input", co.input,
                      "per-sample input shape, e.g. 1x32x32 (default: the "
                      "model file's `input = {...}`)");
  compile->add_flag("--print-ir", co.printIr,
                    "print the traced forward-and-loss graph");
  compile->add_option("--print-after", co.printAfter,
                      "print the IR after these passes (autodiff, optimizer, "
                      "canonicalize, fusion, memplan, or all)")
      ->delimiter(',');
  compile->add_option("--print-before", co.printBefore,
                      "print the IR before these passes")
      ->delimiter(',');
  compile->add_flag("--print-after-all", co.printAfterAll,
                    "print the IR after tracing and after every pass");
  compile->add_option("--stop-after", co.stopAfter,
                      "run the passes up to and including this one");
  compile->add_flag("--stats", co.stats,
                    "per pass: nodes before and after, kernel groups, planned "
                    "bytes and time");
  compile->add_option("--dot", co.dot,
                      "write the final graph as Graphviz, kernel groups as "
                      "clusters");
  compile->add_option("--plan-batch", co.planBatch,
                      "the batch size the memory plan is made for")
      ->default_val(256)
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  if (compile->parsed())
    return runCompile(co);
  return 0;
}
