// codegen/cpu/Jit.cpp - LLVM setup, O3 for the host, ORC LLJIT.
#include "codegen/cpu/Jit.h"

#include "runtime/rt/graphc_rt.h"

#include <fmt/format.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>

#include <chrono>
#include <cstring>
#include <mutex>

namespace graphc::codegen::cpu {
namespace {

void initLlvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

std::string errorText(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

Expected<llvm::orc::JITTargetMachineBuilder> hostBuilder() {
  initLlvm();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    return error("LLVM cannot target this host: " + errorText(jtmb.takeError()));
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return std::move(*jtmb);
}

/// Builds the model's module: the micro-kernel, then every program's
/// kernels and run function.
std::unique_ptr<llvm::Module> buildModule(llvm::LLVMContext &ctx,
                                          std::vector<Program *> &programs,
                                          const std::vector<std::string> &prefixes,
                                          const VectorTarget &t, const std::string &micro) {
  auto m = std::make_unique<llvm::Module>("graphc", ctx);
  emitMicroKernel(*m, t, micro);
  for (size_t i = 0; i < programs.size(); ++i) {
    Program &p = *programs[i];
    p.stored = codegen::storedValues(p.graph);
    p.kernels = emitKernels(*m, p.graph, p.stored, prefixes[i]);
    emitRunFunction(*m, p.graph, p.plan, p.stored, p.kernels, prefixes[i], micro, t);
  }
  return m;
}

Status optimize(llvm::Module &m, llvm::TargetMachine &tm) {
  m.setDataLayout(tm.createDataLayout());
  m.setTargetTriple(tm.getTargetTriple().str());
  for (llvm::Function &f : m) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", tm.getTargetCPU());
    f.addFnAttr("target-features", tm.getTargetFeatureString());
  }
  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyModule(m, &os))
    GRAPHC_CHECK(false, "generated LLVM IR does not verify: {}", os.str());
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(m, mam);
  return {};
}

} // namespace

VectorTarget hostVectorTarget() {
  initLlvm();
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  VectorTarget t;
  if (features.lookup("avx512f")) {
    t = {16, 8, 32, "avx512"};
  } else if (features.lookup("avx2") && features.lookup("fma")) {
    t = {8, 6, 16, "avx2"};
  }
  return t;
}

struct JitModule::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

JitModule::~JitModule() = default;

Expected<std::unique_ptr<JitModule>>
JitModule::compile(std::vector<Program *> programs, const std::vector<std::string> &prefixes,
                   double *compileMs) {
  auto t0 = std::chrono::steady_clock::now();
  auto jtmb = hostBuilder();
  if (!jtmb)
    return jtmb.diag();
  auto tm = jtmb->createTargetMachine();
  if (!tm)
    return error("LLVM target machine: " + errorText(tm.takeError()));
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto m = buildModule(*ctx, programs, prefixes, hostVectorTarget(), "graphc_micro");
  if (Status s = optimize(*m, **tm); !s)
    return s.diag();

  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*jtmb).create();
  if (!jit)
    return error("LLVM JIT: " + errorText(jit.takeError()));
  // The C runtime and libc's memmove are linked into graphc itself.
  llvm::orc::SymbolMap runtime;
  auto add = [&](const char *name, auto *fnptr) {
    runtime[(*jit)->mangleAndIntern(name)] = {llvm::orc::ExecutorAddr::fromPtr(fnptr),
                                              llvm::JITSymbolFlags::Exported};
  };
  add("grt_parallel_range", &grt_parallel_range);
  add("grt_gemm", &grt_gemm);
  add("memmove", &std::memmove);
  if (auto e = (*jit)->getMainJITDylib().define(llvm::orc::absoluteSymbols(runtime)))
    return error("LLVM JIT: " + errorText(std::move(e)));
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*jit)->getDataLayout().getGlobalPrefix());
  if (!gen)
    return error("LLVM JIT: " + errorText(gen.takeError()));
  (*jit)->getMainJITDylib().addGenerator(std::move(*gen));
  if (auto e = (*jit)->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx))))
    return error("LLVM JIT: " + errorText(std::move(e)));

  auto out = std::unique_ptr<JitModule>(new JitModule);
  out->impl_ = std::make_unique<Impl>();
  for (size_t i = 0; i < programs.size(); ++i) {
    auto sym = (*jit)->lookup(prefixes[i] + "run");
    if (!sym)
      return error("LLVM JIT: " + errorText(sym.takeError()));
    programs[i]->run = sym->toPtr<void (*)(void **, int64_t, void *, void *)>();
  }
  out->impl_->jit = std::move(*jit);
  if (compileMs)
    *compileMs = std::chrono::duration<double, std::milli>(
                     std::chrono::steady_clock::now() - t0).count();
  return out;
}

Expected<std::string> emitCode(std::vector<Program *> programs,
                               const std::vector<std::string> &prefixes, EmitKind kind,
                               const std::string &microName,
                               const std::function<void(llvm::Module &)> &extra) {
  auto jtmb = hostBuilder();
  if (!jtmb)
    return jtmb.diag();
  if (kind == EmitKind::Object) // relocatable code for a static library
    jtmb->setRelocationModel(llvm::Reloc::PIC_);
  auto tm = jtmb->createTargetMachine();
  if (!tm)
    return error("LLVM target machine: " + errorText(tm.takeError()));
  llvm::LLVMContext ctx;
  auto m = buildModule(ctx, programs, prefixes, hostVectorTarget(), microName);
  if (extra)
    extra(*m);
  if (Status s = optimize(*m, **tm); !s)
    return s.diag();
  if (kind == EmitKind::LlvmIr) {
    std::string text;
    llvm::raw_string_ostream os(text);
    m->print(os, nullptr);
    return os.str();
  }
  llvm::SmallString<0> buf;
  llvm::raw_svector_ostream svos(buf);
  llvm::legacy::PassManager pm;
  auto type = kind == EmitKind::Assembly ? llvm::CodeGenFileType::AssemblyFile
                                         : llvm::CodeGenFileType::ObjectFile;
  if ((*tm)->addPassesToEmitFile(pm, svos, nullptr, type))
    return error("LLVM cannot emit code for this host");
  pm.run(*m);
  return std::string(buf.str());
}

} // namespace graphc::codegen::cpu
