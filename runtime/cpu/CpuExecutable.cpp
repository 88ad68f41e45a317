// runtime/cpu/CpuExecutable.cpp - the JIT-compiled CPU step behind the
// Executable interface: the parameter, state and output buffers it owns,
// and the two programs (training step, evaluation pass) it runs.
#include "runtime/cpu/CpuExecutable.h"

#include "ir/graphc_io.h"
#include "runtime/cpu/Runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace graphc::runtime::cpu {

using codegen::cpu::Program;

namespace {

/// A zeroed, 64-byte-aligned float array.
class Floats {
public:
  explicit Floats(size_t n = 0) { resize(n); }
  void resize(size_t n) {
    size_t bytes = std::max<size_t>(64, (n * 4 + 63) / 64 * 64);
    p_.reset(static_cast<float *>(std::aligned_alloc(64, bytes)));
    if (!p_)
      throw std::bad_alloc();
    std::memset(p_.get(), 0, bytes);
  }
  float *get() const { return p_.get(); }

private:
  std::unique_ptr<float, void (*)(void *)> p_{nullptr, std::free};
};

class CpuExecutable : public Executable {
public:
  CpuExecutable(CompiledModel m, const ExecutableOptions &o)
      : maxBatch_(o.maxBatch), runner_(o.threads), isa_(o.cpu), cacheDir_(o.cacheDir),
        trainable_(m.trainable()) {
    info_ = m.info;
    // The memplan pass's plans, made for the largest batch.
    GRAPHC_CHECK(m.predictPlan.batch >= maxBatch_ && (!trainable_ || m.stepPlan.batch >= maxBatch_),
                 "plans for batch {} run at batch {}", m.predictPlan.batch, maxBatch_);
    step_.graph = std::move(m.step);
    step_.plan = std::move(m.stepPlan);
    predict_.graph = std::move(m.predict);
    predict_.plan = std::move(m.predictPlan);
    params_.resize(size_t(info_.numParams));
    for (const std::string &s : info_.stateSlots)
      state_[s].resize(size_t(info_.numParams));
    output_.resize(size_t(maxBatch_ * info_.classes));
  }

  Status compile() {
    if (!trainable_)
      return runner_.compile({&predict_}, {"predict_"}, isa_, cacheDir_);
    return runner_.compile({&step_, &predict_}, {"step_", "predict_"}, isa_, cacheDir_);
  }

  std::string target() const override { return "cpu"; }
  /// "cpu (avx512), code compiled in 410 ms" or "... from the cache in
  /// 4 ms"; a cache problem (a damaged entry, a full disk) is said too.
  std::string describe() const override {
    const codegen::cpu::JitCache &c = runner_.cache();
    std::string how = c.dir.empty() ? "compiled" : c.hit ? "from the cache" : "compiled and cached";
    std::string out =
        fmt::format("cpu ({}), code {} in {:.0f} ms", runner_.isa().name, how, runner_.compileMs());
    if (!c.problem.empty())
      out += " (" + c.problem + ")";
    return out;
  }
  int64_t maxBatch() const override { return maxBatch_; }

  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    if (Status s = checkStep(x, labels, n); !s)
      return s;
    runner_.run(step_, stepIo(x, labels), n);
    *loss = loss_;
    if (output)
      std::memcpy(output, output_.get(), size_t(n * info_.classes) * sizeof(float));
    ++stepCount_;
    return {};
  }

  bool canDiagnoseSteps() const override { return trainable_; }

  Expected<NonFiniteReport> diagnoseStep(const float *x, const int32_t *labels,
                                         int64_t n) override {
    if (Status s = checkStep(x, labels, n); !s)
      return s.diag();
    const ir::Graph &g = step_.graph;
    std::map<std::string, void *> io = stepIo(x, labels);
    std::vector<void *> table;
    // Kernels [0, 0) bind the buffers: the inputs are checked first.
    runner_.runKernels(step_, io, n, 0, 0, table);
    NonFiniteReport first = firstNonFiniteOf(g.inputs(), table, n);
    for (size_t k = 0; k < step_.kernels.size(); ++k) {
      runner_.runKernels(step_, io, n, int64_t(k), int64_t(k) + 1, table);
      if (first.found)
        continue;
      const codegen::KernelPlan &plan = step_.kernels[k].plan;
      std::vector<ir::ValueId> wrote = plan.members;
      for (ir::ValueId v : {plan.c, plan.colsum, plan.pack})
        if (v >= 0)
          wrote.push_back(v);
      std::sort(wrote.begin(), wrote.end());
      first = firstNonFiniteOf(wrote, table, n);
    }
    ++stepCount_;
    return first;
  }

  Status predict(const float *x, int64_t n, float *output) override {
    if (Status s = checkBatch(x, n); !s)
      return s;
    if (!output)
      return error("no output buffer given");
    runner_.run(
        predict_,
        {{GRAPHC_IO_X, const_cast<float *>(x)},
         {GRAPHC_IO_PARAMS, params_.get()},
         {GRAPHC_IO_OUT GRAPHC_IO_OUTPUT, output_.get()}},
        n);
    std::memcpy(output, output_.get(), size_t(n * info_.classes) * sizeof(float));
    return {};
  }

  float *params() override { return params_.get(); }
  float *state(const std::string &slot) override {
    auto it = state_.find(slot);
    return it == state_.end() ? nullptr : it->second.get();
  }
  int64_t step() const override { return stepCount_; }
  void setStep(int64_t step) override { stepCount_ = step; }
  void setSeed(uint64_t seed) override { seed_ = seed; }

private:
  Status checkStep(const float *x, const int32_t *labels, int64_t n) const {
    if (Status s = checkBatch(x, n); !s)
      return s;
    if (!trainable_)
      return error("this model was compiled for evaluation only");
    return checkLabels(labels, n);
  }

  /// The step's buffers by name; sets its step and seed inputs.
  std::map<std::string, void *> stepIo(const float *x, const int32_t *labels) {
    stepIn_ = float(stepCount_);
    seedIn_ = stepSeed(seed_, stepCount_);
    std::map<std::string, void *> io{{GRAPHC_IO_X, const_cast<float *>(x)},
                                     {GRAPHC_IO_LABELS, const_cast<int32_t *>(labels)},
                                     {GRAPHC_IO_PARAMS, params_.get()},
                                     {GRAPHC_IO_STEP, &stepIn_},
                                     {GRAPHC_IO_SEED, &seedIn_},
                                     {GRAPHC_IO_OUT GRAPHC_IO_LOSS, &loss_},
                                     {GRAPHC_IO_OUT GRAPHC_IO_OUTPUT, output_.get()},
                                     {GRAPHC_IO_OUT GRAPHC_IO_PARAMS, params_.get()},
                                     {GRAPHC_IO_OUT GRAPHC_IO_STEP, &stepOut_}};
    for (auto &[slot, buf] : state_) {
      io[GRAPHC_IO_STATE + slot] = buf.get();
      io[GRAPHC_IO_OUT GRAPHC_IO_STATE + slot] = buf.get();
    }
    return io;
  }

  /// The first non-finite element among the f32 values `vs` of the step,
  /// read where `table` says they are.
  NonFiniteReport firstNonFiniteOf(const std::vector<ir::ValueId> &vs,
                                   const std::vector<void *> &table, int64_t n) const {
    const ir::Graph &g = step_.graph;
    for (ir::ValueId v : vs) {
      if (g.type(v).dtype != ir::DType::F32 || !table[size_t(v)])
        continue;
      const auto *p = static_cast<const float *>(table[size_t(v)]);
      if (int64_t i = firstNonFinite(p, g.type(v).numel(n)); i >= 0)
        return nonFiniteAt(g, v, i, p[i]);
    }
    return {};
  }

  Status checkBatch(const float *x, int64_t n) const {
    if (!x)
      return error("no input given");
    if (n < 1 || n > maxBatch_)
      return error(fmt::format("batch of {} samples: this executable takes 1 to {}", n, maxBatch_));
    return {};
  }

  int64_t maxBatch_;
  Runner runner_;
  std::string isa_;
  std::string cacheDir_;
  bool trainable_;
  Program step_, predict_;
  Floats params_, output_;
  std::map<std::string, Floats> state_;
  float stepIn_ = 0, loss_ = 0, stepOut_ = 0;
  int32_t seedIn_ = 0;
  int64_t stepCount_ = 0;
  uint64_t seed_ = 1;
};

} // namespace

Expected<std::unique_ptr<Executable>> makeCpuExecutable(CompiledModel model,
                                                        const ExecutableOptions &options) {
  auto exe = std::make_unique<CpuExecutable>(std::move(model), options);
  if (Status s = exe->compile(); !s)
    return s.diag();
  return std::unique_ptr<Executable>(std::move(exe));
}

} // namespace graphc::runtime::cpu
