// tools/TrainCommand.cpp - `graphc train` and `graphc eval`: data, the
// executable, the Torch7-style training loop, checkpoints and metrics.
#include "tools/Cli.h"

#include "driver/Compile.h"
#include "driver/T7Models.h"
#include "driver/Targets.h"
#include "frontend/ModelFile.h"
#include "runtime/Checkpoint.h"
#include "runtime/Dataset.h"
#include "runtime/Distributed.h"
#include "runtime/T7.h"
#include "runtime/Trainer.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <unistd.h>

namespace graphc::cli {
namespace {

struct TrainCliOptions {
  std::string model, data, testData, input, target = driver::defaultTarget(), save, resume, metrics,
                                            maxMemory;
  std::string progress = "auto";
  int64_t epochs = 5, batch = 256, trainLimit = 0, testLimit = 0;
  uint64_t seed = 1;
  int threads = 0;
  bool normalize = false;
  double mean = 0, std = 0; ///< --mean, --std (raw pixel scale); std 0: not given
  bool tf32 = false;
  bool noCache = false;
  bool force = false;
  bool allowNonfinite = false;
  bool distributed = false;
  CLI::Option *seedOption = nullptr;
  TrainingFlags training;
};

struct EvalCliOptions {
  std::string model, weights, data, testData, input, target = driver::defaultTarget(), dumpOutputs,
                                                     dumpInputs, maxMemory;
  int64_t batch = 256, testLimit = 0;
  int threads = 0;
  bool normalize = false;
  double mean = 0, std = 0;
  bool tf32 = false;
  bool noCache = false;
  bool allowNonfinite = false;
};

void note(const std::string &text) {
  std::fflush(stdout);
  std::fprintf(stderr, "note: %s\n", text.c_str());
}

/// What a checkpoint load let through (--allow-nonfinite), one line each.
void warn(const std::string &file, const std::vector<std::string> &warnings) {
  std::fflush(stdout);
  for (const std::string &w : warnings)
    std::fprintf(stderr, "%s: warning: %s\n", file.c_str(), w.c_str());
}

/// --mean M --std S: (x - M) / S on the raw 0-255 scale, as Torch7 scripts
/// normalise; SampleFormat keeps its statistics on the x/255 scale.
void setMeanStd(runtime::SampleFormat &format, double mean, double std) {
  format.normalize = true;
  format.mean = mean / 255.0;
  format.std = std / 255.0;
}

/// The data line's account of what the model is fed.
std::string describeInputs(const runtime::SampleFormat &format) {
  if (!format.normalize)
    return ", raw 0-255 values";
  return fmt::format(", normalised: (x - {:.4g}) / {:.4g} (mean {:.4f}, std {:.4f} of x/255)",
                     format.mean * 255.0, format.std * 255.0, format.mean, format.std);
}

/// The data set, limited, and how its images meet the model's input.
struct PreparedData {
  runtime::Dataset data;
  runtime::SampleFormat format;
};

Expected<PreparedData> prepareData(const nn::ModelSpec &spec, const std::string &dataFlag,
                                   const std::string &testDataFlag, const std::string &inputFlag,
                                   int64_t trainLimit, int64_t testLimit) {
  auto data = runtime::loadDataset(dataFlag, testDataFlag);
  if (!data)
    return data.diag();
  // The images' size, from the training set or (graphc eval --test-data)
  // the test set alone.
  const runtime::ImageSet &images = data->train.count ? data->train : data->test;
  data->train.limit(trainLimit);
  data->test.limit(testLimit);
  ir::Shape sample;
  if (!inputFlag.empty() || spec.input) {
    auto s = sampleShape(spec, inputFlag);
    if (!s)
      return s.diag();
    sample = *s;
  } else {
    auto s = driver::imageSampleShape(spec, images.rows, images.cols);
    if (!s)
      return s.diag();
    sample = *s;
  }
  auto format = runtime::sampleFormat(images.rows, images.cols, sample);
  if (!format)
    return format.diag();
  return PreparedData{std::move(*data), *format};
}

/// Fails early, before a long build, when a file cannot be created in its
/// folder or is what graphc never replaces (a directory, a block device).
Status checkWritable(const std::string &path, const char *flag) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty())
    dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return error(fmt::format("{} {}: the directory {} does not exist", flag, path, dir.string()));
  if (::access(dir.c_str(), W_OK) != 0)
    return error(fmt::format("{} {}: the directory {} is not writable", flag, path, dir.string()));
  if (Status s = runtime::checkWritable(path); !s) {
    Diag d = s.diag();
    d.message = fmt::format("{}: {}", flag, d.message);
    return d;
  }
  return {};
}

/// The step counter a checkpoint records: its `graphc.step`, 0 for a plain
/// state_dict; nothing when the file is not a readable checkpoint.
std::optional<int64_t> savedStep(const std::string &path) {
  auto f = runtime::readSafetensors(path);
  if (!f)
    return std::nullopt;
  auto it = f->metadata.find("graphc.step");
  if (it == f->metadata.end())
    return 0;
  int64_t step = 0;
  auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), step);
  if (ec != std::errc() || p != it->second.data() + it->second.size())
    return std::nullopt;
  return step;
}

/// Refuses a run that would overwrite, with `--save`, a checkpoint further
/// along than the run starts (a fresh run starts at step 0, a resumed one
/// at its checkpoint's step), unless `--force`.
Status checkOverwrite(const TrainCliOptions &o) {
  if (o.save.empty() || o.force)
    return {};
  std::error_code ec;
  if (runtime::isT7Path(o.save) && std::filesystem::exists(o.save, ec)) {
    Diag d = error("--save: a .t7 file is here already; graphc replaces it only with --force");
    d.file = o.save;
    return d;
  }
  std::optional<int64_t> saved = savedStep(o.save);
  if (!saved || *saved == 0)
    return {};
  int64_t start = 0;
  if (!o.resume.empty()) {
    std::optional<int64_t> resumed = savedStep(o.resume);
    if (!resumed)
      return {}; // loading it reports what is wrong
    start = *resumed;
  }
  if (*saved <= start)
    return {};
  Diag d = error(fmt::format(
      "--save: this file holds a checkpoint at step {}, further along than this run, which "
      "starts at step {}{}; its first epoch would overwrite it. Pass --resume {} to continue "
      "it, another --save path, or --force to overwrite it",
      *saved, start, o.resume.empty() ? "" : " (from --resume " + o.resume + ")", o.save));
  d.file = o.save;
  return d;
}

std::string describeData(const runtime::Dataset &d) {
  const runtime::ImageSet &images = d.train.count ? d.train : d.test;
  if (!d.train.count)
    return fmt::format("{}: {} test images of {}x{}, {} classes", d.name, d.test.count, images.rows,
                       images.cols, d.classes());
  return fmt::format("{}: {} training and {} test images of {}x{}, {} classes", d.name,
                     d.train.count, d.test.count, images.rows, images.cols, d.classes());
}

std::string describeModel(const runtime::Executable &exe) {
  const runtime::ModelInfo &info = exe.info();
  // Parameters as PyTorch counts them; BatchNorm's running statistics apart.
  const int64_t trainable = ir::trainableNumel(info.params);
  std::string buffers = trainable == info.numParams ? ""
                                                    : fmt::format(" (and {} running statistics)",
                                                                  info.numParams - trainable);
  return fmt::format("model {}: input {}, {} parameters{}, {} classes, {}, target {}", info.name,
                     ir::str(info.sample), trainable, buffers, info.classes, info.optimizer.str(),
                     exe.describe());
}

Expected<std::unique_ptr<runtime::Executable>>
buildExecutable(const nn::ModelSpec &spec, const runtime::SampleFormat &format,
                const std::string &target, int threads, int64_t batch, uint64_t seed, bool tf32,
                const std::string &maxMemory, bool noCache,
                const runtime::Communicator *comm = nullptr) {
  driver::BuildOptions bo;
  bo.split = comm != nullptr; // data parallelism runs the step in two halves
  bo.rank = comm ? comm->rank() : 0;
  if (!noCache)
    bo.cacheDir = driver::defaultCacheDir();
  if (!maxMemory.empty()) {
    auto limit = parseBytes(maxMemory);
    if (!limit)
      return limit.diag();
    bo.maxMemory = *limit;
  }
  bo.target = target;
  bo.tf32 = tf32;
  bo.threads = threads;
  bo.maxBatch = batch;
  bo.seed = seed;
  if (spec.criterion && spec.optimizer)
    return driver::build(spec, format.sample, bo);
  // Evaluation: the model's evaluation pass alone, nothing invented.
  passes::PipelineOptions po;
  po.planBatch = batch;
  auto c = driver::compileForEvaluation(spec, format.sample, po);
  if (!c)
    return c.diag();
  return driver::buildCompiled(std::move(c->model), bo);
}

int trainWith(TrainCliOptions o, runtime::Communicator *comm) {
  if (comm && comm->rank() != 0) {
    // Rank 0 alone reports, saves and logs metrics; errors still print.
    if (!std::freopen("/dev/null", "w", stdout))
      return report(error("--distributed: cannot silence the standard output of process " +
                          std::to_string(comm->rank())));
    o.progress = "none";
  }
  auto spec = loadTrainingSpec(o.model, o.training);
  if (!spec)
    return report(spec.diag());
  for (auto [path, flag] : {std::pair{&o.save, "--save"}, std::pair{&o.metrics, "--metrics"}})
    if (!path->empty())
      if (Status s = checkWritable(*path, flag); !s)
        return report(s.diag());
  if (Status s = checkOverwrite(o); !s)
    return report(s.diag());
  if (o.data.empty() && !o.testData.empty())
    return report(error(fmt::format("--test-data {} alone: graphc train needs a training set too "
                                    "(--data FILE.t7)",
                                    o.testData)));
  auto prepared = prepareData(*spec, o.data, o.testData, o.input, o.trainLimit, o.testLimit);
  if (!prepared)
    return report(prepared.diag());
  runtime::Dataset &data = prepared->data;
  runtime::SampleFormat &format = prepared->format;

  runtime::TrainOptions to;
  // The network itself, so that graphc export can write the checkpoint as
  // a Torch7 file without the model file.
  to.saveMetadata["graphc.network"] =
      "require 'nn'\nmodel = " + driver::networkLua(spec->model) + "\n";
  if (runtime::isT7Path(o.save)) {
    // --save net.t7: the network as torch.save writes it, after every epoch.
    to.saveAs = [&model = spec->model](const std::string &path, runtime::Executable &exe,
                                       int64_t) -> Status {
      const float *p = exe.params();
      auto bytes = driver::exportT7(model, std::vector<float>(p, p + exe.info().numParams));
      if (!bytes)
        return bytes.diag();
      return runtime::writeFileAtomic(path, bytes->data(), bytes->size());
    };
  }
  if (o.std > 0)
    setMeanStd(format, o.mean, o.std);
  else if (o.normalize) {
    format.normalize = true;
    runtime::pixelStats(data.train, &format.mean, &format.std);
  }
  if (format.normalize) {
    to.saveMetadata["graphc.normalize_mean"] = fmt::format("{:.17g}", format.mean);
    to.saveMetadata["graphc.normalize_std"] = fmt::format("{:.17g}", format.std);
  }
  auto exe = buildExecutable(*spec, format, o.target, o.threads, o.batch, o.seed, o.tf32,
                             o.maxMemory, o.noCache, comm);
  if (!exe)
    return report(exe.diag());
  if (comm) {
    exe = runtime::makeDistributed(std::move(*exe), *comm);
    if (!exe)
      return report(exe.diag());
    if (comm->size() > 1 && comm->rank() == 0 &&
        ir::trainableNumel((*exe)->info().params) < (*exe)->info().numParams)
      note(fmt::format("BatchNorm normalises each process's share of a batch with that share's "
                       "statistics, so {} processes do not follow the single-process run "
                       "exactly (as with PyTorch's DistributedDataParallel without "
                       "SyncBatchNorm); the running statistics are averaged",
                       comm->size()));
    to.afterEpoch = [comm](runtime::Executable &e, int64_t epoch) {
      std::string times = runtime::takeStepTimes(e);
      if (comm->rank() == 0 && !times.empty())
        std::printf("epoch %lld: %s\n", (long long)epoch, times.c_str());
      return runtime::checkSameModel(e, *comm, epoch);
    };
  }

  int64_t startEpoch = 0;
  uint64_t seed = o.seed;
  std::string resumed;
  if (!o.resume.empty()) {
    auto ck = runtime::loadCheckpoint(o.resume, **exe, /*optimizerState=*/true, o.allowNonfinite);
    if (!ck)
      return report(ck.diag());
    warn(o.resume, ck->warnings);
    startEpoch = ck->epoch;
    if (ck->hasSeed && o.seedOption->count() == 0)
      seed = ck->seed;
    else if (ck->hasSeed && ck->seed != seed)
      note(fmt::format("--seed {} differs from the checkpoint's seed {}: the shuffles and "
                       "Dropout masks will not continue the saved run",
                       seed, ck->seed));
    if (ck->metadata.count("graphc.normalize_mean") && !format.normalize)
      note("the checkpoint was trained with normalised inputs; this run feeds raw 0-255 values");
    resumed =
        fmt::format("resuming from {} after epoch {} (step {}{})", o.resume, ck->epoch, ck->step,
                    ck->hasOptimizerState ? ""
                                          : ", no optimizer state: starting "
                                            "from zero");
  }
  (*exe)->setSeed(seed);
  to.epochs = o.epochs;
  to.batch = o.batch;
  to.seed = seed;
  const bool reports = !comm || comm->rank() == 0;
  to.save = reports ? o.save : "";
  to.metrics = reports ? o.metrics : "";
  to.progress = o.progress == "bar"     ? runtime::Progress::Bar
                : o.progress == "lines" ? runtime::Progress::Lines
                : o.progress == "none"  ? runtime::Progress::None
                                        : runtime::Progress::Auto;

  std::printf("%s\n", describeModel(**exe).c_str());
  std::printf("data %s%s\n", describeData(data).c_str(), describeInputs(format).c_str());
  if (!format.note().empty())
    std::printf("%s\n", format.note().c_str());
  if (!resumed.empty())
    std::printf("%s\n", resumed.c_str());
  if (startEpoch >= o.epochs) {
    std::printf("nothing to train: the checkpoint has %lld epochs done and --epochs is "
                "%lld\n",
                (long long)startEpoch, (long long)o.epochs);
    return 0;
  }
  std::fflush(stdout);
  const std::string target = (*exe)->describe();
  auto stats = runtime::train(**exe, data, format, to, startEpoch);
  if (!stats)
    return report(stats.diag());
  // What runs the step may change while it trains (the cuda target drops
  // cuDNN's fused plans when one fails to run): then the model line above
  // no longer holds.
  if (reports && (*exe)->describe() != target)
    std::printf("the target changed while training: %s\n", (*exe)->describe().c_str());
  return 0;
}

int runTrain(const TrainCliOptions &o) {
  if (!o.distributed)
    return trainWith(o, nullptr);
  auto comm = runtime::Communicator::init();
  if (!comm)
    return report(comm.diag());
  int rc = trainWith(o, comm->get());
  if (rc != 0 && (*comm)->size() > 1) {
    // The other processes would wait in the next allreduce forever.
    std::fflush(stdout);
    std::fflush(stderr);
    (*comm)->abort(rc);
  }
  return rc;
}

/// A model file's spec for evaluation: only the model is compiled (its
/// evaluation pass), so the file needs no criterion or optimizer.
Expected<nn::ModelSpec> loadEvalSpec(const std::string &path) {
  auto spec = loadModelFile(path);
  if (!spec)
    return spec;
  spec->criterion.reset();
  spec->optimizer.reset();
  return spec;
}

Status writeFloats(const std::string &path, const std::vector<float> &v) {
  return runtime::writeFileAtomic(path, v.data(), v.size() * sizeof(float));
}

int runEval(const EvalCliOptions &o) {
  // A trained Torch7 network (.t7) carries its weights; a model file takes
  // them from --weights.
  std::optional<driver::ImportedModel> imported;
  Expected<nn::ModelSpec> spec = error("no model");
  if (runtime::isT7Path(o.model)) {
    auto im = driver::importT7(o.model);
    if (!im)
      return report(im.diag());
    if (!o.weights.empty())
      return report(
          error(fmt::format("--weights {}: {} carries its own weights", o.weights, o.model)));
    imported = std::move(*im);
    spec = imported->spec;
    spec->criterion.reset();
    spec->optimizer.reset();
  } else {
    if (o.weights.empty())
      return report(error("--weights FILE is required: the checkpoint to evaluate (a .t7 "
                          "model brings its own)"));
    spec = loadEvalSpec(o.model);
  }
  if (!spec)
    return report(spec.diag());
  for (auto [path, flag] :
       {std::pair{&o.dumpInputs, "--dump-inputs"}, std::pair{&o.dumpOutputs, "--dump-outputs"}})
    if (!path->empty())
      if (Status s = checkWritable(*path, flag); !s)
        return report(s.diag());
  auto prepared = prepareData(*spec, o.data, o.testData, o.input, 0, o.testLimit);
  if (!prepared)
    return report(prepared.diag());
  runtime::Dataset &data = prepared->data;
  runtime::SampleFormat &format = prepared->format;
  auto exe = buildExecutable(*spec, format, o.target, o.threads, o.batch, 1, o.tf32, o.maxMemory,
                             o.noCache);
  if (!exe)
    return report(exe.diag());
  runtime::CheckpointInfo loaded;
  std::string weightsLine;
  if (imported) {
    GRAPHC_CHECK(int64_t(imported->params.size()) == (*exe)->info().numParams,
                 "{} imported parameters for {}", imported->params.size(),
                 (*exe)->info().numParams);
    std::copy(imported->params.begin(), imported->params.end(), (*exe)->params());
    weightsLine = fmt::format("weights {} (Torch7)", o.model);
  } else {
    auto ck = runtime::loadCheckpoint(o.weights, **exe, /*optimizerState=*/false, o.allowNonfinite);
    if (!ck)
      return report(ck.diag());
    warn(o.weights, ck->warnings);
    loaded = std::move(*ck);
    weightsLine =
        fmt::format("weights {} (epoch {}, step {})", o.weights, loaded.epoch, loaded.step);
  }
  const runtime::CheckpointInfo *ck = &loaded;

  auto meanIt = ck->metadata.find("graphc.normalize_mean");
  auto stdIt = ck->metadata.find("graphc.normalize_std");
  if (o.std > 0) {
    setMeanStd(format, o.mean, o.std);
  } else if (meanIt != ck->metadata.end() && stdIt != ck->metadata.end()) {
    char *end1 = nullptr, *end2 = nullptr;
    format.mean = std::strtod(meanIt->second.c_str(), &end1);
    format.std = std::strtod(stdIt->second.c_str(), &end2);
    if (*end1 || *end2 || !(format.std > 0)) {
      Diag d = error("metadata graphc.normalize_mean/std are not numbers");
      d.file = o.weights;
      return report(d);
    }
    format.normalize = true;
  } else if (o.normalize) {
    if (data.train.count == 0)
      return report(error("--normalize: the checkpoint has no normalisation statistics and no "
                          "training set is given to compute them from (--data)"));
    format.normalize = true;
    runtime::pixelStats(data.train, &format.mean, &format.std);
  }

  std::printf("%s\n", describeModel(**exe).c_str());
  std::printf("%s\n", weightsLine.c_str());
  std::printf("data %s%s\n", describeData(data).c_str(), describeInputs(format).c_str());
  if (!format.note().empty())
    std::printf("%s\n", format.note().c_str());

  std::vector<std::string> names = data.classNames;
  for (int64_t c = int64_t(names.size()); c < (*exe)->info().classes; ++c)
    names.push_back(std::to_string(c));
  runtime::ConfusionMatrix confusion(names);
  std::vector<float> inputs, outputs;
  bool dump = !o.dumpInputs.empty() || !o.dumpOutputs.empty();
  int64_t classes = (*exe)->info().classes;
  auto onBatch = [&](const float *x, const float *out, int64_t n) {
    if (!o.dumpInputs.empty())
      inputs.insert(inputs.end(), x, x + n * format.numel());
    if (!o.dumpOutputs.empty())
      outputs.insert(outputs.end(), out, out + n * classes);
  };
  if (Status s = runtime::evaluate(**exe, data.test, format, o.batch, confusion,
                                   dump ? std::function(onBatch) : nullptr);
      !s)
    return report(s.diag());
  if (!o.dumpInputs.empty())
    if (Status s = writeFloats(o.dumpInputs, inputs); !s)
      return report(s.diag());
  if (!o.dumpOutputs.empty())
    if (Status s = writeFloats(o.dumpOutputs, outputs); !s)
      return report(s.diag());
  int64_t correct = 0;
  for (int64_t c = 0; c < confusion.classes(); ++c)
    correct += confusion.count(c, c);
  std::printf("test accuracy: %s (%lld of %lld)\n%s\n",
              fmt::format("{:.2f}%", 100 * confusion.globalCorrect()).c_str(), (long long)correct,
              (long long)confusion.total(), confusion.str().c_str());
  return 0;
}

const char *kDataHelp =
    "the data set: a directory of MNIST-format idx files "
    "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte, each optionally .gz), a Torch7 data file such as "
    "mnist.t7/train_32x32.t7 (torch.save of {data = N x 1 x H x W pixels, labels = N "
    "classes from 1}; its test set is the file beside it with `test` for `train`, or "
    "--test-data), or `synthetic` (a small generated set for tests); default: "
    "Fashion-MNIST from Debian's dataset-fashion-mnist package in "
    "/usr/share/datasets/fashion-mnist";
/// --mean and --std, together, instead of --normalize.
void addMeanStd(CLI::App *c, double &mean, double &std, CLI::Option *normalize) {
  auto *m = c->add_option("--mean", mean,
                          "with --std: feed (x - MEAN) / STD on the raw 0-255 pixel scale, as "
                          "Torch7 scripts normalise (saved in the checkpoint for eval)");
  auto *s = c->add_option("--std", std, "the STD of --mean")
                ->check(CLI::Validator(
                    [](std::string &text) {
                      double v = 0;
                      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
                      bool ok = ec == std::errc() && p == text.data() + text.size() && v > 0 &&
                                std::isfinite(v);
                      return ok ? std::string() : "must be a positive number, got " + text;
                    },
                    "STD > 0"));
  m->needs(s);
  s->needs(m);
  m->excludes(normalize);
  s->excludes(normalize);
}

const char *kTestDataHelp = "the test set as a Torch7 data file (default with --data "
                            "DIR/train_32x32.t7: DIR/test_32x32.t7)";
const char *kInputHelp = "per-sample input shape, e.g. 1x32x32 (default: the model file's "
                         "`input = {...}`, else the data's 1xHxW, or 1x32x32 with 28x28 images "
                         "padded by 2 when the model wants 1024 inputs)";
const std::string kNoCacheHelp =
    "cpu: compile the code anew and leave the compile cache alone (compiled code is kept in "
    "$GRAPHC_CACHE_DIR, else $XDG_CACHE_HOME/graphc or ~/.cache/graphc, keyed by the fused "
    "program, the CPU and this graphc; the model line says whether it was used)";
const std::string kTargetHelp = "where the step runs: " + driver::describeTargets();
const char *kAllowNonfiniteHelp = "load a checkpoint that holds NaN or infinite values, with a "
                                  "warning naming each tensor (without it: an error)";
const char *kTf32Help = "cuda: let cuBLASLt multiply in TF32 (faster, not bit-compatible "
                        "with fp32); the default is fp32, deterministic run to run";

CLI::App *addTrainCommand(CLI::App &app, TrainCliOptions &o) {
  auto *c =
      app.add_subcommand("train", "Train a model: per-epoch loss, accuracy and confusion matrix, "
                                  "checkpoints, metrics");
  c->add_option("model", o.model,
                "the model file, a Torch7 Lua script (.model or .lua): model, criterion, optimizer")
      ->required();
  addTrainingFlags(c, o.training);
  c->add_option("--data", o.data, kDataHelp);
  c->add_option("--test-data", o.testData, kTestDataHelp);
  c->add_option("--epochs", o.epochs,
                "train until this many epochs are done (a resumed run continues up "
                "to it)")
      ->default_val(5)
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  c->add_option("--batch", o.batch,
                "samples per step; the short last batch of an epoch is trained too")
      ->default_val(256)
      ->check(CLI::Range(int64_t(1), int64_t(1) << 16));
  o.seedOption = c->add_option("--seed", o.seed,
                               "seeds the initial parameters, each epoch's shuffle and "
                               "Dropout (default 1; a resumed run takes the "
                               "checkpoint's)")
                     ->check(seedValidator())
                     ->default_val(1);
  c->add_option("--threads", o.threads, "CPU threads for the cpu target; 0: all cores")
      ->default_val(0)
      ->check(CLI::Range(0, 1024));
  c->add_option("--target", o.target, kTargetHelp)
      ->default_val(driver::defaultTarget())
      ->check(CLI::IsMember(driver::targetNames()));
  c->add_flag("--tf32", o.tf32, kTf32Help);
  c->add_flag("--no-cache", o.noCache, kNoCacheHelp);
  addVerifyPlanFlag(*c);
  addMaxMemoryOption(*c, o.maxMemory);
  c->add_option("--save", o.save,
                "write a safetensors checkpoint here after every epoch (atomically; "
                "tensor names match PyTorch's nn.Sequential state_dict). A symbolic link "
                "is followed and stays; /dev/null, /dev/stdout or a FIFO is written "
                "through; a directory or a block device is refused. An existing "
                "checkpoint further along than this run starts (a larger step counter) "
                "is not overwritten without --force. A name ending in .t7 writes the "
                "network as Torch7's torch.save would instead (weights only; an existing "
                ".t7 file is replaced only with --force)");
  c->add_option("--resume", o.resume,
                "continue from a checkpoint: parameters, optimizer state, step "
                "counter and epoch (a plain PyTorch state_dict starts a fresh "
                "optimizer)");
  c->add_flag("--allow-nonfinite", o.allowNonfinite, kAllowNonfiniteHelp);
  c->add_flag("--distributed", o.distributed,
              std::string("data-parallel training: run as `mpirun -np K graphc train MODEL "
                          "--distributed`; each process trains on its share of every global "
                          "batch of --batch samples, one allreduce per step averages the "
                          "gradients (--target cuda: by NCCL on the GPU where libnccl.so.2 is "
                          "found, else through the host), process 0 reports and saves") +
                  (runtime::Communicator::available()
                       ? ""
                       : " (this graphc was built without MPI: one process only)"));
  c->add_flag("--force", o.force,
              "let --save overwrite a checkpoint that is further along than this run "
              "starts (without --resume, any saved step above 0)");
  c->add_option("--metrics", o.metrics,
                "append one JSON line per epoch: epoch, train_loss, train_acc, "
                "test_acc (fractions), samples_per_s, epoch_s, step");
  auto *normalize = c->add_flag("--normalize", o.normalize,
                                "feed (x/255 - mean)/std with the training set's mean and std "
                                "instead of raw 0-255 pixel values");
  addMeanStd(c, o.mean, o.std, normalize);
  c->add_option("--input", o.input, kInputHelp);
  c->add_option("--train-limit", o.trainLimit, "use only the first N training samples (0: all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  c->add_option("--test-limit", o.testLimit, "use only the first N test samples (0: all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  c->add_option("--progress", o.progress,
                "progress display: auto (a bar on a terminal, else a line every 10% of "
                "an epoch), bar, lines or none")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  return c;
}

CLI::App *addEvalCommand(CLI::App &app, EvalCliOptions &o) {
  auto *c = app.add_subcommand(
      "eval", "Evaluate saved weights, or a trained Torch7 network (.t7), on the test set: "
              "accuracy and confusion matrix");
  c->add_option("model", o.model,
                "the model file, a Torch7 Lua script (.model or .lua), with --weights; or a "
                "trained network saved by Torch7's torch.save (.t7), weights included")
      ->required();
  c->add_option("--weights", o.weights,
                "a safetensors checkpoint from `graphc train --save`, or a PyTorch "
                "state_dict saved with safetensors (not with a .t7 model, which brings its "
                "own)");
  c->add_option("--data", o.data, kDataHelp);
  c->add_option("--test-data", o.testData,
                "the test set as a Torch7 data file; given alone, graphc eval reads "
                "nothing else");
  c->add_option("--batch", o.batch, "samples per prediction batch")
      ->default_val(256)
      ->check(CLI::Range(int64_t(1), int64_t(1) << 16));
  c->add_option("--threads", o.threads, "CPU threads for the cpu target; 0: all cores")
      ->default_val(0)
      ->check(CLI::Range(0, 1024));
  c->add_option("--target", o.target, kTargetHelp)
      ->default_val(driver::defaultTarget())
      ->check(CLI::IsMember(driver::targetNames()));
  c->add_flag("--tf32", o.tf32, kTf32Help);
  c->add_flag("--no-cache", o.noCache, kNoCacheHelp);
  auto *normalize =
      c->add_flag("--normalize", o.normalize,
                  "normalise inputs with the training set's mean and std (automatic when "
                  "the checkpoint was trained with --normalize, --mean or --std)");
  addMeanStd(c, o.mean, o.std, normalize);
  c->add_option("--input", o.input, kInputHelp);
  c->add_option("--test-limit", o.testLimit, "use only the first N test samples (0: all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  c->add_flag("--allow-nonfinite", o.allowNonfinite, kAllowNonfiniteHelp);
  addMaxMemoryOption(*c, o.maxMemory);
  c->add_option("--dump-inputs", o.dumpInputs,
                "write the test inputs as the model saw them: raw little-endian "
                "float32, samples x input size");
  c->add_option("--dump-outputs", o.dumpOutputs,
                "write the model's outputs: raw little-endian float32, samples x "
                "classes");
  return c;
}

} // namespace

Command trainCommand(CLI::App &app) {
  auto o = std::make_shared<TrainCliOptions>();
  CLI::App *c = addTrainCommand(app, *o);
  return {c, [o] { return runTrain(*o); }};
}

Command evalCommand(CLI::App &app) {
  auto o = std::make_shared<EvalCliOptions>();
  CLI::App *c = addEvalCommand(app, *o);
  return {c, [o] { return runEval(*o); }};
}

} // namespace graphc::cli
