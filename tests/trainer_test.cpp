// tests/trainer_test.cpp - the training loop: shuffles, the short last batch,
// resume bit for bit, metrics, and the confusion matrix against hand counts.
#include "driver/Compile.h"
#include "driver/EmitLibrary.h"
#include "runtime/Checkpoint.h"
#include "runtime/Trainer.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

using namespace graphc;
using namespace graphc::runtime;
using namespace graphc::driver;
namespace fs = std::filesystem;

using test::TempDir;

namespace {

/// View(784), Linear(784, hidden), ReLU, [Dropout], Linear(hidden, 10), LogSoftMax.
nn::ModelSpec tinyMlp(int64_t hidden, bool dropout, const std::string &optimizer = "adagrad",
                      double lr = 1e-3) {
  nn::ModelSpec spec;
  spec.model.add(nn::View(784)).add(nn::Linear(784, hidden)).add(nn::ReLU());
  if (dropout)
    spec.model.add(nn::Dropout(0.25));
  spec.model.add(nn::Linear(hidden, 10)).add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{};
  spec.optimizer = nn::Optimizer{optimizer, {{"learningRate", lr}}, {}};
  spec.file = "tiny.model";
  return spec;
}

std::unique_ptr<Executable> buildInterp(const nn::ModelSpec &spec, int64_t batch, uint64_t seed) {
  BuildOptions o;
  o.target = "interp";
  o.maxBatch = batch;
  o.seed = seed;
  auto exe = build(spec, {1, 28, 28}, o);
  REQUIRE(exe);
  return std::move(*exe);
}

SampleFormat format784() {
  auto f = sampleFormat(28, 28, {1, 28, 28});
  REQUIRE(f);
  return *f;
}


/// Passes everything to a real executable and records the batch sizes.
class SpyExecutable : public Executable {
public:
  explicit SpyExecutable(std::unique_ptr<Executable> inner) : inner_(std::move(inner)) {
    info_ = inner_->info();
  }
  std::string target() const override { return "spy"; }
  int64_t maxBatch() const override { return inner_->maxBatch(); }
  Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                   float *output) override {
    batches.push_back(n);
    for (int64_t i = 0; i < n; ++i)
      labelCounts[labels[i]]++;
    return inner_->trainStep(x, labels, n, loss, output);
  }
  Status predict(const float *x, int64_t n, float *output) override {
    return inner_->predict(x, n, output);
  }
  float *params() override { return inner_->params(); }
  float *state(const std::string &slot) override { return inner_->state(slot); }
  int64_t step() const override { return inner_->step(); }
  void setStep(int64_t s) override { inner_->setStep(s); }
  void setSeed(uint64_t s) override { inner_->setSeed(s); }

  std::vector<int64_t> batches;
  std::map<int32_t, int64_t> labelCounts;

private:
  std::unique_ptr<Executable> inner_;
};

/// Predicts class (first pixel value) % classes; never trains.
class FakeClassifier : public Executable {
public:
  explicit FakeClassifier(int64_t classes, int64_t sampleSize) {
    info_.classes = classes;
    info_.sample = {sampleSize};
  }
  std::string target() const override { return "fake"; }
  int64_t maxBatch() const override { return 16; }
  Status trainStep(const float *, const int32_t *, int64_t, float *, float *) override {
    return error("not here");
  }
  Status predict(const float *x, int64_t n, float *output) override {
    REQUIRE(n <= 16);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < info_.classes; ++c)
        output[i * info_.classes + c] =
            c == int64_t(x[i * info_.sample[0]]) % info_.classes ? 1.0f : -1.0f;
    return {};
  }
  float *params() override { return nullptr; }
  float *state(const std::string &) override { return nullptr; }
  int64_t step() const override { return 0; }
  void setStep(int64_t) override {}
  void setSeed(uint64_t) override {}
};

bool sameBuffers(Executable &a, Executable &b) {
  size_t bytes = size_t(a.info().numParams) * 4;
  if (std::memcmp(a.params(), b.params(), bytes) != 0)
    return false;
  for (const std::string &slot : a.info().stateSlots)
    if (std::memcmp(a.state(slot), b.state(slot), bytes) != 0)
      return false;
  return a.step() == b.step();
}

} // namespace

TEST_CASE("each epoch's order is a permutation drawn from (seed, epoch) only", "[trainer]") {
  for (int64_t n : {0, 1, 2, 17, 1000}) {
    std::vector<int64_t> o = epochOrder(n, 1, 1);
    REQUIRE(int64_t(o.size()) == n);
    std::vector<int64_t> sorted = o;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < n; ++i)
      REQUIRE(sorted[size_t(i)] == i);
  }
  std::vector<int64_t> e1 = epochOrder(1000, 1, 1), e2 = epochOrder(1000, 1, 2);
  CHECK(e1 != e2);
  CHECK(epochOrder(1000, 2, 1) != e1);
  // The same order whatever was drawn before.
  (void)epochOrder(500, 9, 3);
  CHECK(epochOrder(1000, 1, 2) == e2);
  CHECK(epochOrder(1000, 1, 1) == e1);
  // Actually shuffled: few fixed points, and every position visited.
  int fixed = 0;
  for (int64_t i = 0; i < 1000; ++i)
    fixed += e1[size_t(i)] == i;
  CHECK(fixed < 10);
  // Roughly uniform: sample 0 lands in each tenth of the order about equally.
  std::vector<int> where(10, 0);
  for (int64_t e = 1; e <= 2000; ++e) {
    std::vector<int64_t> o = epochOrder(100, 5, e);
    where[size_t((std::find(o.begin(), o.end(), 0) - o.begin()) / 10)]++;
  }
  for (int w : where)
    CHECK((w > 130 && w < 270));
}

TEST_CASE("the short last batch is trained, every sample once", "[trainer]") {
  Dataset data = syntheticDataset({.train = 70, .test = 10});
  SpyExecutable spy(buildInterp(tinyMlp(4, false), 32, 1));
  auto st = trainEpoch(spy, data.train, format784(), test::quietTraining(1, 32, 1), 1);
  REQUIRE(st);
  CHECK(spy.batches == std::vector<int64_t>{32, 32, 6});
  CHECK(st->samples == 70);
  CHECK(st->batches == 3);
  CHECK(st->step == 3);
  CHECK(spy.step() == 3);
  std::map<int32_t, int64_t> want;
  for (int32_t l : data.train.labels)
    want[l]++;
  CHECK(spy.labelCounts == want);
}

TEST_CASE("2 epochs equal 1 epoch + save + resume + 1 epoch, bit for bit", "[trainer]") {
  TempDir d;
  Dataset data = syntheticDataset({.train = 150, .test = 20});
  for (std::string opt : {"adagrad", "adam", "sgd", "rmsprop", "adadelta", "nag"}) {
    INFO(opt);
    nn::ModelSpec spec = tinyMlp(8, /*dropout=*/true, opt, 1e-3);
    std::map<std::string, double> &config = spec.optimizer->config;
    if (opt != "rmsprop" && opt != "adadelta")
      config["learningRateDecay"] = opt == "adam" ? 0 : 1e-3;
    if (opt == "sgd")
      config["momentum"] = 0.9;
    if (opt == "rmsprop")
      config["initialMean"] = 0.1; // read at the first step only
    if (opt == "adadelta")
      config.erase("learningRate"); // Torch7's adadelta has none
    std::string ckpt = d / (opt + ".safetensors");

    auto straight = buildInterp(spec, 64, 3);
    REQUIRE(train(*straight, data, format784(), test::quietTraining(2, 64, 3)));

    auto first = buildInterp(spec, 64, 3);
    TrainOptions o1 = test::quietTraining(1, 64, 3);
    o1.save = ckpt;
    REQUIRE(train(*first, data, format784(), o1));
    CHECK(!sameBuffers(*first, *straight));

    auto resumed = buildInterp(spec, 64, 99); // other initial parameters and seed
    auto info = loadCheckpoint(ckpt, *resumed);
    REQUIRE(info);
    CHECK(info->epoch == 1);
    CHECK(info->step == 3);
    REQUIRE(info->hasSeed);
    resumed->setSeed(info->seed);
    auto rest = train(*resumed, data, format784(), test::quietTraining(2, 64, info->seed), info->epoch);
    REQUIRE(rest);
    REQUIRE(rest->size() == 1);
    CHECK((*rest)[0].epoch == 2);
    CHECK(resumed->step() == 6);
    CHECK(sameBuffers(*resumed, *straight));
  }
}

TEST_CASE("the synthetic set is learnt in two epochs", "[trainer]") {
  // The seed MLP learns it from raw pixels in one epoch (99.6%, see
  // `graphc train examples/mlp.model --data synthetic`); a 32-unit MLP fast
  // enough for the interpreter wants normalised inputs and a larger rate.
  Dataset data = syntheticDataset();
  SampleFormat f = format784();
  f.normalize = true;
  pixelStats(data.train, &f.mean, &f.std);
  auto exe = buildInterp(tinyMlp(32, false, "adagrad", 1e-2), 256, 1);
  auto stats = train(*exe, data, f, test::quietTraining(2, 256, 1));
  REQUIRE(stats);
  REQUIRE(stats->size() == 2);
  const EpochStats &last = stats->back();
  INFO("train loss " << last.trainLoss << ", train accuracy " << last.trainAccuracy
                     << ", test accuracy " << last.testAccuracy);
  CHECK(last.testAccuracy > 0.95);
  CHECK(last.trainLoss < (*stats)[0].trainLoss);
  CHECK(last.samples == 2000);
  CHECK(last.step == 16); // 7 full batches and one of 208, twice
}

TEST_CASE("metrics are appended as one JSON object per epoch", "[trainer]") {
  TempDir d;
  Dataset data = syntheticDataset({.train = 40, .test = 10});
  auto exe = buildInterp(tinyMlp(4, false), 16, 1);
  TrainOptions o = test::quietTraining(2, 16, 1);
  o.metrics = d / "m.jsonl";
  auto stats = train(*exe, data, format784(), o);
  REQUIRE(stats);
  o.epochs = 3;
  REQUIRE(train(*exe, data, format784(), o, 2));
  std::ifstream f(o.metrics);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(f, line);)
    lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(lines[size_t(i)]["epoch"] == i + 1);
    CHECK(lines[size_t(i)]["step"] == 3 * (i + 1)); // 16 + 16 + 8 per epoch
    for (const char *k : {"train_loss", "train_acc", "test_acc", "samples_per_s", "epoch_s"})
      CHECK(lines[size_t(i)][k].is_number());
  }
  CHECK(lines[0]["train_loss"].get<double>() == Approx((*stats)[0].trainLoss));
  CHECK(lines[1]["test_acc"].get<double>() == Approx((*stats)[1].testAccuracy));
}

TEST_CASE("the confusion matrix matches hand-computed accuracies", "[trainer]") {
  // rows = targets: [3 1 0] [0 2 2] [1 0 1], plus an empty class 3
  ConfusionMatrix m({"a", "b", "c", "d"});
  auto addN = [&](int t, int p, int n) {
    for (int i = 0; i < n; ++i)
      m.add(t, p);
  };
  addN(0, 0, 3);
  addN(0, 1, 1);
  addN(1, 1, 2);
  addN(1, 2, 2);
  addN(2, 0, 1);
  addN(2, 2, 1);
  CHECK(m.total() == 10);
  CHECK(m.rowCorrect(0) == 0.75);
  CHECK(m.rowCorrect(1) == 0.5);
  CHECK(m.rowCorrect(2) == 0.5);
  CHECK(std::isnan(m.rowCorrect(3)));
  CHECK(m.unionCorrect(0) == Approx(3.0 / 5));
  CHECK(m.unionCorrect(1) == Approx(2.0 / 5));
  CHECK(m.unionCorrect(2) == Approx(1.0 / 4));
  CHECK(m.averageRowCorrect() == Approx((0.75 + 0.5 + 0.5) / 3));
  CHECK(m.averageUnionCorrect() == Approx((0.6 + 0.4 + 0.25) / 3));
  CHECK(m.globalCorrect() == Approx(0.6));
  std::string want = "ConfusionMatrix:\n"
                     "[[       3       1       0       0]   75.000% \t[class: a]\n"
                     " [       0       2       2       0]   50.000% \t[class: b]\n"
                     " [       1       0       1       0]   50.000% \t[class: c]\n"
                     " [       0       0       0       0]]  nan% \t[class: d]\n"
                     " + average row correct: 58.333333333333% \n"
                     " + average rowUcol correct (VOC measure): 41.666666666667% \n"
                     " + global correct: 60%";
  CHECK(m.str() == want);
}

TEST_CASE("evaluate counts every test sample against its label", "[trainer]") {
  ImageSet set;
  set.count = 37;
  set.rows = 1;
  set.cols = 3;
  for (int i = 0; i < 37; ++i) {
    set.pixels.insert(set.pixels.end(), {uint8_t(i * 5 % 7), 0, 9});
    set.labels.push_back(i % 4);
  }
  auto f = sampleFormat(1, 3, {3});
  REQUIRE(f);
  FakeClassifier fake(4, 3);
  ConfusionMatrix m({"0", "1", "2", "3"});
  int64_t seen = 0;
  REQUIRE(
      evaluate(fake, set, *f, 10, m, [&](const float *, const float *, int64_t n) { seen += n; }));
  CHECK(seen == 37);
  std::vector<int64_t> want(16, 0);
  for (int i = 0; i < 37; ++i)
    want[size_t((i % 4) * 4 + (i * 5 % 7) % 4)]++;
  for (int t = 0; t < 4; ++t)
    for (int p = 0; p < 4; ++p)
      CHECK(m.count(t, p) == want[size_t(t * 4 + p)]);
  // A label the model cannot output is an error, not a crash.
  set.labels[5] = 6;
  ConfusionMatrix m2({"0", "1", "2", "3", "4", "5", "6"});
  Status s = evaluate(fake, set, *f, 10, m2);
  REQUIRE(!s);
  CHECK(s.diag().message.find("has label 6, but the model's output has only 4 classes") !=
        std::string::npos);
}

TEST_CASE("argmax takes the first maximum", "[trainer]") {
  float a[] = {1, 3, 3, 2};
  CHECK(argmax(a, 4) == 1);
  float b[] = {-5};
  CHECK(argmax(b, 1) == 0);
}

TEST_CASE("a row with a NaN predicts nothing: counted as wrong, never as class 0", "[trainer]") {
  float nan0[] = {NAN, 1, 2}, nan2[] = {5, 1, NAN}, inf[] = {1, INFINITY, 2}, fine[] = {0, 3, 1};
  CHECK(prediction(nan0, 3) == -1);
  CHECK(prediction(nan2, 3) == -1);
  CHECK(prediction(inf, 3) == 1);
  CHECK(prediction(fine, 3) == 1);
  CHECK(argmax(nan0, 3) == 0); // what the evaluation used to count

  ConfusionMatrix m({"a", "b"});
  m.add(0, 0);
  m.add(0, -1);
  m.add(0, -1);
  m.add(1, 1);
  CHECK(m.count(0, 0) == 1);
  CHECK(m.unpredicted(0) == 2);
  CHECK(m.unpredicted() == 2);
  CHECK(m.total() == 4);
  CHECK(m.rowCorrect(0) == Approx(1.0 / 3));
  CHECK(m.rowCorrect(1) == 1.0);
  CHECK(m.unionCorrect(0) == Approx(1.0 / 3));
  CHECK(m.globalCorrect() == 0.5);
  CHECK(m.str().find("\n + global correct: 50%\n + no prediction (NaN outputs, counted as "
                     "wrong): 2 of 4") != std::string::npos);

  // evaluate() on outputs that are NaN for the class-0 samples.
  class NanForZero : public FakeClassifier {
  public:
    NanForZero() : FakeClassifier(4, 3) {}
    Status predict(const float *x, int64_t n, float *output) override {
      Status s = FakeClassifier::predict(x, n, output);
      for (int64_t i = 0; i < n; ++i)
        if (int64_t(x[i * 3]) % 4 == 0)
          std::fill(output + i * 4, output + i * 4 + 4, NAN);
      return s;
    }
  } model;
  ImageSet set;
  set.count = 8;
  set.rows = 1;
  set.cols = 3;
  for (int i = 0; i < 8; ++i) {
    set.pixels.insert(set.pixels.end(), {uint8_t(i % 4), 0, 0});
    set.labels.push_back(i % 4); // the fake gets every one right, NaN rows aside
  }
  auto f = sampleFormat(1, 3, {3});
  REQUIRE(f);
  ConfusionMatrix e({"0", "1", "2", "3"});
  REQUIRE(evaluate(model, set, *f, 16, e));
  CHECK(e.count(0, 0) == 0);
  CHECK(e.unpredicted(0) == 2);
  CHECK(e.total() == 8);
  CHECK(e.globalCorrect() == 0.75);
}

TEST_CASE("a non-finite loss stops training at that step; the last checkpoint is kept",
          "[trainer]") {
  /// A real executable whose loss turns NaN (or inf) at one step.
  class Diverging : public SpyExecutable {
  public:
    Diverging(std::unique_ptr<Executable> inner, int64_t at, float loss)
        : SpyExecutable(std::move(inner)), at_(at), loss_(loss) {}
    Status trainStep(const float *x, const int32_t *labels, int64_t n, float *loss,
                     float *output) override {
      Status s = SpyExecutable::trainStep(x, labels, n, loss, output);
      if (step() == at_)
        *loss = loss_;
      return s;
    }

  private:
    int64_t at_;
    float loss_;
  };
  Dataset data = syntheticDataset({.train = 100, .test = 10});
  for (float bad : {float(NAN), INFINITY}) {
    INFO("loss " << bad);
    TempDir d;
    Diverging exe(buildInterp(tinyMlp(4, false), 10, 1), 15, bad);
    TrainOptions o = test::quietTraining(3, 10, 1);
    o.save = d / "ckpt";
    o.metrics = d / "metrics";
    auto r = train(exe, data, format784(), o);
    REQUIRE(!r);
    std::string msg = r.diag().str();
    INFO(msg);
    CHECK(msg.find(fmt::format("step 15 (epoch 2, batch 5): the loss is {}: training diverged "
                               "and stops here",
                               bad)) != std::string::npos);
    CHECK(msg.find(d / "ckpt is not written") != std::string::npos);
    CHECK(exe.batches.size() == 15); // not one step more
    auto back = buildInterp(tinyMlp(4, false), 10, 1);
    auto info = loadCheckpoint(d / "ckpt", *back);
    REQUIRE(info);
    CHECK(info->epoch == 1);
    CHECK(info->step == 10);
    std::ifstream metrics(d / "metrics");
    std::string line;
    int lines = 0;
    while (std::getline(metrics, line))
      ++lines;
    CHECK(lines == 1);
  }
}

TEST_CASE("off a terminal, progress is a line every tenth of the epoch", "[trainer]") {
  Dataset data = syntheticDataset({.train = 100, .test = 10});
  auto exe = buildInterp(tinyMlp(4, false), 10, 1);
  std::FILE *log = std::tmpfile();
  REQUIRE(log);
  TrainOptions o = test::quietTraining(1, 10, 1);
  o.progress = Progress::Auto; // a file is not a terminal
  o.log = log;
  REQUIRE(train(*exe, data, format784(), o));
  std::rewind(log);
  std::vector<std::string> lines;
  char buf[512];
  while (std::fgets(buf, sizeof buf, log))
    lines.push_back(buf);
  std::fclose(log);
  REQUIRE(lines.size() == 9);
  CHECK(lines[0].rfind("epoch 1/1: 10/100 samples (10%), ", 0) == 0);
  CHECK(lines[8].rfind("epoch 1/1: 90/100 samples (90%), ", 0) == 0);
  CHECK(lines[8].find(", loss ") != std::string::npos);
}

