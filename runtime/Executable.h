// runtime/Executable.h - a compiled model the trainer can drive: one
// interface for the reference interpreter, the CPU backend and the CUDA
// backend.
//
// An executable owns the flat parameter buffer, the optimizer's state
// buffers and the step counter (DESIGN.md decision 2). Batches arrive as
// host arrays; the batch size may be anything from 1 to maxBatch().
#pragma once

#include "ir/Error.h"
#include "ir/ModelInfo.h"
#include "runtime/NonFinite.h"

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace graphc::runtime {

class Communicator; // runtime/Distributed.h

/// What every executable knows about its model (ir/ModelInfo.h).
using ir::ModelInfo;

class Executable {
public:
  virtual ~Executable() = default;

  const ModelInfo &info() const { return info_; }
  virtual std::string target() const = 0; ///< "interp", "cpu", "cuda"
  /// What the code runs on, for progress lines: "cpu (avx2)", ...
  virtual std::string describe() const { return target(); }
  virtual int64_t maxBatch() const = 0;

  /// One training step: forward, loss, backward, optimizer update.
  /// x: n x sample floats; labels: n class indices in [0, classes);
  /// loss: the batch's mean loss; output (optional): n x classes, the
  /// model's output (log-probabilities for the seed MLP) before the update.
  virtual Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                           float *output) = 0;
  /// The model's output in evaluation mode; nothing is updated.
  virtual Status predict(const float *x, int64_t n, float *output) = 0;

  /// The flat parameter buffer (numParams floats), readable and writable.
  virtual float *params() = 0;
  /// An optimizer state buffer (numParams floats), by slot name.
  virtual float *state(const std::string &slot) = 0;
  /// Updates done so far (Torch7's evalCounter / adam's t).
  virtual int64_t step() const = 0;
  virtual void setStep(int64_t step) = 0;
  /// The seed that, with the step counter, draws Dropout's masks.
  virtual void setSeed(uint64_t seed) = 0;

  /// Whether uploadDataset and trainStepOnDevice work (the trainer then
  /// keeps the training set on the device).
  virtual bool canKeepDataset() const { return false; }
  /// Keeps a whole data set in the executable's device memory: `count`
  /// samples (count x sample floats) and their labels, for
  /// trainStepOnDevice. Only the cuda target has one; others say so.
  virtual Status uploadDataset(const float *x, const int32_t *labels, int64_t count) {
    return error(fmt::format("the {} target cannot keep a data set on a device", target()));
  }
  /// trainStep on the uploaded samples `indices[0..n)`, gathered into a batch
  /// on the device: only the indices go in and the loss (and output) out.
  virtual Status trainStepOnDevice(const int64_t *indices, int64_t n, float *loss, float *output) {
    return error(fmt::format("the {} target cannot keep a data set on a device", target()));
  }

  /// Whether computeGradients and applyUpdate work: the step split in two
  /// for data parallelism (ExecutableOptions::split).
  virtual bool canSplitStep() const { return false; }
  /// The first half of trainStep: forward, loss and backward on n samples,
  /// `offset` being the samples of the global batch before them (Dropout's
  /// masks are drawn per global sample). `grad` (numParams floats) receives
  /// the batch-mean gradient and, in the buffers' tail (BatchNorm's running
  /// statistics), their new values. Nothing is updated.
  virtual Status computeGradients(const float *x, const int32_t *labels, int64_t n,
                                  int64_t offset, float *loss, float *output, float *grad) {
    return error(fmt::format("the {} target was not compiled with the step split in two",
                             target()));
  }
  /// The second half: the optimizer update with `grad` (the buffers' tail
  /// copied into the buffers); counts the step.
  virtual Status applyUpdate(const float *grad) {
    return error(fmt::format("the {} target was not compiled with the step split in two",
                             target()));
  }

  /// Data parallelism with the gradient kept on the device (DESIGN.md
  /// decision 12): whether this executable can allreduce it there itself,
  /// and what with ("NCCL 2.28.9") or why not ("no NCCL (...)"); an empty
  /// note for a target whose gradient is host memory anyway.
  struct DeviceAllreduce {
    bool possible = false;
    std::string note;
  };
  virtual DeviceAllreduce deviceAllreduce() const { return {}; }
  /// Joins the device allreduce of the processes of `comm`: every process
  /// calls it at once (the cuda target's NCCL communicator).
  virtual Status joinDeviceAllreduce(Communicator &comm) {
    return error(fmt::format("the {} target cannot allreduce on a device", target()));
  }
  /// A data-parallel step after joinDeviceAllreduce: computeGradients on n
  /// samples of the global batch of `batch` (none: this process adds
  /// nothing), the gradients of every process summed on the device, each
  /// times its process's `weight`, then applyUpdate. `loss`: the n samples'
  /// mean loss (0 for none).
  virtual Status trainShare(const float *x, const int32_t *labels, int64_t n, int64_t offset,
                            int64_t batch, float weight, float *loss, float *output) {
    return error(fmt::format("the {} target cannot allreduce on a device", target()));
  }
  /// The trainShare steps so far replayed as one captured CUDA graph each.
  virtual int64_t sharesReplayed() const { return 0; }

  /// For an executable that computes only part of each batch (data
  /// parallelism): the correct predictions of the last trainStep's whole
  /// batch, over all processes. -1: count them from trainStep's outputs.
  virtual int64_t lastStepCorrect() const { return -1; }

  /// Whether diagnoseStep works here (the trainer snapshots the state at
  /// each epoch's start only for an executable that can replay a step).
  virtual bool canDiagnoseSteps() const { return false; }
  /// trainStep run one kernel group at a time (the interpreter: one op at a
  /// time), checking what each group wrote before the next one runs, and
  /// updating the parameters, state and step counter as trainStep does.
  /// Returns the first NaN or infinity: in the inputs (parameters, state)
  /// before the step, or in a group's results; `found` is false when the
  /// whole step stayed finite. Slow; for after a non-finite loss.
  virtual Expected<NonFiniteReport> diagnoseStep(const float *x, const int32_t *labels, int64_t n) {
    return error(
        fmt::format("the {} target cannot run a step one kernel group at a time", target()));
  }

protected:
  /// Every label in [0, classes): an out-of-range label would index outside
  /// the loss's row. Each target checks before a step, with this message.
  Status checkLabels(const int32_t *labels, int64_t n) const {
    if (!labels)
      return error("no labels given");
    for (int64_t i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= info_.classes)
        return error(
            fmt::format("label {} of sample {} is outside [0, {})", labels[i], i, info_.classes));
    return {};
  }

  ModelInfo info_;
};

} // namespace graphc::runtime
