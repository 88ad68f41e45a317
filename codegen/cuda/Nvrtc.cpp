// codegen/cuda/Nvrtc.cpp - the NVRTC calls, each checked, the log kept.
#include "codegen/cuda/Nvrtc.h"

#include <fmt/format.h>
#include <nvrtc.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

namespace graphc::codegen::cuda {

Expected<std::string> compileToPtx(const std::string &source, const std::string &name,
                                   const std::string &arch) {
  nvrtcProgram prog;
  nvrtcResult r =
      nvrtcCreateProgram(&prog, source.c_str(), (name + ".cu").c_str(), 0, nullptr, nullptr);
  if (r != NVRTC_SUCCESS)
    return error(fmt::format("NVRTC cannot create {}: {}", name, nvrtcGetErrorString(r)));
  std::unique_ptr<nvrtcProgram, void (*)(nvrtcProgram *)> guard(
      &prog, [](nvrtcProgram *p) { nvrtcDestroyProgram(p); });
  std::string archFlag = "--gpu-architecture=" + arch;
  const char *opts[] = {archFlag.c_str(), "--std=c++17", "-default-device"};
  r = nvrtcCompileProgram(prog, 3, opts);
  if (r != NVRTC_SUCCESS) {
    size_t size = 0;
    nvrtcGetProgramLogSize(prog, &size);
    std::string log(size, '\0');
    nvrtcGetProgramLog(prog, log.data());
    return error(fmt::format("NVRTC failed on kernel {} for {} ({}):\n{}", name, arch,
                             nvrtcGetErrorString(r), log));
  }
  size_t size = 0;
  if ((r = nvrtcGetPTXSize(prog, &size)) != NVRTC_SUCCESS)
    return error(fmt::format("NVRTC: {}", nvrtcGetErrorString(r)));
  std::string ptx(size, '\0');
  if ((r = nvrtcGetPTX(prog, ptx.data())) != NVRTC_SUCCESS)
    return error(fmt::format("NVRTC: {}", nvrtcGetErrorString(r)));
  while (!ptx.empty() && ptx.back() == '\0')
    ptx.pop_back();
  return ptx;
}

bool havePtxas() {
#ifdef GRAPHC_PTXAS
  return ::access(GRAPHC_PTXAS, X_OK) == 0;
#else
  return false;
#endif
}

Status assemblePtx(const std::string &ptx, const std::string &name, const std::string &arch) {
#ifdef GRAPHC_PTXAS
  std::error_code ec;
  std::string dir = (std::filesystem::temp_directory_path(ec) / "graphc-ptxas-XXXXXX").string();
  if (ec || !::mkdtemp(dir.data()))
    return error("ptxas: cannot create a temporary folder");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code e;
      std::filesystem::remove_all(dir, e);
    }
  } cleanup{dir};
  std::string in = dir + "/kernel.ptx", out = dir + "/kernel.cubin";
  if (!(std::ofstream(in, std::ios::binary) << ptx))
    return error(fmt::format("ptxas: cannot write {}", in));
  std::string cmd = fmt::format("'{}' -arch={} '{}' -o '{}' 2>&1", GRAPHC_PTXAS, arch, in, out);
  FILE *p = ::popen(cmd.c_str(), "r");
  if (!p)
    return error("ptxas: cannot run " GRAPHC_PTXAS);
  std::string log;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p))
    log.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0)
    return error(fmt::format("ptxas rejected kernel {} for {}:\n{}", name, arch, log));
  return {};
#else
  return error("ptxas: this graphc was built without the CUDA toolkit's ptxas");
#endif
}

std::string nvrtcVersion() {
  int major = 0, minor = 0;
  ::nvrtcVersion(&major, &minor);
  return fmt::format("{}.{}", major, minor);
}

} // namespace graphc::codegen::cuda
