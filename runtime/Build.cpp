// runtime/Build.cpp - trace, passes, backend.
#include "runtime/Build.h"

#include "frontend/Trace.h"
#include "ir/Random.h"
#include "passes/Canonicalize.h"
#include "passes/Fusion.h"
#include "passes/PlanCheck.h"
#include "passes/Rewrite.h"

#include <fmt/format.h>

#ifdef GRAPHC_HAVE_CUDA
#include "codegen/cuda/AotProgram.h"
#include "codegen/cuda/Nvrtc.h"
#endif
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
#include "runtime/cuda/CudaRuntime.h"
#endif

namespace graphc::runtime {

#ifdef GRAPHC_HAVE_CPU_BACKEND
Expected<std::unique_ptr<Executable>> makeCpuExecutable(CompiledModel model,
                                                        const BuildOptions &options);
#endif

int32_t stepSeed(uint64_t seed, int64_t step) {
  return int32_t(ir::mix64(seed * 0x9e3779b97f4a7c15ULL + uint64_t(step)) & 0x7fffffff);
}

Expected<CompiledModel> compileModel(const nn::ModelSpec &spec, const ir::Shape &sample,
                                     const passes::PipelineOptions &options) {
  GRAPHC_CHECK(spec.criterion && spec.optimizer, "a training model needs a "
                                                 "criterion and an optimizer");
  auto opt = passes::OptimizerConfig::fromTorch(spec.optimizer->name,
                                                spec.optimizer->config);
  if (!opt) {
    Diag d = opt.diag();
    d.file = spec.file;
    d.line = spec.optimizer->loc.line;
    d.col = spec.optimizer->loc.col;
    return d;
  }
  auto train = frontend::trace(spec, sample, {.training = true});
  if (!train)
    return train.diag();
  auto eval = frontend::trace(spec, sample, {.training = false});
  if (!eval)
    return eval.diag();

  CompiledModel m;
  m.info.name = train->graph.name();
  m.info.params = train->params;
  m.info.numParams = train->numParams;
  m.info.sample = sample;
  m.info.classes = train->classes;
  m.info.optimizer = {opt->str(), opt->learningRate};
  m.info.stateSlots = opt->stateSlots();
  m.info.hasDropout = train->graph.findInput("seed") >= 0;

  auto p = passes::runPipeline(train->graph, *opt, options);
  if (!p)
    return p.diag();
  m.pipeline = std::move(*p);
  m.step = m.pipeline.step;

  ir::Graph fwd = eval->graph;
  std::vector<ir::Output> outs;
  for (const ir::Output &o : fwd.outputs())
    if (o.name == "output")
      outs.push_back(o);
  fwd.outputs() = outs;
  // Evaluation takes only x and the parameters: labels and seed go.
  m.predict = passes::fuse(passes::rebuild(passes::canonicalize(fwd), {}, true)).graph;
  return m;
}

Expected<std::unique_ptr<Executable>> build(const nn::ModelSpec &spec,
                                            const ir::Shape &sample,
                                            const BuildOptions &options) {
  passes::PipelineOptions po;
  po.planBatch = options.maxBatch;
  auto m = compileModel(spec, sample, po);
  if (!m)
    return m.diag();
  return buildCompiled(std::move(*m), options);
}

Expected<std::unique_ptr<Executable>> buildCompiled(CompiledModel model,
                                                    const BuildOptions &options) {
  std::vector<float> init = ir::initParams(model.info.params, options.seed);
  std::unique_ptr<Executable> exe;
  if (options.target == "interp") {
    exe = makeInterpExecutable(std::move(model), options.maxBatch);
  } else if (options.target == "cpu") {
#ifdef GRAPHC_HAVE_CPU_BACKEND
    auto cpu = makeCpuExecutable(std::move(model), options);
    if (!cpu)
      return cpu.diag();
    exe = std::move(*cpu);
#else
    return error("this graphc was built without the LLVM CPU backend");
#endif
  } else if (options.target == "cuda") {
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
    auto gpu = cuda::makeCudaExecutable(std::move(model), options);
    if (!gpu)
      return gpu.diag();
    exe = std::move(*gpu);
#else
    return error("--target cuda: this graphc was built without the CUDA toolkit");
#endif
  } else {
    return error(fmt::format("--target {}: this graphc has no such target "
                             "(available: cpu, cuda, interp)",
                             options.target));
  }
  std::copy(init.begin(), init.begin() + exe->info().numParams, exe->params());
  exe->setSeed(options.seed);
  return exe;
}

Status emitCudaLibrary(const CompiledModel &model, const BuildOptions &options,
                       const std::string &arch, const std::string &out, int *assembled) {
#ifdef GRAPHC_HAVE_CUDA
  auto image = codegen::cuda::encodeDevicePrograms(
      model.step, passes::planMemoryChecked(model.step, options.maxBatch), model.predict,
      passes::planMemoryChecked(model.predict, options.maxBatch), arch);
  if (!image)
    return image.diag();
  // Every module through ptxas, as the driver will JIT it on the device:
  // nothing is written that a GPU would refuse.
  int count = -1;
  if (codegen::cuda::havePtxas()) {
    count = 0;
    std::vector<const std::string *> modules{&image->helpersPtx};
    for (const std::string &s : image->strings)
      if (s.find(".version") != std::string::npos && s.find(".target") != std::string::npos)
        modules.push_back(&s);
    for (const std::string *ptx : modules) {
      if (Status st = codegen::cuda::assemblePtx(*ptx, fmt::format("module {}", count), arch);
          !st)
        return st;
      ++count;
    }
  }
  if (assembled)
    *assembled = count;
  auto done = emitCpu(model, options, CpuOutput::Library, out, &*image);
  if (!done)
    return done.diag();
  return {};
#else
  return error("--target cuda: this graphc was built without the CUDA toolkit");
#endif
}

} // namespace graphc::runtime
