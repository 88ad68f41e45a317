// driver/Targets.cpp - the table, with each backend compiled in or not.
#include "driver/Targets.h"

#ifdef GRAPHC_HAVE_CPU_BACKEND
#include "runtime/cpu/CpuExecutable.h"
#endif
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
#include "runtime/cuda/CudaRuntime.h"
#endif

#include <fmt/format.h>

namespace graphc::driver {

const std::vector<Target> &targets() {
  static const std::vector<Target> all = [] {
    std::vector<Target> t;
#ifdef GRAPHC_HAVE_CPU_BACKEND
    t.push_back({"cpu", "cpu (LLVM: vectorised, multi-threaded CPU code)",
                 runtime::cpu::makeCpuExecutable, writeCpuLibrary, "", true});
#else
    t.push_back({"cpu", "cpu (LLVM: vectorised, multi-threaded CPU code)", {}, {},
                 "this graphc was built without the CPU backend (-DGRAPHC_CPU_BACKEND=OFF)",
                 true});
#endif
    Target cuda{"cuda",
                "cuda (an NVIDIA GPU: NVRTC kernels, cuBLASLt, CUDA graphs)",
                {},
                {},
                "this graphc was built without the CUDA toolkit",
                true};
#if defined(GRAPHC_HAVE_CUDA) && defined(GRAPHC_HAVE_CPU_BACKEND)
    cuda.writeLibrary = writeCudaLibrary;
#endif
#ifdef GRAPHC_HAVE_CUDA_RUNTIME
    cuda.makeExecutable = runtime::cuda::makeCudaExecutable;
#endif
    t.push_back(cuda);
    t.push_back({"interp",
                 "interp (the double-precision reference interpreter; slow)",
                 [](runtime::CompiledModel m, const runtime::ExecutableOptions &o)
                     -> Expected<std::unique_ptr<runtime::Executable>> {
                   return runtime::makeInterpExecutable(std::move(m), o.maxBatch);
                 },
                 {},
                 "",
                 false});
    return t;
  }();
  return all;
}

std::string defaultTarget() {
  for (const Target &t : targets())
    if (t.makeExecutable)
      return t.name;
  return "interp";
}

const Target *findTarget(const std::string &name) {
  for (const Target &t : targets())
    if (t.name == name)
      return &t;
  return nullptr;
}

std::vector<std::string> targetNames(bool libraries) {
  std::vector<std::string> names;
  for (const Target &t : targets())
    if (!libraries || t.library)
      names.push_back(t.name);
  return names;
}

std::string describeTargets(bool libraries) {
  std::vector<std::string> parts;
  for (const Target &t : targets())
    if (!libraries || t.library)
      parts.push_back(t.description);
  std::string last = parts.back();
  parts.pop_back();
  return fmt::format("{} or {}", fmt::join(parts, ", "), last);
}

} // namespace graphc::driver
