// runtime/cuda/CudaRuntime.cpp - device queries, versions, and one fused
// graph run on host buffers (the per-op tests' entry point).
#include "runtime/cuda/CudaRuntime.h"

#include "codegen/cuda/AotProgram.h"
#include "codegen/cuda/Nvrtc.h"
#include "runtime/cuda/Driver.h"
#include "runtime/cuda/Emulator.h"
#include "runtime/rt/graphc_cuda_model.h"

#include <fmt/format.h>

namespace graphc::runtime::cuda {

Status deviceAvailable() {
  auto d = driver();
  if (!d)
    return d.diag();
  return {};
}

namespace {

/// The driver (or the emulated device) and device 0's facts.
Expected<std::pair<const Driver *, DeviceFacts>> device() {
  auto d = driver();
  if (!d)
    return d.diag();
  auto facts = deviceFacts(**d);
  if (!facts)
    return facts.diag();
  return std::pair{*d, *facts};
}

} // namespace

Expected<std::string> describeDevice() {
  auto dev = device();
  if (!dev)
    return dev.diag();
  const auto &[d, facts] = *dev;
  int v = d->version;
  return fmt::format("{} ({}, {} SMs), driver for CUDA {}.{}", facts.name, facts.arch,
                     facts.multiprocessors, v / 1000, v % 1000 / 10);
}

Expected<std::string> cudnnNote() {
  auto dev = device();
  if (!dev)
    return dev.diag();
  return dev->first->cudnnNote;
}

Expected<ConvGraphEngines> checkConvGraph(const int64_t *record, int64_t n, CudnnCheck where) {
  const Driver *api = &cudnnLibrary();
  if (where == CudnnCheck::Emulated) {
    auto emulated = loadEmulator();
    if (!emulated)
      return emulated.diag();
    api = *emulated;
  }
  if (!api->cudnnBackendFinalize)
    return error(api->cudnnNote);
  char why[256] = "";
  ConvGraphEngines c;
  if (grt_cuda_check_conv_graph(api, record, n, &c.engines, &c.ranked, why, sizeof why) != GRT_OK)
    return error(why);
  return c;
}

std::string toolkitVersions() {
  size_t lt = cublasLtGetVersion();
  return fmt::format("cuBLASLt {}.{}.{}, NVRTC {}", lt / 10000, lt / 100 % 100, lt % 100,
                     codegen::cuda::nvrtcVersion());
}

Status runGraph(const ir::Graph &g, const ir::MemoryPlan &plan, int64_t batch,
                const std::map<std::string, void *> &io, bool tf32) {
  auto dev = device();
  if (!dev)
    return dev.diag();
  auto image = codegen::cuda::encodeDeviceProgram(g, plan, dev->second.arch, "t_");
  if (!image)
    return image.diag();
  std::vector<const char *> strings;
  for (const std::string &s : image->strings)
    strings.push_back(s.c_str());
  grt_cuda_desc desc{};
  desc.num_strings = int64_t(strings.size());
  desc.strings = strings.data();
  desc.step = image->step.data();
  desc.step_words = int64_t(image->step.size());
  desc.helpers_ptx = image->helpersPtx.c_str();
  desc.arch = image->arch.c_str();
  desc.tf32 = tf32;
  desc.api = dev->first;

  // Every input and output with its host memory and its size at `batch`.
  std::vector<std::string> names;
  std::vector<void *> host;
  std::vector<int64_t> bytes;
  auto add = [&](const std::string &name, ir::ValueId v) {
    auto it = io.find(name);
    GRAPHC_CHECK(it != io.end() && it->second, "no host buffer for {}", name);
    names.push_back(name);
    host.push_back(it->second);
    bytes.push_back(g.type(v).numel(batch) * 4); // f32 and i32 alike
  };
  for (ir::ValueId v : g.inputs())
    add(g.node(v).attrs.s("name"), v);
  for (const ir::Output &o : g.outputs())
    add("out:" + o.name, o.value);
  std::vector<const char *> cnames;
  for (const std::string &n : names)
    cnames.push_back(n.c_str());
  char text[512] = "";
  if (grt_cuda_run_program(&desc, batch, int64_t(names.size()), cnames.data(), host.data(),
                           bytes.data(), text, sizeof text) != GRT_OK)
    return error(text);
  return {};
}

} // namespace graphc::runtime::cuda
