// runtime/cuda/Device.cpp - context, stream, cuBLASLt handle, buffers, modules.
#include "runtime/cuda/Device.h"

#include "codegen/cuda/CudaSource.h"
#include "codegen/cuda/Nvrtc.h"
#include "runtime/cuda/CudaRuntime.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace graphc::runtime::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

} // namespace

std::string describeLt(cublasStatus_t s) {
  const char *name = cublasLtGetStatusName(s), *text = cublasLtGetStatusString(s);
  return fmt::format("{} ({})", name ? name : "?", text ? text : "?");
}

// --- buffers ------------------------------------------------------------------

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = std::exchange(o.ptr_, 0);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { reset(); }

void DeviceBuffer::reset() {
  if (ptr_)
    if (const Driver *d = loadedDriver())
      d->cuMemFree(ptr_);
  ptr_ = 0;
  bytes_ = 0;
}

Status DeviceBuffer::allocate(size_t bytes) {
  auto d = driver();
  if (!d)
    return d.diag();
  reset();
  bytes = std::max<size_t>(bytes, 256);
  if (CUresult r = (*d)->cuMemAlloc(&ptr_, bytes); r != CUDA_SUCCESS)
    return (*d)->fail(r, fmt::format("cuMemAlloc of {} bytes", bytes));
  bytes_ = bytes;
  // Zeroed before anyone uses it: the memset runs on the legacy stream,
  // which graphc's non-blocking streams do not wait for.
  GRAPHC_CU(**d, (*d)->cuMemsetD8Async(ptr_, 0, bytes, nullptr));
  GRAPHC_CU(**d, (*d)->cuStreamSynchronize(nullptr));
  return {};
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_)
    if (const Driver *d = loadedDriver())
      d->cuMemFreeHost(ptr_);
}

Status PinnedBuffer::allocate(size_t bytes) {
  auto d = driver();
  if (!d)
    return d.diag();
  if (ptr_)
    (*d)->cuMemFreeHost(ptr_);
  ptr_ = nullptr;
  if (CUresult r = (*d)->cuMemAllocHost(&ptr_, std::max<size_t>(bytes, 64)); r != CUDA_SUCCESS)
    return (*d)->fail(r, fmt::format("cuMemAllocHost of {} bytes", bytes));
  return {};
}

// --- the device ------------------------------------------------------------------

Expected<std::unique_ptr<Device>> Device::open() {
  auto drv = cuda::driver();
  if (!drv)
    return drv.diag();
  const Driver &d = **drv;
  std::unique_ptr<Device> dev(new Device(d));
  GRAPHC_CU(d, d.cuDeviceGet(&dev->dev_, 0));
  GRAPHC_CU(d, d.cuDevicePrimaryCtxRetain(&dev->ctx_, dev->dev_));
  GRAPHC_CU(d, d.cuCtxSetCurrent(dev->ctx_));
  GRAPHC_CU(
      d, d.cuDeviceGetAttribute(&dev->sms_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev->dev_));
  GRAPHC_CU(d, d.cuDeviceGetAttribute(&dev->major_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                      dev->dev_));
  GRAPHC_CU(d, d.cuDeviceGetAttribute(&dev->minor_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                      dev->dev_));
  char name[256] = {};
  GRAPHC_CU(d, d.cuDeviceGetName(name, sizeof name - 1, dev->dev_));
  dev->name_ = name;
  GRAPHC_CU(d, d.cuStreamCreate(&dev->stream_, CU_STREAM_NON_BLOCKING));
  GRAPHC_LT(cublasLtCreate(&dev->lt_));
  if (Status s = dev->workspace_.allocate(kWorkspaceBytes); !s)
    return s.diag();
  if (Status s = dev->synchronize(); !s)
    return s.diag();
  return dev;
}

Device::~Device() {
  if (!ctx_)
    return;
  d_.cuCtxSetCurrent(ctx_);
  if (stream_)
    d_.cuStreamSynchronize(stream_);
  for (CUmodule m : modules_)
    d_.cuModuleUnload(m);
  if (lt_)
    cublasLtDestroy(lt_);
  if (stream_)
    d_.cuStreamDestroy(stream_);
  workspace_.reset();
  d_.cuDevicePrimaryCtxRelease(dev_);
}

Status Device::makeCurrent() const {
  GRAPHC_CU(d_, d_.cuCtxSetCurrent(ctx_));
  return {};
}

Status Device::synchronize() const {
  GRAPHC_CU(d_, d_.cuStreamSynchronize(stream_));
  return {};
}

Expected<CUmodule> Device::loadModule(const std::string &ptx, const std::string &what) {
  std::string log(8192, '\0');
  CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *values[] = {log.data(), reinterpret_cast<void *>(uintptr_t(log.size()))};
  CUmodule m = nullptr;
  if (CUresult r = d_.cuModuleLoadDataEx(&m, ptx.c_str(), 2, opts, values); r != CUDA_SUCCESS) {
    log.resize(log.find('\0') == std::string::npos ? log.size() : log.find('\0'));
    Diag e = d_.fail(r, "cuModuleLoadDataEx (" + what + ")");
    if (!log.empty())
      e.message += "\n" + log;
    return e;
  }
  modules_.push_back(m);
  return m;
}

Expected<CUfunction> Device::function(CUmodule m, const std::string &name) const {
  CUfunction f = nullptr;
  if (CUresult r = d_.cuModuleGetFunction(&f, m, name.c_str()); r != CUDA_SUCCESS)
    return d_.fail(r, "cuModuleGetFunction(" + name + ")");
  return f;
}

Expected<CUfunction> Device::helper(const std::string &name) {
  if (!helpers_) {
    auto ptx = codegen::cuda::compileToPtx(codegen::cuda::helperSource(), "graphc_helpers", arch());
    if (!ptx)
      return ptx.diag();
    auto m = loadModule(*ptx, "graphc_helpers");
    if (!m)
      return m.diag();
    helpers_ = *m;
  }
  return function(helpers_, name);
}

Status Device::launch(CUfunction f, int64_t blocks, int threads, void **args) const {
  GRAPHC_CU(d_, d_.cuLaunchKernel(f, unsigned(blocks), 1, 1, unsigned(threads), 1, 1, 0, stream_,
                                  args, nullptr));
  return {};
}

int64_t Device::blocksFor(int64_t total, int threads) const {
  int64_t want = (total + threads - 1) / threads;
  return std::clamp<int64_t>(want, 1, int64_t(std::max(sms_, 1)) * 32);
}

} // namespace graphc::runtime::cuda
