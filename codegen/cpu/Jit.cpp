// codegen/cpu/Jit.cpp - LLVM setup, O3 for the host, ORC LLJIT.
#include "codegen/cpu/Jit.h"

#include "runtime/rt/graphc_rt.h"

#include <fmt/format.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SHA256.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/Utils/SplitModule.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unistd.h>

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

/// A target machine for x86-64 code that may use the features of `cpu`
/// and no others: the host's own extra features never leak into code that
/// was asked for a lower ISA.
llvm::orc::JITTargetMachineBuilder builderFor(const std::string &cpu) {
  initLlvm();
  llvm::orc::JITTargetMachineBuilder jtmb{llvm::Triple(llvm::sys::getProcessTriple())};
  jtmb.setCPU(cpu);
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return jtmb;
}

/// Marks every function defined so far without a CPU as code for `isa`,
/// tuned for `tune` when it is not empty.
void tagFunctions(llvm::Module &m, const VectorTarget &isa, const std::string &tune) {
  for (llvm::Function &f : m) {
    if (f.isDeclaration() || f.hasFnAttribute("target-cpu"))
      continue;
    f.addFnAttr("target-cpu", isa.cpu);
    // Max pools and their gradients read windows at a stride: LLVM's cost
    // model would vectorise them with AVX-512 gathers and scatters, which
    // AMD's cores microcode and Intel's run slowly since the Gather Data
    // Sampling fix (LeNet's pool gradient: 6.4 ms a step, 4.0 without, Zen 5).
    f.addFnAttr("target-features", "+prefer-no-gather,+prefer-no-scatter");
    if (!tune.empty())
      f.addFnAttr("tune-cpu", tune);
  }
}

/// Builds the model's module: for each ISA the micro-kernel, then every
/// program's kernels and run function (`stepwise`: and its run_kernels twin).
std::unique_ptr<llvm::Module> buildModule(llvm::LLVMContext &ctx, std::vector<Program *> &programs,
                                          const std::vector<std::string> &prefixes,
                                          const std::vector<VectorTarget> &isas,
                                          const std::string &micro, const std::string &tune,
                                          bool stepwise) {
  auto m = std::make_unique<llvm::Module>("graphc", ctx);
  const bool several = isas.size() > 1;
  for (const VectorTarget &t : isas) {
    std::string mk = several ? micro + "_" + t.name : micro;
    emitMicroKernel(*m, t, mk);
    for (size_t i = 0; i < programs.size(); ++i) {
      Program &p = *programs[i];
      std::string prefix = several ? prefixes[i] + t.name + "_" : prefixes[i];
      p.stored = codegen::storedValues(p.graph);
      p.kernels = emitKernels(*m, p.graph, p.stored, prefix);
      emitRunFunction(*m, p.graph, p.plan, p.stored, p.kernels, prefix, mk, t);
      if (stepwise)
        emitRunFunction(*m, p.graph, p.plan, p.stored, p.kernels, prefix, mk, t, true);
    }
    tagFunctions(*m, t, tune);
  }
  return m;
}

Status optimize(llvm::Module &m, llvm::TargetMachine &tm) {
  m.setDataLayout(tm.createDataLayout());
  m.setTargetTriple(tm.getTargetTriple().str());
  for (llvm::Function &f : m)
    if (!f.isDeclaration() && !f.hasFnAttribute("target-cpu"))
      f.addFnAttr("target-cpu", tm.getTargetCPU());
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

// --- the compile cache ---------------------------------------------------------------
//
// An entry is DIR/<key>.o: the magic, the 32-byte key, the payload's length
// and SHA-256, then the payload: the object files (packObjects). The key hashes everything the
// object depends on; a build of this file (date and time) stands for the code generator's own
// version. Anything that does not check out is a miss.

constexpr char kCacheMagic[8] = {'g', 'r', 'a', 'p', 'h', 'c', 'o', '2'};
constexpr size_t kCacheHeader = sizeof kCacheMagic + 32 + 8 + 32;

using Digest = std::array<uint8_t, 32>;

Digest sha256(llvm::StringRef bytes) {
  return llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
}

std::string hex(const Digest &d) {
  std::string out;
  for (uint8_t b : d)
    out += fmt::format("{:02x}", b);
  return out;
}

Digest cacheKey(const llvm::Module &m, const llvm::TargetMachine &tm, const VectorTarget &isa) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "graphc jit cache 1, code generator built " << __DATE__ << " " << __TIME__ << ", LLVM "
     << LLVM_VERSION_STRING << "\n"
     << tm.getTargetTriple().str() << " " << tm.getTargetCPU() << " " << tm.getTargetFeatureString()
     << " " << isa.name << "\n";
  m.print(os, nullptr);
  return sha256(os.str());
}

/// The object code of a valid entry, or why there is none ("" : no entry).
std::optional<std::string> readCacheEntry(const std::string &path, const Digest &key,
                                          std::string &problem) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return std::nullopt;
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  uint64_t len = 0;
  if (all.size() >= kCacheHeader)
    std::memcpy(&len, all.data() + 40, 8);
  if (all.size() < kCacheHeader || std::memcmp(all.data(), kCacheMagic, 8) != 0 ||
      std::memcmp(all.data() + 8, key.data(), 32) != 0 || len != all.size() - kCacheHeader) {
    problem = fmt::format("cache entry {} is not one of graphc's: replaced", path);
    return std::nullopt;
  }
  std::string object = all.substr(kCacheHeader);
  if (std::memcmp(all.data() + 48, sha256(object).data(), 32) != 0) {
    problem = fmt::format("cache entry {} is damaged: replaced", path);
    return std::nullopt;
  }
  return object;
}

/// Writes an entry through a temp file renamed over it, so that a reader
/// (or another graphc writing the same entry) sees a whole file or none.
Status writeCacheEntry(const std::string &dir, const std::string &path, const Digest &key,
                       const std::string &object) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return error(fmt::format("cannot create the cache folder {}: {}", dir, ec.message()));
  std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), std::random_device{}());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    uint64_t len = object.size();
    Digest sum = sha256(object);
    f.write(kCacheMagic, 8);
    f.write(reinterpret_cast<const char *>(key.data()), 32);
    f.write(reinterpret_cast<const char *>(&len), 8);
    f.write(reinterpret_cast<const char *>(sum.data()), 32);
    f.write(object.data(), std::streamsize(object.size()));
    f.flush();
    if (!f) {
      std::filesystem::remove(tmp, ec);
      return error(fmt::format("cannot write the cache entry {} (disk full?)", path));
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return error(fmt::format("cannot write the cache entry {}: {}", path, ec.message()));
  }
  return {};
}

/// Object files in one payload: each one's length (8 bytes), then its bytes.
std::string packObjects(const std::vector<std::string> &objects) {
  std::string out;
  for (const std::string &o : objects) {
    uint64_t n = o.size();
    out.append(reinterpret_cast<const char *>(&n), 8);
    out += o;
  }
  return out;
}

std::optional<std::vector<std::string>> unpackObjects(const std::string &payload) {
  std::vector<std::string> out;
  for (size_t at = 0; at < payload.size();) {
    uint64_t n = 0;
    if (payload.size() - at < 8)
      return std::nullopt;
    std::memcpy(&n, payload.data() + at, 8);
    at += 8;
    if (n > payload.size() - at)
      return std::nullopt;
    out.push_back(payload.substr(at, n));
    at += n;
  }
  return out;
}

/// The module optimised and compiled to an object file by `tm`.
Expected<std::string> objectCode(llvm::Module &m, llvm::TargetMachine &tm) {
  if (Status s = optimize(m, tm); !s)
    return s.diag();
  llvm::SmallString<0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile))
    return error("LLVM cannot emit code for this host");
  pm.run(m);
  return std::string(buf.str());
}

/// The JIT's object code of `m`, optimised and compiled by up to two
/// threads (the machines graphc targets have few cores): the module split
/// into partitions (LLVM's SplitModule, a kernel group's functions kept
/// together), each in a context of its own. Each function is optimised and
/// compiled as it would be whole: the same instructions, the same bits.
Expected<std::vector<std::string>> objectCodeParallel(llvm::Module &m,
                                                      llvm::orc::JITTargetMachineBuilder jtmb) {
  const unsigned parts = std::clamp(std::thread::hardware_concurrency(), 1u, 2u);
  auto tm = jtmb.createTargetMachine();
  if (!tm)
    return error("LLVM target machine: " + errorText(tm.takeError()));
  if (parts == 1) {
    auto one = objectCode(m, **tm);
    if (!one)
      return one.diag();
    return std::vector<std::string>{std::move(*one)};
  }
  m.setDataLayout((*tm)->createDataLayout());
  m.setTargetTriple((*tm)->getTargetTriple().str());
  std::vector<std::string> bitcode;
  llvm::SplitModule(m, parts, [&](std::unique_ptr<llvm::Module> part) {
    std::string buf;
    llvm::raw_string_ostream os(buf);
    llvm::WriteBitcodeToFile(*part, os);
    os.flush();
    bitcode.push_back(std::move(buf));
  });
  std::vector<std::optional<Expected<std::string>>> objects(bitcode.size());
  auto compile = [&](size_t i) {
    llvm::LLVMContext ctx;
    auto part = llvm::parseBitcodeFile(llvm::MemoryBufferRef(bitcode[i], "part"), ctx);
    if (!part) {
      objects[i] = error("LLVM: " + errorText(part.takeError()));
      return;
    }
    auto ptm = llvm::orc::JITTargetMachineBuilder(jtmb).createTargetMachine();
    if (!ptm) {
      objects[i] = error("LLVM target machine: " + errorText(ptm.takeError()));
      return;
    }
    objects[i] = objectCode(**part, **ptm);
  };
  std::vector<std::thread> pool;
  for (size_t i = 1; i < bitcode.size(); ++i)
    pool.emplace_back(compile, i);
  if (!bitcode.empty())
    compile(0);
  for (std::thread &t : pool)
    t.join();
  std::vector<std::string> out;
  for (auto &o : objects) {
    if (!*o)
      return o->diag();
    out.push_back(std::move(**o));
  }
  return out;
}

} // namespace

const std::vector<VectorTarget> &vectorTargets() {
  static const std::vector<VectorTarget> all = {
      {16, 8, 32, "avx512", "x86-64-v4", 4}, // 16 accumulators of 32
      {8, 6, 16, "avx2", "x86-64-v3", 3},    // 12 accumulators of 16
      {4, 4, 8, "generic", "x86-64", 1, 4},  // 8 accumulators of 16, A pre-broadcast
  };
  return all;
}

bool hostRuns(const VectorTarget &t) { return grt_cpu_level() >= t.level; }

VectorTarget hostVectorTarget() {
  for (const VectorTarget &t : vectorTargets())
    if (hostRuns(t))
      return t;
  return vectorTargets().back();
}

Expected<VectorTarget> vectorTarget(const std::string &name) {
  std::string names;
  for (const VectorTarget &t : vectorTargets()) {
    if (t.name == name)
      return t;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  return error(fmt::format("unknown vector ISA '{}'; choose one of {}", name, names));
}

Expected<VectorTarget> chooseVectorTarget(const std::string &name) {
  std::string want = name, where = "--cpu " + name;
  if (want.empty()) {
    const char *env = std::getenv("GRAPHC_CPU");
    if (!env || !*env)
      return hostVectorTarget();
    want = env;
    where = "GRAPHC_CPU=" + want;
  }
  auto t = vectorTarget(want);
  if (!t)
    return error(fmt::format("{}: {}", where, t.diag().message));
  if (!hostRuns(*t))
    return error(fmt::format("{}: this CPU cannot execute {} code (it needs x86-64-v{}, the "
                             "CPU has v{}); its best is {}",
                             where, t->name, t->level, grt_cpu_level(), hostVectorTarget().name));
  return t;
}

struct JitModule::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

JitModule::~JitModule() = default;

Expected<std::unique_ptr<JitModule>> JitModule::compile(std::vector<Program *> programs,
                                                        const std::vector<std::string> &prefixes,
                                                        const VectorTarget &isa, double *compileMs,
                                                        JitCache *cache) {
  auto t0 = std::chrono::steady_clock::now();
  GRAPHC_CHECK(hostRuns(isa), "JIT code for {} on a CPU that cannot execute it", isa.name);
  auto jtmb = builderFor(isa.cpu);
  auto tm = jtmb.createTargetMachine();
  if (!tm)
    return error("LLVM target machine: " + errorText(tm.takeError()));
  auto ctx = std::make_unique<llvm::LLVMContext>();
  // Tuned for this CPU: the JIT's code runs nowhere else.
  auto m = buildModule(*ctx, programs, prefixes, {isa}, "graphc_micro",
                       llvm::sys::getHostCPUName().str(), true);
  // The object code: from the cache, or optimised and compiled here.
  std::optional<std::vector<std::string>> objects;
  Digest key{};
  std::string entry;
  if (cache && !cache->dir.empty()) {
    key = cacheKey(*m, **tm, isa);
    entry = cache->dir + "/" + hex(key) + ".o";
    if (auto payload = readCacheEntry(entry, key, cache->problem))
      objects = unpackObjects(*payload);
    cache->hit = objects.has_value();
  }
  if (!objects) {
    auto code = objectCodeParallel(*m, jtmb);
    if (!code)
      return code.diag();
    objects = std::move(*code);
    if (!entry.empty())
      if (Status s = writeCacheEntry(cache->dir, entry, key, packObjects(*objects)); !s)
        cache->problem = s.diag().message;
  }

  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(jtmb).create();
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
  add("grt_colsum", &grt_colsum);
  add("grt_conv", &grt_conv);
  add("memmove", &std::memmove);
  if (auto e = (*jit)->getMainJITDylib().define(llvm::orc::absoluteSymbols(runtime)))
    return error("LLVM JIT: " + errorText(std::move(e)));
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*jit)->getDataLayout().getGlobalPrefix());
  if (!gen)
    return error("LLVM JIT: " + errorText(gen.takeError()));
  (*jit)->getMainJITDylib().addGenerator(std::move(*gen));
  for (size_t i = 0; i < objects->size(); ++i)
    if (auto e = (*jit)->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(
            (*objects)[i], fmt::format("graphc-{}-{}.o", isa.name, i))))
      return error("LLVM JIT: " + errorText(std::move(e)));

  auto out = std::unique_ptr<JitModule>(new JitModule);
  out->impl_ = std::make_unique<Impl>();
  for (size_t i = 0; i < programs.size(); ++i) {
    auto sym = (*jit)->lookup(prefixes[i] + "run");
    if (!sym)
      return error("LLVM JIT: " + errorText(sym.takeError()));
    programs[i]->run = sym->toPtr<void (*)(void **, int64_t, void *, void *)>();
    auto stepwise = (*jit)->lookup(prefixes[i] + "run_kernels");
    if (!stepwise)
      return error("LLVM JIT: " + errorText(stepwise.takeError()));
    programs[i]->runKernels = stepwise->toPtr<decltype(programs[i]->runKernels)>();
  }
  out->impl_->jit = std::move(*jit);
  if (compileMs)
    *compileMs =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

Expected<void *> JitModule::lookup(const std::string &name) {
  auto sym = impl_->jit->lookup(name);
  if (!sym)
    return error("LLVM JIT: " + errorText(sym.takeError()));
  return sym->toPtr<void *>();
}

Expected<std::string> emitCode(std::vector<Program *> programs,
                               const std::vector<std::string> &prefixes, EmitKind kind,
                               const std::vector<VectorTarget> &isas, const std::string &microName,
                               const std::function<void(llvm::Module &)> &extra) {
  GRAPHC_CHECK(!isas.empty(), "no vector ISA to emit code for");
  // The module's own CPU is the least ISA asked for: what the descriptor
  // and the dispatchers run on.
  auto jtmb = builderFor(isas.front().cpu);
  if (kind == EmitKind::Object) // relocatable code for a static library
    jtmb.setRelocationModel(llvm::Reloc::PIC_);
  auto tm = jtmb.createTargetMachine();
  if (!tm)
    return error("LLVM target machine: " + errorText(tm.takeError()));
  llvm::LLVMContext ctx;
  auto m = buildModule(ctx, programs, prefixes, isas, microName, "", false);
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
