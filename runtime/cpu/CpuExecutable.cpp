// runtime/cpu/CpuExecutable.cpp - the JIT-compiled CPU step behind the
// Executable interface. LLVM compiles the two programs (training step,
// evaluation pass); the C runtime's model context (runtime/rt/graphc_model.c),
// the one an ahead-of-time library runs, owns the buffers and runs them.
#include "runtime/cpu/CpuExecutable.h"

#include "codegen/cpu/Jit.h"
#include "runtime/ModelDesc.h"
#include "runtime/rt/graphc_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace graphc::runtime::cpu {

using codegen::cpu::JitCache;
using codegen::cpu::JitModule;
using codegen::cpu::Program;

namespace {

/// The cpu target: LLVM compiles the programs, graphc_model.c runs them
/// (the same context an ahead-of-time library's user creates).
class CpuExecutable : public Executable {
public:
  CpuExecutable(CompiledModel m, const ExecutableOptions &o)
      : maxBatch_(o.maxBatch), threads_(o.threads), isaName_(o.cpu), trainable_(m.trainable()) {
    info_ = m.info;
    cache_.dir = o.cacheDir;
    // The memplan pass's plans, made for the largest batch.
    GRAPHC_CHECK(m.predictPlan.batch >= maxBatch_ && (!trainable_ || m.stepPlan.batch >= maxBatch_),
                 "plans for batch {} run at batch {}", m.predictPlan.batch, maxBatch_);
    step_.graph = std::move(m.step);
    step_.plan = std::move(m.stepPlan);
    predict_.graph = std::move(m.predict);
    predict_.plan = std::move(m.predictPlan);
    gradients_.graph = std::move(m.gradients);
    gradients_.plan = std::move(m.gradientsPlan);
    update_.graph = std::move(m.update);
    update_.plan = std::move(m.updatePlan);
  }
  ~CpuExecutable() override { grt_model_destroy(model_); }

  Status compile() {
    auto chosen = codegen::cpu::chooseVectorTarget(isaName_);
    if (!chosen)
      return chosen.diag();
    isa_ = *chosen;
    std::vector<Program *> programs{&predict_};
    std::vector<std::string> prefixes{"predict_"};
    if (trainable_) {
      programs.insert(programs.begin(), &step_);
      prefixes.insert(prefixes.begin(), "step_");
    }
    if (split()) {
      programs.insert(programs.end(), {&gradients_, &update_});
      prefixes.insert(prefixes.end(), {"gradients_", "update_"});
    }
    auto jit = JitModule::compile(programs, prefixes, isa_, &compileMs_, &cache_);
    if (!jit)
      return jit.diag();
    jit_ = std::move(*jit);
    desc_ = std::make_unique<ModelDesc>(
        info_, ModelDesc::ProgramRef{trainable_ ? &step_.graph : nullptr, step_.plan.arenaBytes},
        ModelDesc::ProgramRef{&predict_.graph, predict_.plan.arenaBytes}, maxBatch_,
        ModelDesc::Isa{isa_.name, isa_.level, trainable_ ? step_.run : nullptr, predict_.run,
                       gradients_.run, update_.run},
        ModelDesc::ProgramRef{split() ? &gradients_.graph : nullptr, gradients_.plan.arenaBytes},
        ModelDesc::ProgramRef{split() ? &update_.graph : nullptr, update_.plan.arenaBytes});
    if (grt_model_create(desc_->get(), &model_, nullptr, threads_) != GRT_OK)
      return error(grt_model_error(nullptr));
    return {};
  }

  std::string target() const override { return "cpu"; }
  /// "cpu (avx512), code compiled in 410 ms" or "... from the cache in
  /// 4 ms"; a cache problem (a damaged entry, a full disk) is said too.
  std::string describe() const override {
    std::string how = cache_.dir.empty() ? "compiled"
                      : cache_.hit       ? "from the cache"
                                         : "compiled and cached";
    std::string out = fmt::format("cpu ({}), code {} in {:.0f} ms", isa_.name, how, compileMs_);
    if (!cache_.problem.empty())
      out += " (" + cache_.problem + ")";
    return out;
  }
  int64_t maxBatch() const override { return maxBatch_; }

  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    if (Status s = checkStep(labels, n); !s)
      return s;
    if (Status s = ok(grt_model_train_step(model_, x, labels, n, loss)); !s)
      return s;
    if (output)
      std::memcpy(output, grt_model_output(model_), size_t(n * info_.classes) * sizeof(float));
    return {};
  }

  bool canSplitStep() const override { return split(); }
  /// Whether the step was compiled split in two (CompiledModel::split).
  bool split() const { return gradients_.graph.size() > 0; }

  Status computeGradients(const float *x, const int32_t *labels, int64_t n, int64_t offset,
                          float *loss, float *output, float *grad) override {
    if (Status s = checkStep(labels, n); !s)
      return s;
    if (Status s = ok(grt_model_compute_gradients(model_, x, labels, n, offset, grad, loss)); !s)
      return s;
    if (output)
      std::memcpy(output, grt_model_output(model_), size_t(n * info_.classes) * sizeof(float));
    return {};
  }

  Status applyUpdate(const float *grad) override { return ok(grt_model_apply_update(model_, grad)); }

  bool canDiagnoseSteps() const override { return trainable_; }

  Expected<NonFiniteReport> diagnoseStep(const float *x, const int32_t *labels,
                                         int64_t n) override {
    if (Status s = checkStep(labels, n); !s)
      return s.diag();
    const ir::Graph &g = step_.graph;
    std::vector<void *> table(size_t(std::max(g.size(), 1)), nullptr);
    auto run = [&](int64_t begin, int64_t end) {
      return ok(grt_model_train_step_kernels(model_, step_.runKernels, x, labels, n, begin, end,
                                             table.data()));
    };
    // Kernels [0, 0) bind the buffers: the inputs are checked first.
    if (Status s = run(0, 0); !s)
      return s.diag();
    NonFiniteReport first = firstNonFiniteOf(g.inputs(), table, n);
    for (size_t k = 0; k < step_.kernels.size(); ++k) {
      if (Status s = run(int64_t(k), int64_t(k) + 1); !s)
        return s.diag();
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
    grt_model_set_step(model_, grt_model_step(model_) + 1);
    return first;
  }

  Status predict(const float *x, int64_t n, float *output) override {
    if (!output)
      return error("no output buffer given");
    return ok(grt_model_predict(model_, x, n, output));
  }

  float *params() override { return grt_model_params(model_); }
  float *state(const std::string &slot) override {
    const auto &slots = info_.stateSlots;
    auto it = std::find(slots.begin(), slots.end(), slot);
    return it == slots.end() ? nullptr : grt_model_state(model_, it - slots.begin());
  }
  int64_t step() const override { return grt_model_step(model_); }
  void setStep(int64_t step) override { grt_model_set_step(model_, step); }
  void setSeed(uint64_t seed) override { grt_model_set_seed(model_, seed); }

private:
  /// The C runtime's answer as a Status: its message on failure.
  Status ok(int rc) const {
    if (rc == GRT_OK)
      return {};
    return error(grt_model_error(model_));
  }

  /// What the C runtime does not say as graphc does: an evaluation-only
  /// model, and labels out of range (Executable::checkLabels's message).
  Status checkStep(const int32_t *labels, int64_t n) const {
    if (!trainable_)
      return error("this model was compiled for evaluation only");
    if (n < 1 || n > maxBatch_)
      return {}; // the C runtime names the batch size
    return checkLabels(labels, n);
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

  int64_t maxBatch_;
  int threads_;
  std::string isaName_;
  bool trainable_;
  codegen::cpu::VectorTarget isa_;
  JitCache cache_;
  double compileMs_ = 0;
  Program step_, predict_, gradients_, update_;
  std::unique_ptr<JitModule> jit_;
  std::unique_ptr<ModelDesc> desc_;
  grt_model *model_ = nullptr;
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
