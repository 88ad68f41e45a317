// runtime/cuda/CudaExecutable.cpp - the cuda target behind the Executable
// interface.
//
// One executor for the JIT and the library: the fused graphs are encoded
// into the tables an `--emit lib` archive holds (codegen/cuda/AotProgram.h,
// NVRTC in parallel for this device's architecture), and the C runtime of
// that archive (runtime/rt/graphc_cuda_model.c) runs them, reaching the
// driver and cuBLASLt through the table runtime/cuda/Driver.cpp fills.
// Parameters, optimizer state and the step's buffers live on the device for
// the executable's life; params() and state() hand out the C runtime's host
// mirror. With uploadDataset the whole data set stays on the device too and
// trainStepOnDevice builds each batch there from an index list.
#include "runtime/cuda/CudaRuntime.h"

#include "codegen/cuda/AotProgram.h"
#include "codegen/cuda/CudaSource.h"
#include "runtime/Distributed.h"
#include "runtime/ModelDesc.h"
#include "runtime/NonFinite.h"
#include "runtime/cuda/Driver.h"
#include "runtime/cuda/Emulator.h"
#include "runtime/rt/graphc_cuda_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

namespace graphc::runtime::cuda {
namespace {

bool hasConvolution(const ir::Graph &g) {
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (ir::Op op = g.node(v).op;
        op == ir::Op::Conv2d || op == ir::Op::Conv2dGradInput || op == ir::Op::Conv2dGradWeight)
      return true;
  return false;
}

/// The descriptor graphc_cuda_model.h takes, and the storage it points into.
struct CudaDesc {
  codegen::DeviceImage image;
  std::vector<const char *> strings;
  std::unique_ptr<ModelDesc> model;
  grt_cuda_desc desc{};

  CudaDesc(codegen::DeviceImage img, const grt_cuda_api &api, bool tf32) : image(std::move(img)) {
    for (const std::string &s : image.strings)
      strings.push_back(s.c_str());
    desc.num_strings = int64_t(strings.size());
    desc.strings = strings.data();
    desc.step = image.step.data();
    desc.step_words = int64_t(image.step.size());
    desc.predict = image.predict.data();
    desc.predict_words = int64_t(image.predict.size());
    desc.gradients = image.gradients.data();
    desc.gradients_words = int64_t(image.gradients.size());
    desc.update = image.update.data();
    desc.update_words = int64_t(image.update.size());
    desc.helpers_ptx = image.helpersPtx.c_str();
    desc.arch = image.arch.c_str();
    desc.tf32 = tf32;
    desc.api = &api;
  }
};

class CudaExecutable : public Executable {
public:
  ~CudaExecutable() override { grt_cuda_destroy(model_); }

  Status init(const Driver &d, CompiledModel m, const ExecutableOptions &o) {
    driver_ = &d;
    maxBatch_ = o.maxBatch;
    info_ = m.info;
    trainable_ = m.trainable();
    // The memplan pass's plans, made for the largest batch.
    GRAPHC_CHECK(m.predictPlan.batch >= maxBatch_ && (!trainable_ || m.stepPlan.batch >= maxBatch_),
                 "plans for batch {} run at batch {}", m.predictPlan.batch, maxBatch_);
    // One GPU per data-parallel process: process r on device r % count.
    int count = 0;
    GRAPHC_CU(d, d.cuDeviceGetCount(&count));
    const int ordinal = count > 0 ? o.rank % count : 0;
    auto facts = deviceFacts(d, ordinal);
    if (!facts)
      return facts.diag();
    auto start = std::chrono::steady_clock::now();
    split_ = m.split();
    const codegen::cuda::SplitStep halves{m.gradients, m.gradientsPlan, m.update, m.updatePlan};
    auto image = codegen::cuda::encodeDevicePrograms(m.step, m.stepPlan, m.predict, m.predictPlan,
                                                     facts->arch, split_ ? &halves : nullptr);
    if (!image)
      return image.diag();
    compileMs_ =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    device_ = fmt::format("{}, {}{}", facts->name, facts->arch,
                          count > 1 ? fmt::format(", device {} of {}", ordinal, count) : "");
    step_ = std::move(m.step);
    desc_ = std::make_unique<CudaDesc>(std::move(*image), d, o.tf32);
    // The host side of the context has no run functions and no arenas.
    desc_->model =
        std::make_unique<ModelDesc>(info_, ModelDesc::ProgramRef{trainable_ ? &step_ : nullptr, 0},
                                    ModelDesc::ProgramRef{&m.predict, 0}, maxBatch_, std::nullopt,
                                    ModelDesc::ProgramRef{}, ModelDesc::ProgramRef{});
    desc_->desc.model = desc_->model->get();
    if (!trainable_)
      desc_->desc.step_words = 0; // evaluation only
    // create installs the split step too, as an archive's does.
    if (grt_cuda_create_on(&desc_->desc, &model_, nullptr, ordinal) != GRT_OK)
      return error(grt_cuda_error(nullptr));
    if (hasConvolution(step_) || hasConvolution(m.predict))
      convolutions_ =
          grt_cuda_uses_cudnn(model_)
              ? "; convolutions by " + d.cudnnNote
              : fmt::format("; convolutions by generated kernels: {}",
                            cudnnRefused() ? "cuDNN turned off (GRAPHC_NO_CUDNN)"
                            : d.cudnnNote.rfind("cuDNN", 0) == 0 ? "cuDNN failed to start"
                                                                 : d.cudnnNote);
    fallback_.assign(size_t(info_.numParams), 0.0f);
    return {};
  }

  /// ", 2 of 2 forward ones fused with their bias (and ReLU) by its graph
  /// API", with why not where cuDNN refused some; "" without candidates.
  std::string fusionNote() const {
    int64_t fused = 0, fusable = 0;
    const char *why = grt_cuda_conv_fusion(model_, &fused, &fusable);
    if (fusable == 0)
      return "";
    return fmt::format(
        ", {} of {} forward ones fused with their bias (and ReLU) by its graph API{}", fused,
        fusable, fused < fusable ? fmt::format(" ({})", why) : "");
  }

  std::string target() const override { return "cuda"; }
  /// "cuda (NVIDIA H200, sm_90), kernels compiled in 840 ms", and for a
  /// model with convolutions what runs them: "; convolutions by cuDNN"
  /// (with fusionNote's count, as of now), or "; convolutions by generated
  /// kernels: no cuDNN (...)".
  std::string describe() const override {
    return fmt::format("cuda ({}), kernels compiled in {:.0f} ms{}{}", device_, compileMs_,
                       convolutions_, fusionNote());
  }
  int64_t maxBatch() const override { return maxBatch_; }

  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    if (Status s = checkStep(x, labels, n); !s)
      return s;
    float l = 0;
    if (Status s = ok(grt_cuda_train_step_output(model_, x, labels, n, &l, output)); !s)
      return s;
    if (loss)
      *loss = l;
    return {};
  }

  bool canSplitStep() const override { return split_; }

  Status computeGradients(const float *x, const int32_t *labels, int64_t n, int64_t offset,
                          float *loss, float *output, float *grad) override {
    if (Status s = checkStep(x, labels, n); !s)
      return s;
    if (!loss || !grad)
      return error("computeGradients needs the loss and gradient buffers");
    return ok(grt_cuda_compute_gradients(model_, x, labels, n, offset, grad, loss, output));
  }

  Status applyUpdate(const float *grad) override {
    if (Status s = takePending(); !s)
      return s;
    return ok(grt_cuda_apply_update(model_, grad));
  }

  DeviceAllreduce deviceAllreduce() const override {
    if (!split_)
      return {};
    std::string missing = ncclMissing(*driver_);
    return missing.empty() ? DeviceAllreduce{true, ncclName(*driver_)}
                           : DeviceAllreduce{false, missing};
  }

  Status joinDeviceAllreduce(Communicator &comm) override {
    char id[GRT_CUDA_NCCL_ID_BYTES] = {};
    if (comm.rank() == 0)
      if (Status s = ok(grt_cuda_nccl_unique_id(model_, id, sizeof id)); !s)
        return s;
    if (Status s = comm.broadcast(id, sizeof id, 0); !s)
      return s;
    if (driver_->emulated) // its NCCL reaches the other processes through the host
      setEmulatedNcclReduce(
          [&comm](float *data, int64_t count) { return bool(comm.allreduceSum(data, count)); });
    return ok(grt_cuda_nccl_join(model_, id, sizeof id, comm.size(), comm.rank()));
  }

  Status trainShare(const float *x, const int32_t *labels, int64_t n, int64_t offset, int64_t batch,
                    float weight, float *loss, float *output) override {
    if (Status s = n > 0 ? checkStep(x, labels, n) : takePending(); !s)
      return s;
    return ok(grt_cuda_train_share(model_, x, labels, n, offset, batch, weight, loss, output));
  }
  int64_t sharesReplayed() const override { return grt_cuda_share_replays(model_); }

  bool canDiagnoseSteps() const override { return trainable_; }

  Expected<NonFiniteReport> diagnoseStep(const float *x, const int32_t *labels,
                                         int64_t n) override {
    if (Status s = checkStep(x, labels, n); !s)
      return s.diag();
    auto kernels = codegen::cuda::printKernels(step_, codegen::storedValues(step_), "step_");
    const int64_t count = grt_cuda_step_kernel_count(model_);
    GRAPHC_CHECK(int64_t(kernels.size()) == count, "{} kernel groups, {} in the table",
                 kernels.size(), count);
    auto run = [&](int64_t first, int64_t last) {
      return ok(grt_cuda_train_step_kernels(model_, x, labels, n, first, last));
    };
    // Kernels [0, 0) put the batch in: the inputs are checked first. Then
    // what each kernel group wrote, one group at a time; every group runs,
    // so the step is applied as trainStep applies it.
    if (Status s = run(0, 0); !s)
      return s.diag();
    auto first = firstNonFiniteOf(step_.inputs(), n);
    for (int64_t k = 0; first && k < count; ++k) {
      if (Status s = run(k, k + 1); !s)
        return s.diag();
      if (first->found)
        continue;
      const codegen::KernelPlan &plan = kernels[size_t(k)].plan;
      std::vector<ir::ValueId> wrote = plan.members;
      for (ir::ValueId v : {plan.c, plan.colsum, plan.pack})
        if (v >= 0)
          wrote.push_back(v);
      std::sort(wrote.begin(), wrote.end());
      first = firstNonFiniteOf(wrote, n);
    }
    if (!first)
      return first;
    if (Status s = run(count, count); !s) // the output copies
      return s.diag();
    grt_cuda_set_step(model_, grt_cuda_step(model_) + 1);
    return first;
  }

  Status predict(const float *x, int64_t n, float *output) override {
    if (Status s = checkBatch(n); !s)
      return s;
    if (!x)
      return error("no input given");
    if (!output)
      return error("no output buffer given");
    if (Status s = takePending(); !s)
      return s;
    return ok(grt_cuda_predict(model_, x, n, output));
  }

  bool canKeepDataset() const override { return true; }

  Status uploadDataset(const float *x, const int32_t *labels, int64_t count) override {
    if (!x || !labels || count < 1)
      return error("uploadDataset needs samples, labels and a count of at least 1");
    if (Status s = checkLabels(labels, count); !s)
      return s;
    datasetCount_ = 0;
    if (Status s = ok(grt_cuda_upload_dataset(model_, x, labels, count)); !s)
      return s;
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
    if (!trainable_)
      return error("this model was compiled for evaluation only");
    if (Status s = takePending(); !s)
      return s;
    float l = 0;
    if (Status s = ok(grt_cuda_train_step_indices(model_, indices, n, &l, output)); !s)
      return s;
    if (loss)
      *loss = l;
    return {};
  }

  float *params() override {
    if (float *p = grt_cuda_params(model_))
      return p;
    pending_ = error(grt_cuda_error(model_));
    return fallback_.data();
  }

  float *state(const std::string &slot) override {
    auto it = std::find(info_.stateSlots.begin(), info_.stateSlots.end(), slot);
    if (it == info_.stateSlots.end())
      return nullptr;
    if (float *p = grt_cuda_state(model_, int64_t(it - info_.stateSlots.begin())))
      return p;
    pending_ = error(grt_cuda_error(model_));
    return fallback_.data();
  }

  int64_t step() const override { return grt_cuda_step(model_); }
  void setStep(int64_t step) override { grt_cuda_set_step(model_, step); }
  void setSeed(uint64_t seed) override { grt_cuda_set_seed(model_, seed); }

private:
  Status ok(int rc) const {
    if (rc == GRT_OK)
      return {};
    return error(grt_cuda_error(model_));
  }

  /// A failure held back by params()/state(), reported once.
  Status takePending() {
    if (!pending_)
      return {};
    Diag e = *pending_;
    pending_.reset();
    return e;
  }

  Status checkBatch(int64_t n) const {
    if (n < 1 || n > maxBatch_)
      return error(fmt::format("batch of {} samples: this executable takes 1 to {}", n, maxBatch_));
    return {};
  }

  Status checkStep(const float *x, const int32_t *labels, int64_t n) {
    if (!trainable_)
      return error("this model was compiled for evaluation only");
    if (Status s = checkBatch(n); !s)
      return s;
    if (!x)
      return error("no input given");
    if (Status s = checkLabels(labels, n); !s)
      return s;
    return takePending();
  }

  /// The first non-finite element among the f32 values `vs` of the step,
  /// read from the device; a value fused into a kernel has no memory and
  /// is skipped.
  Expected<NonFiniteReport> firstNonFiniteOf(const std::vector<ir::ValueId> &vs, int64_t n) {
    std::vector<float> data;
    for (ir::ValueId v : vs) {
      if (step_.type(v).dtype != ir::DType::F32)
        continue;
      data.resize(size_t(step_.type(v).numel(n)));
      int rc = grt_cuda_read_step_value(model_, v, data.data(), int64_t(data.size()));
      if (rc == GRT_ERR_ARGUMENT)
        continue;
      if (Status s = ok(rc); !s)
        return s.diag();
      if (int64_t i = firstNonFinite(data.data(), int64_t(data.size())); i >= 0)
        return nonFiniteAt(step_, v, i, data[size_t(i)]);
    }
    return NonFiniteReport{};
  }

  const Driver *driver_ = nullptr;
  std::unique_ptr<CudaDesc> desc_; // outlives model_, which points into it
  grt_cuda_model *model_ = nullptr;
  ir::Graph step_;
  std::vector<float> fallback_; // params()/state() after a failed fetch
  std::optional<Diag> pending_;
  bool trainable_ = false, split_ = false;
  std::string device_, convolutions_;
  double compileMs_ = 0;
  int64_t maxBatch_ = 0, datasetCount_ = 0;
};

} // namespace

Expected<std::unique_ptr<Executable>> makeCudaExecutable(CompiledModel model,
                                                         const ExecutableOptions &options) {
  auto d = driver();
  if (!d)
    return d.diag();
  auto exe = std::make_unique<CudaExecutable>();
  if (Status s = exe->init(**d, std::move(model), options); !s)
    return s.diag();
  return std::unique_ptr<Executable>(std::move(exe));
}

} // namespace graphc::runtime::cuda
