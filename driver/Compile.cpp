// driver/Compile.cpp - trace both graphs, run both pipelines, pick the
// target's executor.
#include "driver/Compile.h"

#include "codegen/KernelPlan.h"
#include "driver/Memory.h"
#include "driver/Targets.h"
#include "frontend/Trace.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "ir/graphc_io.h"

#include <fmt/format.h>

#include <cstdlib>

#include <map>

namespace graphc::driver {

std::string defaultCacheDir() {
  if (const char *d = std::getenv("GRAPHC_CACHE_DIR"); d && *d)
    return d;
  if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/graphc";
  if (const char *h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/graphc";
  return "";
}

namespace {

/// The optimizer's settings, an error located at `optimizer = ...`.
Expected<passes::OptimizerConfig> optimizerOf(const nn::ModelSpec &spec) {
  auto opt = passes::OptimizerConfig::fromTorch(spec.optimizer->name, spec.optimizer->config);
  if (!opt) {
    Diag d = opt.diag();
    d.file = spec.file;
    d.line = spec.optimizer->loc.line;
    d.col = spec.optimizer->loc.col;
    return d;
  }
  return opt;
}

/// The model traced for an executable. Evaluation, the metrics and the
/// executables' output buffers take one row of class scores per sample, so
/// an output of another rank is an error here, located at the model.
Expected<frontend::Traced> traceClassifier(const nn::ModelSpec &spec, const ir::Shape &sample,
                                           bool training) {
  auto t = frontend::trace(spec, sample, {.training = training});
  if (!t)
    return t.diag();
  const ir::Type &out = t->graph.type(t->graph.output(GRAPHC_IO_OUTPUT));
  if (out.rank() == 2)
    return t;
  Diag d;
  d.file = spec.file;
  d.line = spec.modelLoc.line;
  d.col = spec.modelLoc.col;
  d.message = fmt::format("the model's output is {}, not [N,classes]: a graphc model ends in one "
                          "score (or log-probability) per class; flatten it with nn.View({}) and "
                          "map it to the classes, e.g. with nn.Linear",
                          ir::str(out.shape), out.rowNumel());
  return d;
}

/// The evaluation graph through its pipeline: only the model's output is
/// kept, so labels and the Dropout seed go.
Expected<passes::Pipeline> evaluationPipeline(const nn::ModelSpec &spec, const ir::Shape &sample,
                                              passes::PipelineOptions options,
                                              frontend::Traced *traced) {
  auto eval = traceClassifier(spec, sample, false);
  if (!eval)
    return eval.diag();
  ir::Graph fwd = eval->graph;
  std::vector<ir::Output> outs;
  for (const ir::Output &o : fwd.outputs())
    if (o.name == "output")
      outs.push_back(o);
  fwd.outputs() = outs;
  options.training = false;
  options.label = "evaluation";
  auto p = passes::runPipeline(fwd, passes::OptimizerConfig{}, options);
  if (p && traced)
    *traced = std::move(*eval);
  return p;
}

runtime::ModelInfo infoOf(const frontend::Traced &t, const ir::Shape &sample) {
  runtime::ModelInfo info;
  info.name = t.graph.name();
  info.params = t.params;
  info.numParams = t.numParams;
  info.sample = sample;
  info.classes = t.classes;
  return info;
}

} // namespace

Expected<Compilation> compile(const nn::ModelSpec &spec, const ir::Shape &sample,
                              const passes::PipelineOptions &options, bool split) {
  GRAPHC_CHECK(spec.criterion && spec.optimizer, "a training model needs a "
                                                 "criterion and an optimizer");
  auto opt = optimizerOf(spec);
  if (!opt)
    return opt.diag();
  if (split && opt->name == "nag") {
    Diag d = error("optim.nag takes its gradient at a look-ahead point that moves with every "
                   "update, so it cannot be split into gradients and update for data-parallel "
                   "training (--distributed); use optim.sgd with nesterov = true");
    d.file = spec.file;
    d.line = spec.optimizer->loc.line;
    d.col = spec.optimizer->loc.col;
    return d;
  }
  auto train = traceClassifier(spec, sample, true);
  if (!train)
    return train.diag();

  Compilation c;
  c.traced = train->graph;
  if (options.verify)
    if (Status v = ir::verify(c.traced); !v)
      GRAPHC_CHECK(false, "after trace: {}", v.diag().message);
  std::string traced;
  if (options.printAfter.count("all") || options.printAfter.count("trace"))
    traced = fmt::format("// ----- IR after trace -----\n{}", ir::print(c.traced));
  c.model.info = infoOf(*train, sample);
  c.model.info.optimizer = {opt->str(), opt->learningRate};
  c.model.info.stateSlots = opt->stateSlots();
  c.model.info.hasDropout = train->graph.findInput("seed") >= 0;
  if (options.stopAfter == "trace") {
    c.step.printed = traced;
    return c;
  }

  auto step = passes::runPipeline(train->graph, *opt, options);
  if (!step)
    return step.diag();
  c.step = std::move(*step);
  c.step.printed = traced + c.step.printed;
  auto predict = evaluationPipeline(spec, sample, options, nullptr);
  if (!predict)
    return predict.diag();
  c.predict = std::move(*predict);
  c.model.step = c.step.step;
  c.model.stepPlan = c.step.plan;
  c.model.predict = c.predict.step;
  c.model.predictPlan = c.predict.plan;
  if (split) {
    // The two halves of the step, printed and stopped nowhere.
    passes::PipelineOptions half = options;
    half.printBefore.clear();
    half.printAfter.clear();
    half.stopAfter.clear();
    half.program = passes::PipelineOptions::Program::Gradients;
    half.label = "gradients";
    auto gradients = passes::runPipeline(train->graph, *opt, half);
    if (!gradients)
      return gradients.diag();
    half.program = passes::PipelineOptions::Program::Update;
    half.label = "update";
    auto update = passes::runPipeline(train->graph, *opt, half);
    if (!update)
      return update.diag();
    c.model.gradients = std::move(gradients->step);
    c.model.gradientsPlan = std::move(gradients->plan);
    c.model.update = std::move(update->step);
    c.model.updatePlan = std::move(update->plan);
  }
  return c;
}

Expected<Compilation> compileForEvaluation(const nn::ModelSpec &spec, const ir::Shape &sample,
                                           const passes::PipelineOptions &options) {
  frontend::Traced traced;
  auto predict = evaluationPipeline(spec, sample, options, &traced);
  if (!predict)
    return predict.diag();
  Compilation c;
  c.model.info = infoOf(traced, sample);
  c.model.info.hasDropout = false;
  c.predict = std::move(*predict);
  c.model.predict = c.predict.step;
  c.model.predictPlan = c.predict.plan;
  return c;
}

Expected<std::unique_ptr<runtime::Executable>>
build(const nn::ModelSpec &spec, const ir::Shape &sample, const BuildOptions &options) {
  passes::PipelineOptions po;
  po.planBatch = options.maxBatch;
  po.fuseReductions = options.fuseReductions.value_or(options.target != "cuda");
  po.fusePools = options.target != "cuda";
  auto c = compile(spec, sample, po, options.split);
  if (!c)
    return c.diag();
  return buildCompiled(std::move(c->model), options);
}

Expected<std::unique_ptr<runtime::Executable>> buildCompiled(runtime::CompiledModel model,
                                                             const BuildOptions &options) {
  const Target *target = findTarget(options.target);
  if (!target)
    return error(fmt::format("--target {}: this graphc has no such target (available: {})",
                             options.target, fmt::join(targetNames(), ", ")));
  if (!target->makeExecutable)
    return error(fmt::format("--target {}: {}", target->name, target->missing));
  if (Status s = checkMemory(estimateMemory(model), memoryLimit(options.maxMemory)); !s)
    return s.diag();
  std::vector<float> init = ir::initParams(model.info.params, options.seed);
  auto exe = target->makeExecutable(std::move(model), options);
  if (!exe)
    return exe.diag();
  std::copy(init.begin(), init.begin() + (*exe)->info().numParams, (*exe)->params());
  (*exe)->setSeed(options.seed);
  return exe;
}

Expected<ir::Shape> sampleShape(const nn::ModelSpec &spec, const ir::Shape &flag) {
  if (!flag.empty())
    return flag;
  if (spec.input)
    return *spec.input;
  return nn::inferSampleShape(spec);
}

Expected<ir::Shape> imageSampleShape(const nn::ModelSpec &spec, int64_t rows, int64_t cols) {
  ir::Shape direct{1, rows, cols};
  auto t = traceClassifier(spec, direct, false);
  if (t)
    return direct;
  ir::Shape padded{1, rows + 4, cols + 4};
  if (traceClassifier(spec, padded, false))
    return padded;
  return t.diag();
}

std::string describeKernels(const ir::Graph &g) {
  std::map<std::string, int> epilogues;
  int gemms = 0;
  for (const codegen::KernelPlan &k : codegen::planKernels(g, codegen::storedValues(g))) {
    if (k.kind != codegen::KernelKind::Gemm)
      continue;
    ++gemms;
    if (!k.epilogue.empty() || k.colsum >= 0)
      ++epilogues[g.groups()[size_t(k.group)].reason];
  }
  std::vector<std::string> parts;
  for (const auto &[reason, n] : epilogues)
    parts.push_back(fmt::format("{} x {}", n, reason));
  return fmt::format("{} kernel groups, {} GEMMs{}", g.groups().size(), gemms,
                     parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, "; ")));
}

} // namespace graphc::driver
