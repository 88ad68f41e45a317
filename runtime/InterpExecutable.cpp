// runtime/InterpExecutable.cpp - the reference interpreter behind the
// Executable interface, so the trainer and backends can be checked against it.
#include "ir/Interpreter.h"
#include "ir/Random.h"
#include "runtime/CompiledModel.h"

#include <fmt/format.h>

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
    if (Status s = checkBatch(x, n); !s)
      return s;
    if (!m_.trainable())
      return error("this model was compiled for evaluation only");
    ir::Bindings b = inputs(x, n);
    b["labels"] = Tensor({n});
    for (int64_t i = 0; i < n; ++i) {
      if (labels[i] < 0 || labels[i] >= info_.classes)
        return error(
            fmt::format("label {} of sample {} is outside [0, {})", labels[i], i, info_.classes));
      b["labels"].data[size_t(i)] = labels[i];
    }
    b["step"] = Tensor({}, double(step_));
    b["seed"] = Tensor({}, double(stepSeed(seed_, step_)));
    for (auto &[slot, buf] : state_)
      b["state." + slot] = toTensor(buf);
    auto out = ir::run(m_.step, b);
    if (!out)
      return out.diag();
    *loss = float(out->at("loss").data[0]);
    if (output)
      copyOut(out->at("output"), output);
    copyOut(out->at("params"), params_.data());
    for (auto &[slot, buf] : state_)
      copyOut(out->at("state." + slot), buf.data());
    ++step_;
    return {};
  }

  Status predict(const float *x, int64_t n, float *output) override {
    if (Status s = checkBatch(x, n); !s)
      return s;
    auto out = ir::run(m_.predict, inputs(x, n));
    if (!out)
      return out.diag();
    copyOut(out->at("output"), output);
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
    return {{"x", tx}, {"params", toTensor(params_)}};
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
