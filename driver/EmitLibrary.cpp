// driver/EmitLibrary.cpp - libraries and code text from a compiled model.
#include "driver/EmitLibrary.h"

#ifdef GRAPHC_HAVE_CPU_BACKEND
#include "codegen/cpu/Aot.h"
#endif
#include "runtime/Checkpoint.h"

#ifdef GRAPHC_HAVE_CUDA
#include "codegen/cuda/AotProgram.h"
#include "codegen/cuda/CudaSource.h"
#include "codegen/cuda/Nvrtc.h"
#endif

#include <fmt/format.h>

#include <filesystem>

namespace graphc::driver {
#ifdef GRAPHC_HAVE_CPU_BACKEND
namespace {

using codegen::cpu::VectorTarget;

/// Both programs with the memplan pass's plans.
struct Programs {
  codegen::cpu::Program step, predict, gradients, update;
  explicit Programs(const runtime::CompiledModel &m) {
    gradients.graph = m.gradients;
    gradients.plan = m.gradientsPlan;
    update.graph = m.update;
    update.plan = m.updatePlan;
    step.graph = m.step;
    step.plan = m.stepPlan;
    predict.graph = m.predict;
    predict.plan = m.predictPlan;
  }
};

/// The library's files, header and weights included, for the summary.
std::vector<std::string> libraryFiles(const std::string &out) {
  std::filesystem::path p(out);
  std::string dir = p.parent_path().string();
  return {out + ".h", (dir.empty() ? "" : dir + "/") + "lib" + p.filename().string() + ".a",
          out + ".safetensors"};
}

/// Header, archive and the initial weights (exactly those a fresh context
/// starts from); `device` makes it the cuda target's archive.
Status writeLibrary(const runtime::CompiledModel &model, const BuildOptions &options,
                    const std::string &out, std::vector<VectorTarget> isas,
                    const codegen::DeviceImage *device) {
  Programs p(model);
  const bool split = model.split();
  auto lib = codegen::cpu::buildLibrary(model.info, p.step, p.predict, options.maxBatch,
                                        options.seed, out, isas, device,
                                        split ? &p.gradients : nullptr,
                                        split ? &p.update : nullptr);
  if (!lib)
    return lib.diag();
  if (Status s =
          runtime::writeFileAtomic(lib->archivePath, lib->archive.data(), lib->archive.size());
      !s)
    return s;
  if (Status s = runtime::writeFileAtomic(lib->headerPath, lib->header.data(), lib->header.size());
      !s)
    return s;
  std::vector<float> init = ir::initParams(model.info.params, options.seed);
  std::vector<runtime::TensorRef> tensors;
  for (const auto &t : model.info.params)
    tensors.push_back({t.name, "F32", t.shape, init.data() + t.offset, size_t(t.numel()) * 4});
  return runtime::writeSafetensors(
      out + ".safetensors", tensors,
      {{"graphc.model", model.info.name}, {"graphc.optimizer", model.info.optimizer.str()}});
}

} // namespace

Status writeCpuLibrary(const runtime::CompiledModel &model, const BuildOptions &options,
                       const std::string &out, LibraryReport *report) {
  if (!model.trainable())
    return error("a library needs the training step: compile the model with its criterion "
                 "and optimizer");
  // By default the code runs anywhere with AVX2 and uses AVX-512 where the
  // CPU has it; --cpu asks for one ISA, whether this CPU runs it or not.
  std::vector<VectorTarget> isas;
  if (options.cpu.empty()) {
    isas = {*codegen::cpu::vectorTarget("avx2"), *codegen::cpu::vectorTarget("avx512")};
  } else {
    auto isa = codegen::cpu::vectorTarget(options.cpu);
    if (!isa)
      return isa.diag();
    isas = {*isa};
  }
  if (Status s = writeLibrary(model, options, out, isas, nullptr); !s)
    return s;
  if (report)
    report->files = libraryFiles(out);
  return {};
}

Status writeCudaLibrary(const runtime::CompiledModel &model, const BuildOptions &options,
                        const std::string &out, LibraryReport *report) {
#ifdef GRAPHC_HAVE_CUDA
  if (!model.trainable())
    return error("a library needs the training step: compile the model with its criterion "
                 "and optimizer");
  const codegen::cuda::SplitStep halves{model.gradients, model.gradientsPlan, model.update,
                                        model.updatePlan};
  auto image = codegen::cuda::encodeDevicePrograms(model.step, model.stepPlan, model.predict,
                                                   model.predictPlan, options.arch,
                                                   model.split() ? &halves : nullptr);
  if (!image)
    return image.diag();
  image->tf32 = options.tf32;
  // Every module through ptxas, as the driver will JIT it on the device:
  // nothing is written that a GPU would refuse.
  // --arch host: CUDA C source for the emulated test device, no PTX.
  int count = options.arch == "host" ? -2 : -1;
  if (count == -1 && codegen::cuda::havePtxas()) {
    count = 0;
    std::vector<const std::string *> modules{&image->helpersPtx};
    for (const std::string &s : image->strings)
      if (s.find(".version") != std::string::npos && s.find(".target") != std::string::npos)
        modules.push_back(&s);
    for (const std::string *ptx : modules) {
      if (Status st =
              codegen::cuda::assemblePtx(*ptx, fmt::format("module {}", count), options.arch);
          !st)
        return st;
      ++count;
    }
  }
  // The archive's host code holds the descriptor only: any x86-64 runs it.
  if (Status s =
          writeLibrary(model, options, out, {*codegen::cpu::vectorTarget("generic")}, &*image);
      !s)
    return s;
  if (report) {
    report->files = libraryFiles(out);
    report->assembled = count;
  }
  return {};
#else
  return error("--target cuda: this graphc was built without the CUDA toolkit");
#endif
}

Expected<std::string> emitCpuText(const runtime::CompiledModel &model, const BuildOptions &options,
                                  CpuText what) {
  auto isa = codegen::cpu::chooseVectorTarget(options.cpu);
  if (!isa)
    return isa.diag();
  Programs p(model);
  std::vector<codegen::cpu::Program *> programs{&p.predict};
  std::vector<std::string> prefixes{"predict_"};
  if (model.trainable())
    programs.insert(programs.begin(), &p.step), prefixes.insert(prefixes.begin(), "step_");
  return codegen::cpu::emitCode(programs, prefixes,
                                what == CpuText::LlvmIr ? codegen::cpu::EmitKind::LlvmIr
                                                        : codegen::cpu::EmitKind::Assembly,
                                {*isa});
}
#else

namespace {
constexpr const char *kNoCpuBackend =
    "this graphc was built without the CPU backend (-DGRAPHC_CPU_BACKEND=OFF): no --emit lib";
}

Status writeCpuLibrary(const runtime::CompiledModel &, const BuildOptions &, const std::string &,
                       LibraryReport *) {
  return error(fmt::format("--target cpu: {}", kNoCpuBackend));
}

Status writeCudaLibrary(const runtime::CompiledModel &, const BuildOptions &, const std::string &,
                        LibraryReport *) {
  return error(fmt::format("--target cuda: {}", kNoCpuBackend));
}

Expected<std::string> emitCpuText(const runtime::CompiledModel &, const BuildOptions &, CpuText) {
  return error("this graphc was built without the CPU backend (-DGRAPHC_CPU_BACKEND=OFF): no "
               "LLVM IR or assembly");
}

#endif

#ifdef GRAPHC_HAVE_CUDA
namespace {

/// Calls `fn(group reason, kernel name, source)` for every CUDA kernel of
/// both programs, and `fn(reason, "", "")` for each group cuBLASLt runs.
template <class Fn> Status forEachCudaKernel(const runtime::CompiledModel &m, Fn fn) {
  for (auto [g, prefix] : {std::pair{&m.step, "step_"}, std::pair{&m.predict, "predict_"}})
    for (const auto &k : codegen::cuda::printKernels(*g, codegen::storedValues(*g), prefix)) {
      if (k.source.empty())
        continue;
      const std::string &reason = g->groups()[size_t(k.plan.group)].reason;
      std::string name = k.name.empty() ? k.colsum : k.name;
      Status s = name.empty() ? fn(reason, fmt::format("{}k{}", prefix, k.plan.group), "")
                              : fn(reason, name, k.source);
      if (!s)
        return s;
    }
  return {};
}

} // namespace
#endif

Expected<std::string> emitCudaSource(const runtime::CompiledModel &model) {
#ifdef GRAPHC_HAVE_CUDA
  std::string all;
  Status s = forEachCudaKernel(
      model,
      [&](const std::string &reason, const std::string &name, const std::string &source) -> Status {
        if (source.empty()) // cuBLASLt and its own epilogue: no kernel
          all += fmt::format("// ===== kernel group {} ({}): cuBLASLt with its epilogue, no "
                             "kernel =====\n\n",
                             name, reason);
        else
          all += fmt::format("// ===== kernel group {} ({}) =====\n{}\n", name, reason, source);
        return {};
      });
  if (!s)
    return s.diag();
  return all;
#else
  return error("--target cuda: this graphc was built without the CUDA toolkit");
#endif
}

Expected<int> writeCudaPtx(const runtime::CompiledModel &model, const std::string &arch,
                           const std::string &dir) {
#ifdef GRAPHC_HAVE_CUDA
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return error(fmt::format("-o {}: {}", dir, ec.message()));
  int kernels = 0;
  Status s = forEachCudaKernel(
      model,
      [&](const std::string &, const std::string &name, const std::string &source) -> Status {
        if (source.empty())
          return {};
        auto code = codegen::cuda::compileToPtx(source, name, arch);
        if (!code)
          return code.diag();
        ++kernels;
        return runtime::writeFileAtomic(dir + "/" + name + ".ptx", code->data(), code->size());
      });
  if (!s)
    return s.diag();
  return kernels;
#else
  return error("--target cuda: this graphc was built without the CUDA toolkit");
#endif
}

} // namespace graphc::driver
