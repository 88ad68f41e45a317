// runtime/cuda/Program.h - one fused graph (the training step or the
// evaluation pass) on the GPU.
//
// The GPU twin of the CPU backend's run function (codegen/cpu/
// StepFunction.cpp): every kernel group is printed as CUDA C
// (codegen/cuda/CudaSource.h), compiled by NVRTC for the device's own
// architecture and loaded; every stored value is pointed at device memory
// exactly as the CPU binds it (graph inputs and outputs are the caller's
// buffers, other values live in one arena laid out by the memory plan,
// views sit at their offset in the buffer they view), and that pointer
// table is uploaded once, since no buffer ever moves. Matrix products run
// through cuBLASLt, with its bias / ReLU-bias epilogue where the plan asks
// for it. The first run at a batch size launches everything directly and
// captures the same launches into a CUDA graph; later runs at that size
// replay the graph.
#pragma once

#include "codegen/cuda/CudaSource.h"
#include "ir/MemoryPlan.h"
#include "runtime/cuda/Device.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace graphc::runtime::cuda {

class Program {
public:
  /// `plan` must be made for the largest batch the program will run.
  Program(Device &device, ir::Graph graph, ir::MemoryPlan plan, std::string prefix, bool tf32);
  ~Program();
  Program(const Program &) = delete;
  Program &operator=(const Program &) = delete;

  /// Prints, compiles (NVRTC, in parallel) and loads every kernel group.
  Status compile();
  /// Points every value at memory. `io` maps each graph input's name, and
  /// "out:NAME" for each output, to a device buffer of the plan's batch;
  /// the arena is allocated here.
  Status bind(const std::map<std::string, CUdeviceptr> &io);
  /// Enqueues the whole program at batch n (1..plan batch) on the device's
  /// stream; does not wait for it.
  Status run(int64_t n);

  /// For a diagnosis: kernels [first, last) at batch n, launched directly
  /// (this size is then never captured), and the output copies when `last`
  /// is the end; waits for them.
  Status runKernels(int64_t n, size_t first, size_t last);
  size_t kernelCount() const { return kernels_.size(); }
  const codegen::KernelPlan &kernelPlan(size_t i) const { return kernels_[i].plan; }
  /// Value v at batch n as it is on the device now; empty where it has no
  /// memory of its own (fused into a kernel). Waits for the stream.
  Expected<std::vector<float>> read(ir::ValueId v, int64_t n);

  const ir::Graph &graph() const { return graph_; }
  double compileMs() const { return compileMs_; }
  /// GRAPHC_CUDA_GRAPHS=0 in the environment: launch directly every time.
  static bool graphsEnabled();
  /// Why the last capture failed ("" when none did): that batch size then
  /// launches directly, and the step it came with has counted once.
  const std::string &captureFailure() const { return captureFailure_; }

private:
  struct Gemm;
  struct Batch;

  Expected<std::unique_ptr<Batch>> prepare(int64_t n);
  Expected<std::unique_ptr<Gemm>> planGemm(const codegen::cuda::CudaKernel &k, int64_t n);
  Status enqueue(int64_t n, Batch &batch);
  Status enqueueKernel(size_t i, int64_t n, Batch &batch);
  Status enqueueOutputCopies(int64_t n);
  /// The plans of batch size n, made (without a graph) the first time.
  Expected<Batch *> batchFor(int64_t n);
  /// Records the launches of `batch` into a graph for the next runs at n;
  /// runs nothing.
  Status capture(int64_t n, Batch &batch);
  Status enqueueGemm(const codegen::cuda::CudaKernel &k, const Gemm &gemm, int64_t n);

  Device &dev_;
  ir::Graph graph_;
  ir::MemoryPlan plan_;
  std::string prefix_;
  std::string captureFailure_;
  bool tf32_;
  double compileMs_ = 0;
  std::vector<codegen::cuda::CudaKernel> kernels_;
  std::vector<CUfunction> main_, colsum_; ///< per kernel; null where none
  DeviceBuffer arena_, table_;
  std::vector<CUdeviceptr> at_; ///< per value: its memory (0: none)
  /// Outputs whose value lives elsewhere: (value, caller's buffer).
  std::vector<std::pair<ir::ValueId, CUdeviceptr>> outputCopies_;
  std::map<int64_t, std::unique_ptr<Batch>> batches_;
};

} // namespace graphc::runtime::cuda
