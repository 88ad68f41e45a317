// runtime/Distributed.cpp - the one file that speaks MPI: the communicator,
// the data-parallel executable, the per-epoch model checksum.
#include "runtime/Distributed.h"

#include "runtime/Trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef GRAPHC_HAVE_MPI
#include <mpi.h>
#endif

namespace graphc::runtime {

#ifdef GRAPHC_HAVE_MPI
namespace {

/// MPI's message for an error code.
std::string mpiError(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return std::string(text, size_t(len));
}

} // namespace
#endif

bool Communicator::available() {
#ifdef GRAPHC_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Expected<std::unique_ptr<Communicator>> Communicator::init() {
  std::unique_ptr<Communicator> c(new Communicator);
#ifdef GRAPHC_HAVE_MPI
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready)
    if (int rc = MPI_Init(nullptr, nullptr); rc != MPI_SUCCESS)
      return error("--distributed: MPI_Init failed: " + mpiError(rc));
  // Errors come back as codes, so that they are reported with graphc's
  // message before the run is aborted.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &c->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &c->size_);
#endif
  return c;
}

Communicator::~Communicator() {
#ifdef GRAPHC_HAVE_MPI
  int finished = 0;
  MPI_Finalized(&finished);
  if (!finished)
    MPI_Finalize();
#endif
}

Status Communicator::broadcast(void *data, int64_t bytes, int root) {
#ifdef GRAPHC_HAVE_MPI
  if (size_ > 1) {
    if (bytes > INT32_MAX)
      return error(fmt::format("broadcast of {} bytes: more than MPI's int count", bytes));
    int rc = MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
      return error(fmt::format("process {} of {}: the broadcast from process {} failed: {}", rank_,
                               size_, root, mpiError(rc)));
  }
#endif
  return {};
}

Status Communicator::allreduceSum(float *data, int64_t count) {
#ifdef GRAPHC_HAVE_MPI
  if (size_ > 1) {
    if (count > INT32_MAX)
      return error(fmt::format("allreduce of {} floats: more than MPI's int count", count));
    int rc = MPI_Allreduce(MPI_IN_PLACE, data, int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
      return error(fmt::format("process {} of {}: the gradient allreduce failed: {}", rank_, size_,
                               mpiError(rc)));
  }
#endif
  return {};
}

Expected<bool> Communicator::same(uint64_t value) {
#ifdef GRAPHC_HAVE_MPI
  if (size_ > 1) {
    uint64_t v[2] = {value, ~value};
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
      return error(fmt::format("process {} of {}: the checksum allreduce failed: {}", rank_, size_,
                               mpiError(rc)));
    return v[0] == value && ~v[1] == value; // max == min == value
  }
#endif
  return true;
}

void Communicator::abort(int code) {
#ifdef GRAPHC_HAVE_MPI
  if (size_ > 1)
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

Share shareOf(int64_t n, int rank, int size) {
  int64_t base = n / size, extra = n % size;
  Share s;
  s.count = base + (rank < extra ? 1 : 0);
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  return s;
}

namespace {

/// The data-parallel executable of Distributed.h.
class DistributedExecutable : public Executable {
public:
  DistributedExecutable(std::unique_ptr<Executable> local, Communicator &comm, bool onDevice,
                        std::string path)
      : local_(std::move(local)), comm_(comm), onDevice_(onDevice), path_(std::move(path)) {
    info_ = local_->info();
    sample_ = 1;
    for (int64_t d : info_.sample)
      sample_ *= d;
    // The gradient, then the share's weighted loss and its correct count.
    buffer_.resize(size_t(info_.numParams + 2));
  }

  std::string target() const override { return local_->target(); }
  std::string describe() const override {
    return fmt::format("{}, data-parallel over {} process{}{}", local_->describe(), comm_.size(),
                       comm_.size() == 1 ? "" : "es", path_.empty() ? "" : ", " + path_);
  }
  int64_t maxBatch() const override { return local_->maxBatch(); }

  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    if (n < 1 || n > maxBatch())
      return error(fmt::format("batch of {} samples: expected 1 to {}", n, maxBatch()));
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    const Share s = shareOf(n, comm_.rank(), comm_.size());
    const int64_t P = info_.numParams, classes = info_.classes;
    // The share's mean times its weight: summed, the global batch's mean.
    const float w = float(double(s.count) / double(n));
    const float *xs = x + s.begin * sample_;
    const int32_t *ls = labels + s.begin;
    std::vector<float> out(size_t(s.count * classes));
    float shareLoss = 0;
    // The gradient (on the host path), then the share's weighted loss and
    // its correct count.
    float *grad = buffer_.data(), *tail = grad + P;
    auto t1 = t0;
    if (onDevice_) {
      if (Status st = local_->trainShare(xs, ls, s.count, s.begin, n, w, &shareLoss, out.data());
          !st)
        return st;
      t1 = Clock::now();
    } else if (s.count > 0) {
      if (Status st =
              local_->computeGradients(xs, ls, s.count, s.begin, &shareLoss, out.data(), grad);
          !st)
        return st;
      for (int64_t i = 0; i < P; ++i)
        grad[i] *= w;
      t1 = Clock::now();
    } else {
      std::fill(grad, grad + P, 0.0f); // fewer samples than processes
      t1 = Clock::now();
    }
    tail[0] = shareLoss * w;
    int64_t correct = 0;
    for (int64_t i = 0; i < s.count; ++i)
      correct += prediction(out.data() + i * classes, classes) == ls[i];
    tail[1] = float(correct);
    if (output && s.count > 0)
      std::memcpy(output + s.begin * classes, out.data(), out.size() * sizeof(float));
    if (Status st = onDevice_ ? comm_.allreduceSum(tail, 2) : comm_.allreduceSum(grad, P + 2); !st)
      return st;
    const auto t2 = Clock::now();
    if (!onDevice_)
      if (Status st = local_->applyUpdate(grad); !st)
        return st;
    allreduceSeconds_ += std::chrono::duration<double>(t2 - t1).count();
    stepSeconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    ++steps_;
    *loss = tail[0];
    correct_ = int64_t(tail[1] + 0.5f);
    return {};
  }

  int64_t lastStepCorrect() const override { return correct_; }

  std::string takeTimes() {
    if (steps_ == 0)
      return "";
    std::string out;
    if (onDevice_) {
      const int64_t replays = local_->sharesReplayed();
      out = fmt::format(
          "gradient of {:.1f} MB allreduced on the device inside each step of {:.1f} ms ({} of "
          "{} step{} replayed as one CUDA graph); the loss and correct count over {} process{}: "
          "{:.2f} ms per step",
          double(info_.numParams * 4) / 1e6, 1e3 * stepSeconds_ / double(steps_),
          replays - replays_, steps_, steps_ == 1 ? "" : "s", comm_.size(),
          comm_.size() == 1 ? "" : "es", 1e3 * allreduceSeconds_ / double(steps_));
      replays_ = replays;
    } else {
      out = fmt::format(
          "allreduce of {:.1f} MB over {} process{}: {:.2f} ms per step ({:.0f}% of the step's "
          "{:.1f} ms)",
          double(buffer_.size() * sizeof(float)) / 1e6, comm_.size(), comm_.size() == 1 ? "" : "es",
          1e3 * allreduceSeconds_ / double(steps_), 100 * allreduceSeconds_ / stepSeconds_,
          1e3 * stepSeconds_ / double(steps_));
    }
    allreduceSeconds_ = stepSeconds_ = 0;
    steps_ = 0;
    return out;
  }

  Status predict(const float *x, int64_t n, float *output) override {
    return local_->predict(x, n, output);
  }
  float *params() override { return local_->params(); }
  float *state(const std::string &slot) override { return local_->state(slot); }
  int64_t step() const override { return local_->step(); }
  void setStep(int64_t step) override { local_->setStep(step); }
  void setSeed(uint64_t seed) override { local_->setSeed(seed); }

private:
  std::unique_ptr<Executable> local_;
  Communicator &comm_;
  bool onDevice_;    ///< the gradient allreduced on the device (trainShare)
  std::string path_; ///< which path the gradient takes, for describe()
  int64_t sample_ = 1;
  std::vector<float> buffer_;
  int64_t correct_ = -1;
  double allreduceSeconds_ = 0, stepSeconds_ = 0; ///< since takeTimes
  int64_t steps_ = 0;
  int64_t replays_ = 0; ///< local_->sharesReplayed() at the last takeTimes
};

/// FNV-1a over bytes, continued from `h`.
uint64_t fnv1a(const void *data, size_t bytes, uint64_t h) {
  const auto *p = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < bytes; ++i)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

} // namespace

Expected<std::unique_ptr<Executable>> makeDistributed(std::unique_ptr<Executable> local,
                                                      Communicator &comm) {
  if (!local->canSplitStep())
    return error(fmt::format("--distributed: the {} target cannot split the step into gradients "
                             "and update yet",
                             local->target()));
  // Where the gradient is allreduced: on the device where every process's
  // executable can, else through the host.
  const Executable::DeviceAllreduce device = local->deviceAllreduce();
  bool onDevice = false;
  std::string path;
  if (!device.note.empty()) {
    auto everywhere = comm.same(device.possible ? 1 : 0);
    if (!everywhere)
      return everywhere.diag();
    if (device.possible && *everywhere) {
      if (Status s = local->joinDeviceAllreduce(comm); !s)
        return s.diag();
      onDevice = true;
      path = fmt::format("gradient allreduced by {} on the device", device.note);
    } else {
      path = fmt::format("gradient allreduced by MPI through the host ({})",
                         device.possible ? "another process has no NCCL" : device.note);
    }
  }
  return std::unique_ptr<Executable>(
      new DistributedExecutable(std::move(local), comm, onDevice, std::move(path)));
}

std::string takeStepTimes(Executable &exe) {
  auto *d = dynamic_cast<DistributedExecutable *>(&exe);
  return d ? d->takeTimes() : "";
}

Status checkSameModel(Executable &exe, Communicator &comm, int64_t epoch) {
  const size_t bytes = size_t(exe.info().numParams) * sizeof(float);
  uint64_t h = fnv1a(exe.params(), bytes, 0xcbf29ce484222325ULL);
  for (const std::string &slot : exe.info().stateSlots)
    h = fnv1a(exe.state(slot), bytes, h);
  int64_t step = exe.step();
  h = fnv1a(&step, sizeof step, h);
  auto same = comm.same(h);
  if (!same)
    return same.diag();
  if (!*same)
    return error(fmt::format("after epoch {}: the parameters of process {} of {} differ from "
                             "another process's (checksum {:016x}); the processes drifted apart",
                             epoch, comm.rank(), comm.size(), h));
  return {};
}

} // namespace graphc::runtime
