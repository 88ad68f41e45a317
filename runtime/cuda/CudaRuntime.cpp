// runtime/cuda/CudaRuntime.cpp - device queries, versions, and one fused
// graph run on host buffers (the per-op tests' entry point).
#include "runtime/cuda/CudaRuntime.h"

#include "codegen/cuda/Nvrtc.h"
#include "runtime/cuda/Program.h"

#include <fmt/format.h>

#include <cstring>

namespace graphc::runtime::cuda {

Status deviceAvailable() {
  auto d = driver();
  if (!d)
    return d.diag();
  return {};
}

Expected<std::string> describeDevice() {
  auto dev = Device::open();
  if (!dev)
    return dev.diag();
  int v = (*dev)->driver().version;
  return fmt::format("{} ({}, {} SMs), driver for CUDA {}.{}", (*dev)->name(), (*dev)->arch(),
                     (*dev)->multiprocessors(), v / 1000, v % 1000 / 10);
}

std::string toolkitVersions() {
  size_t lt = cublasLtGetVersion();
  return fmt::format("cuBLASLt {}.{}.{}, NVRTC {}", lt / 10000, lt / 100 % 100, lt % 100,
                     codegen::cuda::nvrtcVersion());
}

Status runGraph(const ir::Graph &g, const ir::MemoryPlan &plan, int64_t batch,
                const std::map<std::string, void *> &io, bool tf32) {
  auto dev = Device::open();
  if (!dev)
    return dev.diag();
  const Driver &d = (*dev)->driver();
  Program program(**dev, g, plan, "t_", tf32);
  if (Status s = program.compile(); !s)
    return s;

  std::map<std::string, DeviceBuffer> buffers;
  std::map<std::string, CUdeviceptr> bound;
  std::vector<std::pair<void *, size_t>> outputs; // host memory, bytes
  auto host = [&](const std::string &name) {
    auto it = io.find(name);
    GRAPHC_CHECK(it != io.end() && it->second, "no host buffer for {}", name);
    return it->second;
  };
  for (ir::ValueId v : g.inputs()) {
    std::string name = g.node(v).attrs.s("name");
    size_t bytes = size_t(g.type(v).numel(batch)) * 4;
    if (Status s = buffers[name].allocate(bytes); !s)
      return s;
    GRAPHC_CU(d, d.cuMemcpyHtoDAsync(buffers[name].get(), host(name), bytes, (*dev)->stream()));
    bound[name] = buffers[name].get();
  }
  if (Status s = (*dev)->synchronize(); !s) // the inputs are on the GPU before any kernel runs
    return s;
  std::vector<std::string> outNames;
  for (const ir::Output &o : g.outputs()) {
    std::string name = "out:" + o.name;
    size_t bytes = size_t(g.type(o.value).numel(batch)) * 4;
    if (Status s = buffers[name].allocate(bytes); !s)
      return s;
    bound[name] = buffers[name].get();
    outputs.push_back({host(name), bytes});
    outNames.push_back(name);
  }
  if (Status s = program.bind(bound); !s)
    return s;

  // Twice: launched directly, then replayed from the captured graph. Both
  // must give the same bits.
  std::vector<std::vector<char>> first;
  for (int round = 0; round < 2; ++round) {
    if (Status s = program.run(batch); !s)
      return s;
    if (Status s = (*dev)->synchronize(); !s)
      return s;
    for (size_t i = 0; i < outputs.size(); ++i) {
      std::vector<char> got(outputs[i].second);
      GRAPHC_CU(d, d.cuMemcpyDtoH(got.data(), buffers[outNames[i]].get(), got.size()));
      if (round == 0) {
        std::memcpy(outputs[i].first, got.data(), got.size());
        first.push_back(std::move(got));
      } else if (got != first[i]) {
        return error(fmt::format("output {} differs between the direct launch and the CUDA "
                                 "graph replay",
                                 outNames[i]));
      }
    }
  }
  return {};
}

} // namespace graphc::runtime::cuda
