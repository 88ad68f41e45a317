// runtime/cuda/CudaExecutable.cpp - the cuda target behind the Executable
// interface.
//
// Parameters, optimizer state and the step's buffers live on the device for
// the executable's life; a training step copies the batch from the caller
// through pinned memory, replays the step's CUDA graph and copies the loss
// (and output) back: one wait per step. params() and state() hand out a host
// mirror, refreshed from the device when a step has run since, and written
// back before the next step when it was handed out. With uploadDataset the
// whole data set stays on the device too and trainStepOnDevice builds each
// batch there from an index list (graphc_gather), so a step moves only the
// indices in and the loss out.
#include "ir/graphc_io.h"
#include "runtime/cuda/CudaRuntime.h"

#include "runtime/cuda/Program.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace graphc::runtime::cuda {
namespace {

// The step's scalars in one small device buffer (and its pinned twin), laid
// out as ir/graphc_io.h says: inputs first, so one copy uploads both.
constexpr size_t kStepIn = GRAPHC_SCALAR_STEP_IN;   // float: the step counter before the update
constexpr size_t kSeedIn = GRAPHC_SCALAR_SEED_IN;   // int32: Dropout's seed
constexpr size_t kInBytes = GRAPHC_SCALAR_IN_BYTES;
constexpr size_t kLoss = GRAPHC_SCALAR_LOSS;        // float: the batch's mean loss
constexpr size_t kStepOut = GRAPHC_SCALAR_STEP_OUT; // float: the step counter after the update

class CudaExecutable : public Executable {
public:
  Status init(std::unique_ptr<Device> dev, CompiledModel m, const ExecutableOptions &o) {
    dev_ = std::move(dev);
    maxBatch_ = o.maxBatch;
    info_ = m.info;
    sample_ = 1;
    for (int64_t d : info_.sample)
      sample_ *= d;
    // The memplan pass's plans, made for the largest batch.
    GRAPHC_CHECK(m.predictPlan.batch >= maxBatch_ &&
                     (!m.trainable() || m.stepPlan.batch >= maxBatch_),
                 "plans for batch {} run at batch {}", m.predictPlan.batch, maxBatch_);
    if (m.trainable()) {
      step_ = std::make_unique<Program>(*dev_, std::move(m.step), std::move(m.stepPlan), "step_",
                                        o.tf32);
      if (Status s = step_->compile(); !s)
        return s;
    }
    predict_ = std::make_unique<Program>(*dev_, std::move(m.predict), std::move(m.predictPlan),
                                         "predict_", o.tf32);
    if (Status s = predict_->compile(); !s)
      return s;

    const size_t np = size_t(info_.numParams), mb = size_t(maxBatch_);
    for (auto [buf, bytes] :
         {std::pair{&params_, np * 4}, std::pair{&x_, mb * size_t(sample_) * 4},
          std::pair{&labels_, mb * 4}, std::pair{&output_, mb * size_t(info_.classes) * 4},
          std::pair{&scalars_, size_t(1024)}, std::pair{&indices_, mb * 8}})
      if (Status s = buf->allocate(bytes); !s)
        return s;
    for (const std::string &slot : info_.stateSlots)
      if (Status s = state_[slot].allocate(np * 4); !s)
        return s;
    for (auto [buf, bytes] :
         {std::pair{&hostX_, mb * size_t(sample_) * 4}, std::pair{&hostLabels_, mb * 4},
          std::pair{&hostOutput_, mb * size_t(info_.classes) * 4},
          std::pair{&hostScalars_, size_t(1024)}, std::pair{&hostIndices_, mb * 8}})
      if (Status s = buf->allocate(bytes); !s)
        return s;
    mirrorParams_.assign(np, 0.0f);
    for (const std::string &slot : info_.stateSlots)
      mirrorState_[slot].assign(np, 0.0f);

    std::map<std::string, CUdeviceptr> io{
        {GRAPHC_IO_X, x_.get()},
        {GRAPHC_IO_LABELS, labels_.get()},
        {GRAPHC_IO_PARAMS, params_.get()},
        {GRAPHC_IO_STEP, scalars_.get() + kStepIn},
        {GRAPHC_IO_SEED, scalars_.get() + kSeedIn},
        {GRAPHC_IO_OUT GRAPHC_IO_LOSS, scalars_.get() + kLoss},
        {GRAPHC_IO_OUT GRAPHC_IO_OUTPUT, output_.get()},
        {GRAPHC_IO_OUT GRAPHC_IO_PARAMS, params_.get()},
        {GRAPHC_IO_OUT GRAPHC_IO_STEP, scalars_.get() + kStepOut}};
    for (auto &[slot, buf] : state_) {
      io[GRAPHC_IO_STATE + slot] = buf.get();
      io[GRAPHC_IO_OUT GRAPHC_IO_STATE + slot] = buf.get();
    }
    if (step_)
      if (Status s = step_->bind(io); !s)
        return s;
    if (Status s = predict_->bind(
            {{GRAPHC_IO_X, x_.get()},
             {GRAPHC_IO_PARAMS, params_.get()},
             {GRAPHC_IO_OUT GRAPHC_IO_OUTPUT, output_.get()}});
        !s)
      return s;
    return dev_->synchronize();
  }

  std::string target() const override { return "cuda"; }
  int64_t maxBatch() const override { return maxBatch_; }

  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    if (Status s = stageBatch(x, labels, n); !s)
      return s;
    return finishStep(n, loss, output);
  }

  bool canDiagnoseSteps() const override { return bool(step_); }

  Expected<NonFiniteReport> diagnoseStep(const float *x, const int32_t *labels,
                                         int64_t n) override {
    if (Status s = stageBatch(x, labels, n); !s)
      return s.diag();
    if (Status s = stageScalars(); !s)
      return s.diag();
    // The inputs first, then what each kernel group wrote, one group at a
    // time; every group runs, so the step is applied as trainStep applies it.
    auto first = firstNonFiniteOf(step_->graph().inputs(), n);
    for (size_t k = 0; first && k < step_->kernelCount(); ++k) {
      if (Status s = step_->runKernels(n, k, k + 1); !s)
        return s.diag();
      if (first->found)
        continue;
      const codegen::KernelPlan &plan = step_->kernelPlan(k);
      std::vector<ir::ValueId> wrote = plan.members;
      for (ir::ValueId v : {plan.c, plan.colsum, plan.pack})
        if (v >= 0)
          wrote.push_back(v);
      std::sort(wrote.begin(), wrote.end());
      first = firstNonFiniteOf(wrote, n);
    }
    if (!first)
      return first;
    if (Status s = step_->runKernels(n, step_->kernelCount(), step_->kernelCount()); !s)
      return s.diag(); // the output copies
    ++stepCount_;
    return first;
  }

  Status predict(const float *x, int64_t n, float *output) override {
    if (Status s = checkBatch(n); !s)
      return s;
    if (!x)
      return error("no input given");
    if (!output)
      return error("no output buffer given");
    if (Status s = begin(); !s)
      return s;
    const Driver &d = dev_->driver();
    const size_t outBytes = size_t(n * info_.classes) * 4;
    std::memcpy(hostX_.get(), x, size_t(n * sample_) * 4);
    GRAPHC_CU(d,
              d.cuMemcpyHtoDAsync(x_.get(), hostX_.get(), size_t(n * sample_) * 4, dev_->stream()));
    if (Status s = predict_->run(n); !s)
      return s;
    GRAPHC_CU(d, d.cuMemcpyDtoHAsync(hostOutput_.get(), output_.get(), outBytes, dev_->stream()));
    if (Status s = dev_->synchronize(); !s)
      return s;
    std::memcpy(output, hostOutput_.get(), outBytes);
    return {};
  }

  Status uploadDataset(const float *x, const int32_t *labels, int64_t count) override {
    if (!x || !labels || count < 1)
      return error("uploadDataset needs samples, labels and a count of at least 1");
    if (Status s = checkLabels(labels, count); !s)
      return s;
    if (Status s = dev_->makeCurrent(); !s)
      return s;
    datasetCount_ = 0;
    const size_t xBytes = size_t(count * sample_) * 4;
    if (Status s = dataX_.allocate(xBytes); !s)
      return error(fmt::format("the data set ({} samples, {} MiB) does not fit on the GPU: {}",
                               count, xBytes >> 20, s.diag().message));
    if (Status s = dataLabels_.allocate(size_t(count) * 4); !s)
      return s;
    const Driver &d = dev_->driver();
    // On the step's stream and waited for, so the steps' gathers (on that
    // non-blocking stream) read the data, and the caller may free x.
    GRAPHC_CU(d, d.cuMemcpyHtoDAsync(dataX_.get(), x, xBytes, dev_->stream()));
    GRAPHC_CU(d, d.cuMemcpyHtoDAsync(dataLabels_.get(), labels, size_t(count) * 4, dev_->stream()));
    if (Status s = dev_->synchronize(); !s)
      return s;
    auto gather = dev_->helper("graphc_gather");
    if (!gather)
      return gather.diag();
    gather_ = *gather;
    datasetCount_ = count;
    return {};
  }

  Status trainStepOnDevice(const int64_t *indices, int64_t n, float *loss, float *output) override {
    if (datasetCount_ == 0)
      return error("no data set on the device: call uploadDataset first");
    if (Status s = checkBatch(n); !s)
      return s;
    if (!indices)
      return error("no sample indices given");
    for (int64_t i = 0; i < n; ++i)
      if (indices[i] < 0 || indices[i] >= datasetCount_)
        return error(fmt::format("index {} of batch position {} is outside the data set of "
                                 "{} samples",
                                 indices[i], i, datasetCount_));
    if (Status s = begin(); !s)
      return s;
    const Driver &d = dev_->driver();
    std::memcpy(hostIndices_.get(), indices, size_t(n) * 8);
    GRAPHC_CU(
        d, d.cuMemcpyHtoDAsync(indices_.get(), hostIndices_.get(), size_t(n) * 8, dev_->stream()));
    CUdeviceptr xs = dataX_.get(), ls = dataLabels_.get(), idx = indices_.get(), x = x_.get(),
                lab = labels_.get();
    int64_t rows = n, sample = sample_;
    void *args[] = {&xs, &ls, &idx, &x, &lab, &rows, &sample};
    if (Status s = dev_->launch(gather_, dev_->blocksFor(n * sample_, 256), 256, args); !s)
      return s;
    return finishStep(n, loss, output);
  }

  float *params() override {
    refreshMirror();
    mirrorDirty_ = true;
    return mirrorParams_.data();
  }

  float *state(const std::string &slot) override {
    auto it = mirrorState_.find(slot);
    if (it == mirrorState_.end())
      return nullptr;
    refreshMirror();
    mirrorDirty_ = true;
    return it->second.data();
  }

  int64_t step() const override { return stepCount_; }
  void setStep(int64_t step) override { stepCount_ = step; }
  void setSeed(uint64_t seed) override { seed_ = seed; }

private:
  Status checkBatch(int64_t n) const {
    if (n < 1 || n > maxBatch_)
      return error(fmt::format("batch of {} samples: this executable takes 1 to {}", n, maxBatch_));
    return {};
  }

  /// Before any work: a failure held back by params()/state(), the context,
  /// and the host mirror written back if it was handed out.
  Status begin() {
    if (pending_) {
      Diag e = *pending_;
      pending_.reset();
      return e;
    }
    if (Status s = dev_->makeCurrent(); !s)
      return s;
    if (!mirrorDirty_)
      return {};
    const Driver &d = dev_->driver();
    const size_t bytes = mirrorParams_.size() * 4;
    if (bytes > 0) {
      // On the step's stream: a plain copy from pageable memory may return
      // before its data lands, and the non-blocking stream would not wait.
      GRAPHC_CU(d, d.cuMemcpyHtoDAsync(params_.get(), mirrorParams_.data(), bytes, dev_->stream()));
      for (auto &[slot, host] : mirrorState_)
        GRAPHC_CU(d,
                  d.cuMemcpyHtoDAsync(state_.at(slot).get(), host.data(), bytes, dev_->stream()));
    }
    mirrorDirty_ = false;
    return {};
  }

  /// Checks a host batch and puts it on the step's stream.
  Status stageBatch(const float *x, const int32_t *labels, int64_t n) {
    if (Status s = checkBatch(n); !s)
      return s;
    if (!x)
      return error("no input given");
    if (Status s = checkLabels(labels, n); !s)
      return s;
    if (Status s = begin(); !s)
      return s;
    const Driver &d = dev_->driver();
    std::memcpy(hostX_.get(), x, size_t(n * sample_) * 4);
    std::memcpy(hostLabels_.get(), labels, size_t(n) * 4);
    GRAPHC_CU(d,
              d.cuMemcpyHtoDAsync(x_.get(), hostX_.get(), size_t(n * sample_) * 4, dev_->stream()));
    GRAPHC_CU(d,
              d.cuMemcpyHtoDAsync(labels_.get(), hostLabels_.get(), size_t(n) * 4, dev_->stream()));
    return {};
  }

  /// The step counter and seed in; the device's parameters may change next.
  Status stageScalars() {
    if (!step_)
      return error("this model was compiled for evaluation only");
    const Driver &d = dev_->driver();
    char *host = hostScalars_.get<char>();
    const float stepIn = float(stepCount_);
    const int32_t seedIn = stepSeed(seed_, stepCount_);
    std::memcpy(host + kStepIn, &stepIn, 4);
    std::memcpy(host + kSeedIn, &seedIn, 4);
    GRAPHC_CU(d, d.cuMemcpyHtoDAsync(scalars_.get(), host, kInBytes, dev_->stream()));
    mirrorValid_ = false;
    return {};
  }

  /// The first non-finite element among the f32 values `vs` of the step,
  /// read from the device.
  Expected<NonFiniteReport> firstNonFiniteOf(const std::vector<ir::ValueId> &vs, int64_t n) {
    const ir::Graph &g = step_->graph();
    for (ir::ValueId v : vs) {
      if (g.type(v).dtype != ir::DType::F32)
        continue;
      auto data = step_->read(v, n);
      if (!data)
        return data.diag();
      if (int64_t i = firstNonFinite(data->data(), int64_t(data->size())); i >= 0)
        return nonFiniteAt(g, v, i, (*data)[size_t(i)]);
    }
    return NonFiniteReport{};
  }

  /// The step counter and seed in, the step, the loss and output out.
  Status finishStep(int64_t n, float *loss, float *output) {
    if (Status s = stageScalars(); !s)
      return s;
    const Driver &d = dev_->driver();
    char *host = hostScalars_.get<char>();
    if (Status s = step_->run(n); !s)
      return s;
    const size_t outBytes = size_t(n * info_.classes) * 4;
    GRAPHC_CU(d, d.cuMemcpyDtoHAsync(host + kLoss, scalars_.get() + kLoss, 4, dev_->stream()));
    if (output)
      GRAPHC_CU(d, d.cuMemcpyDtoHAsync(hostOutput_.get(), output_.get(), outBytes, dev_->stream()));
    if (Status s = dev_->synchronize(); !s)
      return s;
    if (loss)
      std::memcpy(loss, host + kLoss, 4);
    if (output)
      std::memcpy(output, hostOutput_.get(), outBytes);
    ++stepCount_;
    return {};
  }

  /// Copies parameters and state to the host when a step ran since the
  /// last copy; a failure is reported by the next call that can return one.
  void refreshMirror() {
    if (mirrorValid_)
      return;
    auto copy = [&]() -> Status {
      if (Status s = dev_->makeCurrent(); !s)
        return s;
      if (Status s = dev_->synchronize(); !s)
        return s;
      const Driver &d = dev_->driver();
      const size_t bytes = mirrorParams_.size() * 4;
      if (bytes == 0)
        return {};
      GRAPHC_CU(d, d.cuMemcpyDtoHAsync(mirrorParams_.data(), params_.get(), bytes, dev_->stream()));
      for (auto &[slot, host] : mirrorState_)
        GRAPHC_CU(d, d.cuMemcpyDtoHAsync(host.data(), state_.at(slot).get(), bytes, dev_->stream()));
      return dev_->synchronize();
    };
    if (Status s = copy(); !s)
      pending_ = s.diag();
    mirrorValid_ = true;
  }

  // The device first: it is destroyed last, after every buffer and program.
  std::unique_ptr<Device> dev_;
  std::unique_ptr<Program> step_, predict_;
  DeviceBuffer params_;                       // (numParams) the flat parameters
  DeviceBuffer x_;                            // (maxBatch, sample...) the batch's input
  DeviceBuffer labels_;                       // (maxBatch) int32
  DeviceBuffer output_;                       // (maxBatch, classes)
  DeviceBuffer scalars_;                      // step, seed, loss, step out: see kStepIn..kStepOut
  DeviceBuffer indices_;                      // (maxBatch) int64, trainStepOnDevice's batch
  DeviceBuffer dataX_;                        // (datasetCount, sample...) uploadDataset's samples
  DeviceBuffer dataLabels_;                   // (datasetCount) int32
  std::map<std::string, DeviceBuffer> state_; // per slot: (numParams)
  PinnedBuffer hostX_, hostLabels_, hostOutput_, hostScalars_, hostIndices_;
  std::vector<float> mirrorParams_;
  std::map<std::string, std::vector<float>> mirrorState_;
  bool mirrorValid_ = true;  // the mirror holds the device's values
  bool mirrorDirty_ = false; // the mirror was handed out and may be newer
  std::optional<Diag> pending_;
  CUfunction gather_ = nullptr;
  int64_t maxBatch_ = 0, sample_ = 1, datasetCount_ = 0, stepCount_ = 0;
  uint64_t seed_ = 1;
};

} // namespace

Expected<std::unique_ptr<Executable>> makeCudaExecutable(CompiledModel model,
                                                         const ExecutableOptions &options) {
  auto dev = Device::open();
  if (!dev)
    return dev.diag();
  auto exe = std::make_unique<CudaExecutable>();
  if (Status s = exe->init(std::move(*dev), std::move(model), options); !s)
    return s.diag();
  return std::unique_ptr<Executable>(std::move(exe));
}

} // namespace graphc::runtime::cuda
