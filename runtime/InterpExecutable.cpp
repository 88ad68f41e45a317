// runtime/InterpExecutable.cpp - the reference interpreter behind the
// Executable interface, so the trainer and backends can be checked against it.
#include "ir/Interpreter.h"
#include "ir/Random.h"
#include "ir/graphc_io.h"
#include "runtime/CompiledModel.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

namespace graphc::runtime {
namespace {

using ir::Tensor;

class InterpExecutable : public Executable {
public:
  InterpExecutable(CompiledModel m, int64_t maxBatch) : m_(std::move(m)), maxBatch_(maxBatch) {
    info_ = m_.info;
    params_.assign(size_t(info_.numParams), 0.0f);
    for (const std::string &s : info_.stateSlots)
      state_[s].assign(size_t(info_.numParams), 0.0f);
  }

  std::string target() const override { return "interp"; }
  int64_t maxBatch() const override { return maxBatch_; }

  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    auto values = evaluateStep(x, labels, n);
    if (!values)
      return values.diag();
    finishStep(*values, loss, output);
    return {};
  }

  bool canSplitStep() const override { return m_.split(); }

  Status computeGradients(const float *x, const int32_t *labels, int64_t n, int64_t offset,
                          float *loss, float *output, float *grad) override {
    if (!m_.split())
      return Executable::computeGradients(x, labels, n, offset, loss, output, grad);
    auto b = stepInputs(x, labels, n);
    if (!b)
      return b.diag();
    if (m_.gradients.findInput(GRAPHC_IO_OFFSET) >= 0)
      (*b)[GRAPHC_IO_OFFSET] = Tensor({}, double(offset));
    auto out = ir::run(m_.gradients, *b);
    if (!out)
      return out.diag();
    *loss = float(out->at(GRAPHC_IO_LOSS).data[0]);
    if (output)
      copyOut(out->at(GRAPHC_IO_OUTPUT), output);
    copyOut(out->at(GRAPHC_IO_GRAD), grad);
    return {};
  }

  Status applyUpdate(const float *grad) override {
    if (!m_.split())
      return Executable::applyUpdate(grad);
    ir::Bindings b{{GRAPHC_IO_PARAMS, toTensor(params_)},
                   {GRAPHC_IO_GRAD, toTensor(std::vector<float>(grad, grad + info_.numParams))},
                   {GRAPHC_IO_STEP, Tensor({}, double(step_))}};
    for (auto &[slot, buf] : state_)
      b[GRAPHC_IO_STATE + slot] = toTensor(buf);
    auto out = ir::run(m_.update, b);
    if (!out)
      return out.diag();
    copyOut(out->at(GRAPHC_IO_PARAMS), params_.data());
    for (auto &[slot, buf] : state_)
      copyOut(out->at(GRAPHC_IO_STATE + slot), buf.data());
    ++step_;
    return {};
  }

  bool canDiagnoseSteps() const override { return m_.trainable(); }

  /// Every value of the step is kept, so the ops are checked in order
  /// after it: as f32, which the interpreter's double values stand for.
  Expected<NonFiniteReport> diagnoseStep(const float *x, const int32_t *labels,
                                         int64_t n) override {
    auto values = evaluateStep(x, labels, n);
    if (!values)
      return values.diag();
    NonFiniteReport first;
    for (ir::ValueId v = 0; v < m_.step.size() && !first.found; ++v) {
      if (m_.step.type(v).dtype != ir::DType::F32)
        continue;
      const std::vector<double> &d = (*values)[size_t(v)].data;
      for (size_t i = 0; i < d.size(); ++i)
        if (!std::isfinite(float(d[i]))) {
          first = nonFiniteAt(m_.step, v, int64_t(i), float(d[i]));
          break;
        }
    }
    float loss;
    finishStep(*values, &loss, nullptr);
    return first;
  }

  Status predict(const float *x, int64_t n, float *output) override {
    if (Status s = checkBatch(x, n); !s)
      return s;
    auto out = ir::run(m_.predict, inputs(x, n));
    if (!out)
      return out.diag();
    copyOut(out->at(GRAPHC_IO_OUTPUT), output);
    return {};
  }

  float *params() override { return params_.data(); }
  float *state(const std::string &slot) override {
    auto it = state_.find(slot);
    return it == state_.end() ? nullptr : it->second.data();
  }
  int64_t step() const override { return step_; }
  void setStep(int64_t step) override { step_ = step; }
  void setSeed(uint64_t seed) override { seed_ = seed; }

private:
  /// The value of every node of the step graph.
  Expected<std::vector<Tensor>> evaluateStep(const float *x, const int32_t *labels, int64_t n) {
    auto b = stepInputs(x, labels, n);
    if (!b)
      return b.diag();
    return ir::evaluate(m_.step, *b);
  }

  /// A training step's inputs: the batch, labels, params, step, seed, state.
  Expected<ir::Bindings> stepInputs(const float *x, const int32_t *labels, int64_t n) {
    if (Status s = checkBatch(x, n); !s)
      return s.diag();
    if (!m_.trainable())
      return error("this model was compiled for evaluation only");
    if (Status s = checkLabels(labels, n); !s)
      return s.diag();
    ir::Bindings b = inputs(x, n);
    Tensor &l = b[GRAPHC_IO_LABELS] = Tensor({n});
    for (int64_t i = 0; i < n; ++i)
      l.data[size_t(i)] = labels[i];
    b[GRAPHC_IO_STEP] = Tensor({}, double(step_));
    b[GRAPHC_IO_SEED] = Tensor({}, double(stepSeed(seed_, step_)));
    for (auto &[slot, buf] : state_)
      b[GRAPHC_IO_STATE + slot] = toTensor(buf);
    return b;
  }

  /// Takes the step's outputs from `values` and counts the step.
  void finishStep(const std::vector<Tensor> &values, float *loss, float *output) {
    auto out = [&](const std::string &name) -> const Tensor & {
      return values[size_t(m_.step.output(name))];
    };
    *loss = float(out(GRAPHC_IO_LOSS).data[0]);
    if (output)
      copyOut(out(GRAPHC_IO_OUTPUT), output);
    copyOut(out(GRAPHC_IO_PARAMS), params_.data());
    for (auto &[slot, buf] : state_)
      copyOut(out(GRAPHC_IO_STATE + slot), buf.data());
    ++step_;
  }

  Status checkBatch(const float *x, int64_t n) const {
    if (!x || n < 1 || n > maxBatch_)
      return error(fmt::format("batch of {} samples: expected 1 to {}", n, maxBatch_));
    return {};
  }

  static Tensor toTensor(const std::vector<float> &v) {
    Tensor t({int64_t(v.size())});
    std::copy(v.begin(), v.end(), t.data.begin());
    return t;
  }

  static void copyOut(const Tensor &t, float *dst) {
    for (size_t i = 0; i < t.data.size(); ++i)
      dst[i] = float(t.data[i]);
  }

  ir::Bindings inputs(const float *x, int64_t n) const {
    ir::Shape s{n};
    s.insert(s.end(), info_.sample.begin(), info_.sample.end());
    Tensor tx(s);
    std::copy(x, x + tx.numel(), tx.data.begin());
    return {{GRAPHC_IO_X, tx}, {GRAPHC_IO_PARAMS, toTensor(params_)}};
  }

  CompiledModel m_;
  int64_t maxBatch_;
  std::vector<float> params_;
  std::map<std::string, std::vector<float>> state_;
  int64_t step_ = 0;
  uint64_t seed_ = 1;
};

} // namespace

std::unique_ptr<Executable> makeInterpExecutable(CompiledModel model, int64_t maxBatch) {
  return std::make_unique<InterpExecutable>(std::move(model), maxBatch);
}

int32_t stepSeed(uint64_t seed, int64_t step) {
  return graphc_step_seed(seed, step);
}

} // namespace graphc::runtime
