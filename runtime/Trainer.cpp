// runtime/Trainer.cpp - shuffles, batches, progress, reports, checkpoints.
#include "runtime/Trainer.h"

#include "ir/Random.h"
#include "runtime/Checkpoint.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <unistd.h>

namespace graphc::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

/// Uniform in [0, bound) without modulo bias, from the generator's raw bits.
uint64_t below(std::mt19937_64 &rng, uint64_t bound) {
  uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  uint64_t r;
  do
    r = rng();
  while (r >= limit);
  return r % bound;
}

std::string clockTime(double s) {
  if (!std::isfinite(s) || s < 0)
    return "?";
  if (s < 60)
    return fmt::format("{:.1f}s", s);
  int64_t t = int64_t(s + 0.5);
  if (t < 3600)
    return fmt::format("{}:{:02}", t / 60, t % 60);
  return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
}

std::string percent(double fraction) {
  return std::isnan(fraction) ? "n/a" : fmt::format("{:.2f}%", 100 * fraction);
}

/// The running state of an epoch on the terminal: a bar redrawn in place, or
/// a plain line every tenth of the epoch when stderr is a file or pipe.
class ProgressReporter {
public:
  ProgressReporter(const TrainOptions &o, int64_t epoch, int64_t total)
      : out_(o.log), epoch_(epoch), epochs_(o.epochs), total_(total), mode_(o.progress),
        start_(Clock::now()), last_(start_) {
    if (mode_ == Progress::Auto)
      mode_ = out_ && ::isatty(::fileno(out_)) ? Progress::Bar : Progress::Lines;
    if (!out_)
      mode_ = Progress::None;
  }

  void update(int64_t done, double meanLoss) {
    double elapsed = seconds(start_);
    double rate = elapsed > 0 ? double(done) / elapsed : 0;
    double eta = rate > 0 ? double(total_ - done) / rate : NAN;
    if (mode_ == Progress::Bar) {
      if (done < total_ && std::chrono::duration<double>(Clock::now() - last_).count() < 0.1)
        return;
      last_ = Clock::now();
      constexpr int kWidth = 30;
      int filled = int(kWidth * done / std::max<int64_t>(total_, 1));
      std::string bar(size_t(filled), '=');
      if (filled < kWidth)
        bar += '>' + std::string(size_t(kWidth - filled - 1), ' ');
      std::string line =
          fmt::format("epoch {}/{} [{}] {}/{}  {:.0f} samples/s  ETA {}  "
                      "loss {:.4f}",
                      epoch_, epochs_, bar, done, total_, rate, clockTime(eta), meanLoss);
      width_ = std::max(width_, line.size());
      std::fprintf(out_, "\r%-*s", int(width_), line.c_str());
      std::fflush(out_);
    } else if (mode_ == Progress::Lines) {
      int64_t tenth = done * 10 / std::max<int64_t>(total_, 1);
      if (tenth <= printed_ || done == total_)
        return;
      printed_ = tenth;
      std::fprintf(out_,
                   "epoch %lld/%lld: %lld/%lld samples (%lld%%), %.0f samples/s, "
                   "ETA %s, loss %.4f\n",
                   (long long)epoch_, (long long)epochs_, (long long)done, (long long)total_,
                   (long long)(100 * done / total_), rate, clockTime(eta).c_str(), meanLoss);
      std::fflush(out_);
    }
  }

  /// Erases the bar so the epoch report starts on a clean line.
  void finish() {
    if (mode_ == Progress::Bar && width_ > 0) {
      std::fprintf(out_, "\r%*s\r", int(width_), "");
      std::fflush(out_);
    }
  }

private:
  std::FILE *out_;
  int64_t epoch_, epochs_, total_;
  Progress mode_;
  Clock::time_point start_, last_;
  size_t width_ = 0;
  int64_t printed_ = 0;
};

/// The largest label of a split, or -1 when it is empty.
int32_t maxLabel(const ImageSet &set) {
  int32_t m = -1;
  for (int32_t l : set.labels)
    m = std::max(m, l);
  return m;
}

Status checkLabels(const ImageSet &set, int64_t classes) {
  int32_t m = maxLabel(set);
  if (m >= classes)
    return error(fmt::format("{} has label {}, but the model's output has only {} classes "
                             "(its last layer's width)",
                             set.source, m, classes));
  return {};
}

/// The error for a step that diverged: its loss was not finite (`out`: the
/// model's outputs before the update, to tell a forward pass that blew up
/// from a loss that did), or its update left non-finite parameters (`out`
/// null). `located` says which kernel group made the first non-finite value.
Diag divergedError(const Executable &exe, const TrainOptions &options, int64_t step, int64_t epoch,
                   int64_t batchNo, int64_t m, float loss, const float *out,
                   const std::string &located) {
  int64_t classes = exe.info().classes, badRows = 0, firstRow = -1;
  for (int64_t i = 0; out && i < m; ++i) {
    bool finite = true;
    for (int64_t j = 0; j < classes; ++j)
      finite = finite && std::isfinite(out[i * classes + j]);
    if (!finite && badRows++ == 0)
      firstRow = i;
  }
  std::string what =
      !out ? fmt::format("the loss is {} but the update left non-finite parameters", loss)
           : fmt::format("the loss is {}", loss);
  std::string outputs =
      !out      ? std::string("the optimizer update diverged")
      : badRows ? fmt::format("the model's outputs were already non-finite for {} of the batch's "
                              "{} samples (the first: sample {} of the batch), so the forward "
                              "pass diverged",
                              badRows, m, firstRow)
                : fmt::format("the model's outputs were finite for all {} samples, so the loss "
                              "itself overflowed",
                              m);
  std::string kept = options.save.empty()
                         ? "nothing is saved"
                         : fmt::format("{} is not written: it keeps the last epoch saved before "
                                       "this one",
                                       options.save);
  return error(fmt::format("step {} (epoch {}, batch {}): {}: training diverged and "
                           "stops here; {}; {}. {}. Try a lower learning rate, or --normalize",
                           step, epoch, batchNo, what, outputs, located, kept));
}

/// An executable's parameters, optimizer state and step counter.
struct Snapshot {
  std::vector<float> params;
  std::map<std::string, std::vector<float>> state;
  int64_t step = 0;

  static Snapshot of(Executable &exe) {
    Snapshot s;
    size_t count = size_t(exe.info().numParams);
    s.params.assign(exe.params(), exe.params() + count);
    for (const std::string &slot : exe.info().stateSlots)
      s.state[slot].assign(exe.state(slot), exe.state(slot) + count);
    s.step = exe.step();
    return s;
  }
  void restore(Executable &exe) const {
    std::copy(params.begin(), params.end(), exe.params());
    for (const auto &[slot, buf] : state)
      std::copy(buf.begin(), buf.end(), exe.state(slot));
    exe.setStep(step);
  }
};

/// Whether the parameters and the optimizer state hold no NaN or infinity.
bool stateFinite(Executable &exe) {
  int64_t count = exe.info().numParams;
  if (firstNonFinite(exe.params(), count) >= 0)
    return false;
  for (const std::string &slot : exe.info().stateSlots)
    if (firstNonFinite(exe.state(slot), count) >= 0)
      return false;
  return true;
}

/// Which kernel group first made a non-finite value, for the steps of an
/// epoch up to batch `failed` (0-based) that went wrong: replays the epoch
/// from its start, `start`, checking the parameters and state after each
/// step, and runs the first step that left them non-finite, or else the
/// failed one, one kernel group at a time. Steps are deterministic, so the
/// replay ends where the training did.
std::string locateNonFinite(Executable &exe, const Snapshot &start, const ImageSet &train,
                            const SampleFormat &format, const std::vector<int64_t> &order,
                            int64_t batch, int64_t failed) {
  if (!exe.canDiagnoseSteps())
    return fmt::format("the {} target cannot tell which kernel group made the first "
                       "non-finite value",
                       exe.target());
  std::vector<float> x(size_t(batch * format.numel())), out(size_t(batch * exe.info().classes));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  start.restore(exe);
  for (int64_t j = 0; j <= failed; ++j) {
    int64_t at = j * batch, m = std::min(batch, train.count - at);
    fillBatch(train, format, order.data() + at, m, x.data(), labels.data());
    if (j < failed) {
      Snapshot before = Snapshot::of(exe);
      float loss = 0;
      if (Status s = exe.trainStep(x.data(), labels.data(), m, &loss, out.data()); !s)
        return "replaying the epoch to find the first non-finite value failed: " + s.diag().message;
      if (std::isfinite(loss) && stateFinite(exe))
        continue;
      before.restore(exe);
    }
    int64_t stepNo = exe.step() + 1;
    auto report = exe.diagnoseStep(x.data(), labels.data(), m);
    if (!report)
      return "replaying the step to find the first non-finite value failed: " +
             report.diag().message;
    if (!report->found)
      return fmt::format("replaying step {} one kernel group at a time found no non-finite "
                         "value",
                         stepNo);
    if (report->phase == "input")
      return fmt::format("the parameters or optimizer state were already non-finite at the "
                         "start of this epoch: {}",
                         report->str());
    if (j < failed)
      return fmt::format("the parameters were already non-finite: the update of step {} "
                         "(batch {}) made them from a finite loss; the first non-finite value "
                         "came from {}",
                         stepNo, j + 1, report->str());
    return "the first non-finite value came from " + report->str();
  }
  return "";
}

std::vector<std::string> matrixNames(const Dataset &data, int64_t classes) {
  std::vector<std::string> names = data.classNames;
  for (int64_t c = int64_t(names.size()); c < classes; ++c)
    names.push_back(std::to_string(c));
  return names;
}

} // namespace

std::vector<int64_t> epochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(size_t(std::max<int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::mt19937_64 rng(ir::mix64(ir::mix64(seed ^ 0x7261696e6572ULL) + uint64_t(epoch)));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[size_t(i)], order[below(rng, uint64_t(i) + 1)]);
  return order;
}

int64_t argmax(const float *row, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j)
    if (row[j] > row[best])
      best = j;
  return best;
}

int64_t prediction(const float *row, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    if (std::isnan(row[j]))
      return -1;
  return argmax(row, n);
}

ConfusionMatrix::ConfusionMatrix(std::vector<std::string> classNames)
    : names_(std::move(classNames)), mat_(names_.size() * names_.size(), 0),
      unpredicted_(names_.size(), 0) {}

void ConfusionMatrix::add(int64_t target, int64_t prediction) {
  GRAPHC_CHECK(target >= 0 && target < classes() && prediction >= -1 && prediction < classes(),
               "confusion entry ({}, {}) outside {} classes", target, prediction, classes());
  if (prediction < 0)
    ++unpredicted_[size_t(target)];
  else
    ++mat_[size_t(target * classes() + prediction)];
}

int64_t ConfusionMatrix::count(int64_t target, int64_t prediction) const {
  return mat_[size_t(target * classes() + prediction)];
}

int64_t ConfusionMatrix::unpredicted() const {
  return std::accumulate(unpredicted_.begin(), unpredicted_.end(), int64_t(0));
}

int64_t ConfusionMatrix::total() const {
  return std::accumulate(mat_.begin(), mat_.end(), int64_t(0)) + unpredicted();
}

int64_t ConfusionMatrix::rowTotal(int64_t t) const {
  int64_t row = unpredicted(t);
  for (int64_t p = 0; p < classes(); ++p)
    row += count(t, p);
  return row;
}

double ConfusionMatrix::rowCorrect(int64_t t) const {
  int64_t row = rowTotal(t);
  return row ? double(count(t, t)) / double(row) : NAN;
}

double ConfusionMatrix::unionCorrect(int64_t t) const {
  int64_t row = rowTotal(t), col = 0;
  for (int64_t k = 0; k < classes(); ++k)
    col += count(k, t);
  int64_t uni = row + col - count(t, t);
  return uni ? double(count(t, t)) / double(uni) : NAN;
}

double ConfusionMatrix::averageRowCorrect() const {
  double sum = 0;
  int n = 0;
  for (int64_t t = 0; t < classes(); ++t)
    if (!std::isnan(rowCorrect(t))) {
      sum += rowCorrect(t);
      ++n;
    }
  return n ? sum / n : NAN;
}

double ConfusionMatrix::averageUnionCorrect() const {
  double sum = 0;
  int n = 0;
  for (int64_t t = 0; t < classes(); ++t)
    if (!std::isnan(rowCorrect(t)) && !std::isnan(unionCorrect(t))) {
      sum += unionCorrect(t);
      ++n;
    }
  return n ? sum / n : NAN;
}

double ConfusionMatrix::globalCorrect() const {
  int64_t diag = 0;
  for (int64_t t = 0; t < classes(); ++t)
    diag += count(t, t);
  int64_t all = total();
  return all ? double(diag) / double(all) : NAN;
}

std::string ConfusionMatrix::str() const {
  // Lua prints numbers with "%.14g"; NaN as "nan".
  auto lua = [](double v) {
    return std::isnan(v) ? std::string("nan") : fmt::format("{:.14g}", v);
  };
  std::string s = "ConfusionMatrix:\n[";
  for (int64_t t = 0; t < classes(); ++t) {
    double r = rowCorrect(t);
    std::string pclass = std::isnan(r) ? "nan" : fmt::format("{:2.3f}", r * 100);
    s += t == 0 ? "[" : " [";
    for (int64_t p = 0; p < classes(); ++p)
      s += fmt::format("{:8d}", count(t, p));
    s += t == classes() - 1 ? "]]  " : "]   ";
    s += pclass + "% \t[class: " + names_[size_t(t)] + "]\n";
  }
  s += " + average row correct: " + lua(averageRowCorrect() * 100) + "% \n";
  s += " + average rowUcol correct (VOC measure): " + lua(averageUnionCorrect() * 100) + "% \n";
  s += " + global correct: " + lua(globalCorrect() * 100) + "%";
  if (int64_t none = unpredicted())
    s += fmt::format("\n + no prediction (NaN outputs, counted as wrong): {} of {}", none, total());
  return s;
}

Status evaluate(Executable &exe, const ImageSet &set, const SampleFormat &format, int64_t batch,
                ConfusionMatrix &confusion,
                const std::function<void(const float *, const float *, int64_t)> &onBatch) {
  int64_t classes = exe.info().classes;
  GRAPHC_CHECK(confusion.classes() >= classes,
               "a confusion matrix of {} classes for a "
               "model of {}",
               confusion.classes(), classes);
  batch = std::clamp<int64_t>(batch, 1, exe.maxBatch());
  if (Status s = checkLabels(set, classes); !s)
    return s;
  std::vector<float> x(size_t(batch * format.numel())), out(size_t(batch * classes));
  std::vector<int64_t> idx(static_cast<size_t>(batch));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (int64_t start = 0; start < set.count; start += batch) {
    int64_t m = std::min(batch, set.count - start);
    std::iota(idx.begin(), idx.begin() + m, start);
    fillBatch(set, format, idx.data(), m, x.data(), labels.data());
    if (Status s = exe.predict(x.data(), m, out.data()); !s)
      return s;
    for (int64_t i = 0; i < m; ++i)
      confusion.add(labels[size_t(i)], prediction(out.data() + i * classes, classes));
    if (onBatch)
      onBatch(x.data(), out.data(), m);
  }
  return {};
}

Expected<EpochStats> trainEpoch(Executable &exe, const ImageSet &train, const SampleFormat &format,
                                const TrainOptions &options, int64_t epoch) {
  int64_t classes = exe.info().classes, batch = options.batch;
  if (batch < 1 || batch > exe.maxBatch())
    return error(
        fmt::format("--batch {}: this executable takes batches of 1 to {}", batch, exe.maxBatch()));
  int64_t sampleSize = 1;
  for (int64_t d : exe.info().sample)
    sampleSize *= d;
  if (format.numel() != sampleSize)
    return error(fmt::format("samples of shape {} do not fit the model's input {}",
                             ir::str(format.sample), ir::str(exe.info().sample)));
  if (Status s = checkLabels(train, classes); !s)
    return s.diag();

  EpochStats st;
  st.epoch = epoch;
  std::vector<int64_t> order = epochOrder(train.count, options.seed, epoch);
  std::vector<float> x(size_t(batch * format.numel())), out(size_t(batch * classes));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  ProgressReporter progress(options, epoch, train.count);
  double lossSum = 0;
  int64_t correct = 0;
  // The epoch's start, to replay up to a step that diverges (not kept
  // where nothing could replay it).
  Snapshot epochStart = exe.canDiagnoseSteps() ? Snapshot::of(exe) : Snapshot{};
  auto diverged = [&](int64_t at, int64_t m, float loss, const float *outputs) {
    progress.finish();
    int64_t step = exe.step(); // the replay may stop before it
    std::string located = locateNonFinite(exe, epochStart, train, format, order, batch, at / batch);
    return divergedError(exe, options, step, epoch, at / batch + 1, m, loss, outputs, located);
  };
  auto start = Clock::now();
  for (int64_t at = 0; at < train.count; at += batch) {
    int64_t m = std::min(batch, train.count - at);
    float loss = 0;
    Status s;
    if (options.dataOnDevice) {
      // The samples are on the device: only the shuffled indices travel.
      for (int64_t i = 0; i < m; ++i)
        labels[size_t(i)] = int32_t(train.labels[size_t(order[size_t(at + i)])]);
      s = exe.trainStepOnDevice(order.data() + at, m, &loss, out.data());
    } else {
      fillBatch(train, format, order.data() + at, m, x.data(), labels.data());
      s = exe.trainStep(x.data(), labels.data(), m, &loss, out.data());
    }
    if (!s) {
      progress.finish();
      return s.diag();
    }
    if (!std::isfinite(loss))
      return diverged(at, m, loss, out.data());
    // A finite loss whose update left non-finite parameters fails the next
    // step; the last one is checked here, before the epoch is saved.
    if (at + m == train.count && !stateFinite(exe))
      return diverged(at, m, loss, nullptr);
    lossSum += double(loss) * double(m);
    if (int64_t c = exe.lastStepCorrect(); c >= 0)
      correct += c;
    else
      for (int64_t i = 0; i < m; ++i)
        correct += prediction(out.data() + i * classes, classes) == labels[size_t(i)];
    st.samples += m;
    ++st.batches;
    progress.update(st.samples, lossSum / double(st.samples));
  }
  progress.finish();
  st.epochSeconds = seconds(start);
  st.trainLoss = st.samples ? lossSum / double(st.samples) : NAN;
  st.trainAccuracy = st.samples ? double(correct) / double(st.samples) : NAN;
  st.samplesPerSecond = st.epochSeconds > 0 ? double(st.samples) / st.epochSeconds : 0;
  st.step = exe.step();
  return st;
}

Expected<std::vector<EpochStats>> train(Executable &exe, const Dataset &data,
                                        const SampleFormat &format, const TrainOptions &options,
                                        int64_t startEpoch) {
  if (data.train.count == 0)
    return error(fmt::format("{}: no training samples", data.train.source));
  int64_t classes = std::max(exe.info().classes, data.classes());
  for (const ImageSet *set : {&data.train, &data.test})
    if (Status s = checkLabels(*set, exe.info().classes); !s)
      return s.diag();

  std::FILE *metrics = nullptr;
  if (!options.metrics.empty()) {
    metrics = std::fopen(options.metrics.c_str(), "a");
    if (!metrics) {
      Diag d = error(fmt::format("cannot open for appending: {}", std::strerror(errno)));
      d.file = options.metrics;
      return d;
    }
  }
  struct Closer {
    std::FILE *f;
    ~Closer() {
      if (f)
        std::fclose(f);
    }
  } closer{metrics};

  // Executables with a device keep the whole training set there.
  TrainOptions opts = options;
  if (exe.canKeepDataset()) {
    std::vector<int64_t> all(size_t(data.train.count));
    for (size_t i = 0; i < all.size(); ++i)
      all[i] = int64_t(i);
    std::vector<float> x(size_t(data.train.count * format.numel()));
    std::vector<int32_t> labels(size_t(data.train.count));
    fillBatch(data.train, format, all.data(), data.train.count, x.data(), labels.data());
    if (Status s = exe.uploadDataset(x.data(), labels.data(), data.train.count); !s)
      return s.diag();
    opts.dataOnDevice = true;
  }

  std::vector<EpochStats> all;
  for (int64_t epoch = startEpoch + 1; epoch <= options.epochs; ++epoch) {
    auto st = trainEpoch(exe, data.train, format, opts, epoch);
    if (!st)
      return st.diag();
    if (options.afterEpoch)
      if (Status s = options.afterEpoch(exe, epoch); !s)
        return s.diag();

    ConfusionMatrix confusion(matrixNames(data, classes));
    auto t0 = Clock::now();
    if (Status s = evaluate(exe, data.test, format, options.batch, confusion); !s)
      return s.diag();
    st->testSeconds = seconds(t0);
    st->testAccuracy = confusion.globalCorrect();

    if (options.out) {
      std::fputs(fmt::format("epoch {}/{}: train loss {:.4f}, train accuracy {}, test "
                             "accuracy {}, {:.0f} samples/s, {:.2f} s (test {:.2f} s)\n",
                             epoch, options.epochs, st->trainLoss, percent(st->trainAccuracy),
                             percent(st->testAccuracy), st->samplesPerSecond, st->epochSeconds,
                             st->testSeconds)
                     .c_str(),
                 options.out);
      if (options.confusion && data.test.count > 0)
        std::fputs((confusion.str() + "\n").c_str(), options.out);
      std::fflush(options.out);
    }
    if (metrics) {
      nlohmann::ordered_json line = {{"epoch", epoch},
                                     {"train_loss", st->trainLoss},
                                     {"train_acc", st->trainAccuracy},
                                     {"test_acc", st->testAccuracy},
                                     {"samples_per_s", st->samplesPerSecond},
                                     {"epoch_s", st->epochSeconds},
                                     {"step", st->step}};
      std::fputs((line.dump() + "\n").c_str(), metrics);
      if (std::fflush(metrics) != 0) {
        Diag d = error(fmt::format("cannot write: {}", std::strerror(errno)));
        d.file = options.metrics;
        return d;
      }
    }
    if (!options.save.empty()) {
      Status s = options.saveAs ? options.saveAs(options.save, exe, epoch)
                                : saveCheckpoint(options.save, exe, epoch, options.seed,
                                                 options.saveMetadata);
      if (!s)
        return s.diag();
    }
    all.push_back(*st);
  }
  return all;
}

} // namespace graphc::runtime
