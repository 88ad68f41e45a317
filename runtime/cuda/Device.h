// runtime/cuda/Device.h - one GPU as an executable sees it: the driver's
// primary context, a stream, a cuBLASLt handle with its workspace, device
// and pinned host buffers, and graphc's own helper kernels.
//
// Every executable opens its own Device (its own stream and handle) on the
// primary context of device 0, the context the CUDA runtime inside
// cuBLASLt uses too, so the two APIs share memory and streams.
#pragma once

#include "runtime/cuda/Driver.h"

#include <cublasLt.h>
#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace graphc::runtime::cuda {

/// cuBLASLt's error text: "CUBLAS_STATUS_NOT_SUPPORTED (...)".
std::string describeLt(cublasStatus_t s);

/// Returns the error when a cuBLASLt call fails.
#define GRAPHC_LT(call)                                                                            \
  do {                                                                                             \
    if (cublasStatus_t graphc_lt_s = (call); graphc_lt_s != CUBLAS_STATUS_SUCCESS)                 \
      return ::graphc::error("cuBLASLt error in " #call ": " +                                     \
                             ::graphc::runtime::cuda::describeLt(graphc_lt_s));                    \
  } while (0)

/// Device memory, freed with its owner.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer &&o) noexcept { *this = std::move(o); }
  DeviceBuffer &operator=(DeviceBuffer &&o) noexcept;
  ~DeviceBuffer();
  /// Frees what it held and allocates `bytes` (at least 256), zeroed.
  Status allocate(size_t bytes);
  CUdeviceptr get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  /// Frees the memory now.
  void reset();

private:
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
};

/// Page-locked host memory, for asynchronous copies.
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;
  ~PinnedBuffer();
  Status allocate(size_t bytes);
  template <class T = void> T *get() const { return static_cast<T *>(ptr_); }

private:
  void *ptr_ = nullptr;
};

class Device {
public:
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;
  ~Device();

  /// Device 0 (CUDA_VISIBLE_DEVICES chooses which GPU that is).
  static Expected<std::unique_ptr<Device>> open();

  /// Makes the context current on the calling thread.
  Status makeCurrent() const;
  Status synchronize() const;

  const Driver &driver() const { return d_; }
  CUstream stream() const { return stream_; }
  cublasLtHandle_t lt() const { return lt_; }
  CUdeviceptr workspace() const { return workspace_.get(); }
  size_t workspaceBytes() const { return workspace_.bytes(); }
  int multiprocessors() const { return sms_; }
  /// The NVRTC architecture of this device, e.g. "sm_90".
  std::string arch() const { return fmt::format("sm_{}{}", major_, minor_); }
  const std::string &name() const { return name_; }

  /// Loads a PTX module; a failure carries the JIT's log.
  Expected<CUmodule> loadModule(const std::string &ptx, const std::string &what);
  Expected<CUfunction> function(CUmodule m, const std::string &name) const;

  /// One of graphc's own kernels (compiled on first use): "graphc_gather"
  /// builds a batch from a device data set; "graphc_bias_add" adds a bias
  /// (and applies ReLU) where cuBLASLt's epilogue cannot.
  Expected<CUfunction> helper(const std::string &name);

  /// Launches `f` on the stream with `args` (pointers to the arguments).
  Status launch(CUfunction f, int64_t blocks, int threads, void **args) const;
  /// Enough blocks of `threads` for a grid-stride loop over `total` items.
  int64_t blocksFor(int64_t total, int threads) const;

private:
  explicit Device(const Driver &d) : d_(d) {}

  const Driver &d_;
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  DeviceBuffer workspace_;
  int sms_ = 0, major_ = 0, minor_ = 0;
  std::string name_;
  std::vector<CUmodule> modules_;
  CUmodule helpers_ = nullptr;
};

} // namespace graphc::runtime::cuda
