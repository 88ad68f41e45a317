// codegen/cuda/Nvrtc.cpp - the NVRTC calls, each checked, the log kept.
#include "codegen/cuda/Nvrtc.h"

#include <fmt/format.h>
#include <nvrtc.h>

#include <memory>
#include <vector>

namespace graphc::codegen::cuda {

Expected<std::string> compileToPtx(const std::string &source, const std::string &name,
                                   const std::string &arch) {
  nvrtcProgram prog;
  nvrtcResult r = nvrtcCreateProgram(&prog, source.c_str(), (name + ".cu").c_str(), 0,
                                     nullptr, nullptr);
  if (r != NVRTC_SUCCESS)
    return error(fmt::format("NVRTC cannot create {}: {}", name, nvrtcGetErrorString(r)));
  std::unique_ptr<nvrtcProgram, void (*)(nvrtcProgram *)> guard(&prog, [](nvrtcProgram *p) {
    nvrtcDestroyProgram(p);
  });
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

std::string nvrtcVersion() {
  int major = 0, minor = 0;
  ::nvrtcVersion(&major, &minor);
  return fmt::format("{}.{}", major, minor);
}

} // namespace graphc::codegen::cuda
