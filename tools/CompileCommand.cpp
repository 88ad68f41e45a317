// tools/CompileCommand.cpp - `graphc compile`: trace, run the passes, print
// what a reader asks for, and compile or emit code for a target.
#include "tools/Cli.h"

#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "driver/Memory.h"
#include "driver/Targets.h"
#include "ir/Dot.h"
#include "ir/Printer.h"
#include "runtime/Checkpoint.h"

#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

namespace graphc::cli {
namespace {

struct CompileOptions {
  std::string model, input, stopAfter, dot, target = driver::defaultTarget(), emit, out,
                                            arch = "sm_90", cpu;
  bool printIr = false, printAfterAll = false, stats = false, tf32 = false;
  std::string maxMemory;
  std::vector<std::string> printAfter, printBefore;
  int64_t maxBatch = 256;
  int threads = 0;
  uint64_t seed = 1;
  TrainingFlags training;
};

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// `text` to the -o file (atomically) or to stdout.
Status output(const CompileOptions &o, const std::string &text) {
  if (o.out.empty()) {
    std::fputs(text.c_str(), stdout);
    return {};
  }
  return runtime::writeFileAtomic(o.out, text.data(), text.size());
}

/// The library's path prefix: -o, else the model file's name in the current
/// folder (mlp.model -> ./mlp), made a C identifier, as `cc -c x.c` writes x.o.
std::string libraryPrefix(const CompileOptions &o) {
  if (!o.out.empty())
    return o.out;
  std::string stem = std::filesystem::path(o.model).stem().string(), name;
  for (char c : stem)
    name += std::isalnum((unsigned char)c) || c == '_' ? c : '_';
  if (name.empty() || std::isdigit((unsigned char)name[0]))
    name = "model_" + name;
  return name;
}

int runCompile(const CompileOptions &o) {
  auto spec = loadTrainingSpec(o.model, o.training);
  if (!spec)
    return report(spec.diag());
  auto sample = sampleShape(*spec, o.input);
  if (!sample)
    return report(sample.diag());

  passes::PipelineOptions po;
  po.printAfter.insert(o.printAfter.begin(), o.printAfter.end());
  po.printBefore.insert(o.printBefore.begin(), o.printBefore.end());
  if (o.printAfterAll)
    po.printAfter.insert("all");
  for (auto [names, flag] :
       {std::pair{&po.printAfter, "--print-after"}, std::pair{&po.printBefore, "--print-before"}})
    if (Status s = passes::checkPassNames(*names, flag); !s)
      return report(s.diag());
  if (!o.stopAfter.empty())
    if (Status s = passes::checkPassNames({o.stopAfter}, "--stop-after"); !s)
      return report(s.diag());
  po.stopAfter = o.stopAfter;
  po.planBatch = o.maxBatch;
  po.fuseReductions = o.target != "cuda";
  po.fusePools = o.target != "cuda";
  const bool partial = !o.stopAfter.empty() && o.stopAfter != passes::passNames().back();
  if (partial && !o.emit.empty())
    return report(error("--emit needs every pass: drop --stop-after"));

  auto t0 = std::chrono::steady_clock::now();
  // A library also gets the step split in two (NAME_compute_gradients,
  // NAME_apply_update); optim.nag has none.
  const bool split = (o.target == "cpu" || o.target == "cuda") &&
                     (o.emit.empty() || o.emit == "lib") && spec->optimizer &&
                     spec->optimizer->name != "nag";
  auto c = driver::compile(*spec, *sample, po, split);
  if (!c)
    return report(c.diag());
  double passMs = msSince(t0);
  if (o.printIr)
    std::fputs(ir::print(c->traced).c_str(), stdout);
  std::fputs(c->step.printed.c_str(), stdout);
  std::fputs(c->predict.printed.c_str(), stdout);
  if (!o.dot.empty() && c->model.step.size() > 0) {
    std::string dot =
        ir::toDot({{"training step", &c->model.step}, {"evaluation", &c->model.predict}});
    if (Status s = runtime::writeFileAtomic(o.dot, dot.data(), dot.size()); !s)
      return report(s.diag());
  }
  std::string passStats =
      passes::formatStats(c->step) +
      (c->predict.stats.empty() ? "" : "evaluation:\n" + passes::formatStats(c->predict));
  if (partial) {
    if (o.stats)
      std::fputs(passStats.c_str(), stdout);
    return 0;
  }

  driver::BuildOptions bo;
  bo.target = o.target;
  bo.maxBatch = o.maxBatch;
  bo.threads = o.threads;
  bo.seed = o.seed;
  bo.cpu = o.cpu;
  bo.arch = o.arch;
  bo.tf32 = o.tf32;
  const runtime::CompiledModel &model = c->model;
  if (!o.maxMemory.empty()) {
    auto limit = parseBytes(o.maxMemory);
    if (!limit)
      return report(limit.diag());
    bo.maxMemory = *limit;
  }
  const driver::MemoryEstimate memory = driver::estimateMemory(model);
  // Like cc, compile writes the library unless asked for something else;
  // printing the IR or a graph alone (no -o) only prints.
  const bool study = o.printIr || o.printAfterAll || !o.printAfter.empty() ||
                     !o.printBefore.empty() || !o.dot.empty();
  const std::string emit = o.emit.empty() && !(study && o.out.empty()) ? "lib" : o.emit;
  if (o.tf32 && (o.target != "cuda" || emit != "lib"))
    return report(error(fmt::format("--tf32 applies to the cuda target's library (--target cuda "
                                    "--emit lib), not to --target {}{}",
                                    o.target, emit.empty() ? "" : " --emit " + emit)));
  const driver::Target *target = driver::findTarget(o.target);
  std::string codegen;
  int kernels = int(model.step.groups().size());
  std::optional<driver::LibraryReport> library;
  t0 = std::chrono::steady_clock::now();
  if (emit == "ir") {
    if (Status s = output(o, ir::print(model.step)); !s)
      return report(s.diag());
  } else if (emit == "lib") {
    // The library's initial weights are made whole in memory.
    if (Status s = driver::checkMemory(memory, driver::memoryLimit(bo.maxMemory)); !s)
      return report(s.diag());
    std::string prefix = libraryPrefix(o);
    std::error_code ec;
    if (auto dir = std::filesystem::path(prefix).parent_path(); !dir.empty())
      std::filesystem::create_directories(dir, ec);
    if (ec)
      return report(error(fmt::format("-o {}: {}", prefix, ec.message())));
    if (!target->writeLibrary)
      return report(error(fmt::format("--target {}: {}", o.target, target->missing)));
    library.emplace();
    if (Status s = target->writeLibrary(model, bo, prefix, &*library); !s)
      return report(s.diag());
    codegen = o.target == "cpu" ? "LLVM O3, object file and archive"
                                : "NVRTC to PTX for " + o.arch + ", descriptor object and archive";
  } else if (emit.empty()) {
    codegen = "";
  } else if (o.target == "cpu" && (emit == "llvm" || emit == "asm")) {
    auto text = driver::emitCpuText(
        model, bo, emit == "llvm" ? driver::CpuText::LlvmIr : driver::CpuText::Assembly);
    if (!text)
      return report(text.diag());
    if (Status s = output(o, *text); !s)
      return report(s.diag());
    codegen = "LLVM O3 for this host";
  } else if (o.target == "cuda" && emit == "cuda") {
    auto text = driver::emitCudaSource(model);
    if (!text)
      return report(text.diag());
    if (Status s = output(o, *text); !s)
      return report(s.diag());
    codegen = "CUDA C";
  } else if (o.target == "cuda" && emit == "ptx") {
    if (o.out.empty())
      return report(error("--emit ptx needs -o DIR, the folder for the .ptx files"));
    auto n = driver::writeCudaPtx(model, o.arch, o.out);
    if (!n)
      return report(n.diag());
    kernels = *n;
    codegen = "NVRTC to PTX for " + o.arch;
  } else {
    return report(
        error(fmt::format("--emit {} is not a {} output: use {}", emit, o.target,
                          o.target == "cpu" ? "lib, ir, llvm or asm" : "lib, ir, cuda or ptx")));
  }
  double codegenMs = msSince(t0);
  if (library) {
    std::string what =
        o.target == "cpu"
            ? (o.cpu.empty() ? std::string("cpu: avx2 code (any x86-64 CPU with AVX2 and FMA), "
                                           "with avx512 code where the CPU has it")
                             : fmt::format("cpu: {} code", o.cpu))
        : library->assembled == -2
            ? std::string("cuda host: CUDA C source for graphc's emulated device (tests only)")
        : library->assembled < 0
            ? fmt::format("cuda {}: PTX from NVRTC (no ptxas in the toolkit: not assembled)",
                          o.arch)
            : fmt::format("cuda {}: {} PTX modules from NVRTC, each assembled by ptxas", o.arch,
                          library->assembled);
    if (o.tf32)
      what += "; matrix products in TF32";
    auto mib = [](int64_t b) { return double(b) / (1024.0 * 1024.0); };
    std::printf("compiled %s for %s\n", o.model.c_str(), what.c_str());
    std::printf("  training step: %s\n", driver::describeKernels(model.step).c_str());
    std::printf("  evaluation: %s\n", driver::describeKernels(model.predict).c_str());
    std::printf("  memory at batch %lld: %.2f MiB of intermediates for the step, %.2f MiB for "
                "evaluation; %.2f MiB of parameters\n",
                (long long)o.maxBatch, mib(model.stepPlan.arenaBytes),
                mib(model.predictPlan.arenaBytes), mib(model.info.numParams * 4));
    std::printf("  compile time %.2f s (passes %.0f ms, code generation %.0f ms)\n",
                (passMs + codegenMs) / 1e3, passMs, codegenMs);
    std::printf("  wrote %s\n", fmt::format("{}", fmt::join(library->files, ", ")).c_str());
  }
  if (o.stats) {
    std::fputs(passStats.c_str(), stdout);
    std::printf("memory %s\n", memory.str().c_str());
    std::printf("passes %.1f ms; code generation (%s) %.1f ms; %d %s\n", passMs,
                codegen.empty() ? "none" : codegen.c_str(), codegenMs, kernels,
                emit == "cuda" || emit == "ptx"
                    ? "CUDA kernels, step and evaluation (the other GEMMs run in cuBLASLt)"
                    : "kernel groups in the step");
  }
  return 0;
}

} // namespace

Command compileCommand(CLI::App &app) {
  auto o = std::make_shared<CompileOptions>();
  auto *c = app.add_subcommand(
      "compile", "Trace a model file, derive the training step, fuse it and compile it into "
                 "a library to link (mlp.model -> mlp.h, libmlp.a, mlp.safetensors), or print "
                 "what each pass made of it");
  c->add_option("model", o->model,
                "the model file, a Torch7 Lua script (.model or .lua): model, criterion, optimizer")
      ->required();
  addTrainingFlags(c, o->training);
  c->add_option("--input", o->input,
                "per-sample input shape, e.g. 1x32x32 (default: the model file's "
                "`input = {...}`, else what the first layer fixes: nn.View(n), nn.Reshape(n) "
                "or nn.Linear(n, m) take n values)");
  c->add_option("--target", o->target, "what to compile for: " + driver::describeTargets(true))
      ->default_val(driver::defaultTarget())
      ->check(CLI::IsMember(driver::targetNames(true)));
  c->add_option("--emit", o->emit,
                "what to write: lib (the default: a header, a static library and the initial "
                "weights, for cpu or cuda), ir (the fused step), llvm or asm (cpu), cuda or "
                "ptx (cuda)")
      ->check(CLI::IsMember({"ir", "llvm", "asm", "lib", "cuda", "ptx"}));
  c->add_option("-o,--output", o->out,
                "where: a path prefix for lib (default: the model file's name in this "
                "folder, so mlp.model writes mlp.h, libmlp.a and mlp.safetensors; -o out/mlp "
                "writes out/mlp.h, out/libmlp.a, out/mlp.safetensors), a file for "
                "ir/llvm/asm/cuda (default stdout), a folder for ptx. With --print-*, "
                "--print-ir or --dot and no -o or --emit, nothing but the IR is written. Files are "
                "replaced atomically; a symbolic link is followed and stays; /dev/null, "
                "/dev/stdout or a FIFO is written through; a directory is refused");
  c->add_option("--cpu", o->cpu,
                "the vector ISA of the cpu target's code: avx512, avx2 or generic (any "
                "x86-64). Default: the JIT and --emit llvm|asm use GRAPHC_CPU or this CPU's "
                "best; --emit lib writes avx2 code that switches to avx512 where the CPU "
                "running it has it")
      ->check(CLI::IsMember({"avx512", "avx2", "generic"}));
  c->add_option("--arch", o->arch,
                "the GPU architecture of ptx and cuda lib output (PTX runs on that and newer "
                "GPUs); `host` writes a cuda lib for the emulated test device "
                "(GRAPHC_CUDA_DEVICE=emulate, README)")
      ->default_val("sm_90");
  c->add_flag("--tf32", o->tf32,
              "cuda lib output: let cuBLASLt multiply in TF32, as `graphc train --tf32` does "
              "(faster, not bit-compatible with fp32)");
  c->add_flag("--print-ir", o->printIr, "print the traced forward-and-loss graph");
  c->add_option("--print-after", o->printAfter,
                "print the IR after these passes (trace, autodiff, optimizer, canonicalize, "
                "fusion, memplan, or all)")
      ->delimiter(',');
  c->add_option("--print-before", o->printBefore, "print the IR before these passes")
      ->delimiter(',');
  c->add_flag("--print-after-all", o->printAfterAll,
              "print the IR after tracing and after every pass");
  addVerifyPlanFlag(*c);
  addMaxMemoryOption(*c, o->maxMemory);
  c->add_option("--stop-after", o->stopAfter, "run the passes up to and including this one");
  c->add_flag("--stats", o->stats,
              "per pass: nodes before and after, kernel groups, planned bytes, time; then "
              "the code generation time (the JIT compile, for cpu)");
  c->add_option("--dot", o->dot,
                "write the fused step as Graphviz, kernel groups as clusters labelled with "
                "why they fused");
  c->add_option("--max-batch", o->maxBatch,
                "the largest batch the compiled step takes (the memory plan's size)")
      ->default_val(256)
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  c->add_option("--threads", o->threads, "CPU threads of the compiled step (0: all cores)")
      ->default_val(0)
      ->check(CLI::Range(0, 1024));
  c->add_option("--seed", o->seed,
                "the seed of the initial weights the library starts from (as graphc train "
                "--seed)")
      ->check(seedValidator())
      ->default_val(1);
  return {c, [o] { return runCompile(*o); }};
}

} // namespace graphc::cli
