// runtime/Trainer.h - the minibatch training loop over an Executable, the
// Torch7 tutorial's loop: shuffle, train in batches, evaluate, print a
// confusion matrix, checkpoint.
//
// Every epoch's order is a Fisher-Yates shuffle drawn from (seed, epoch)
// alone, and Dropout's masks come from the executable's step counter, so a run
// resumed from a checkpoint continues bit for bit as if never interrupted.
// The short last batch (60000 = 234*256 + 96) is trained, not dropped.
#pragma once

#include "runtime/Dataset.h"
#include "runtime/Executable.h"

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace graphc::runtime {

/// The order of epoch `epoch`'s samples: a permutation of [0, n) that
/// depends on (seed, epoch) only. std::mt19937_64 and an explicit
/// Fisher-Yates, so the order is the same with every standard library.
std::vector<int64_t> epochOrder(int64_t n, uint64_t seed, int64_t epoch);

/// Index of the largest of `n` values (the first one on ties).
int64_t argmax(const float *row, int64_t n);
/// The class a row of outputs predicts: its argmax, or -1 when the row
/// holds a NaN (no prediction; never class 0 by accident).
int64_t prediction(const float *row, int64_t n);

/// Torch7's optim.ConfusionMatrix: rows are targets, columns predictions.
class ConfusionMatrix {
public:
  explicit ConfusionMatrix(std::vector<std::string> classNames);

  /// A prediction of -1 (NaN outputs) counts as wrong, in no column.
  void add(int64_t target, int64_t prediction);
  int64_t count(int64_t target, int64_t prediction) const;
  /// Samples of class `target` without a prediction (NaN outputs).
  int64_t unpredicted(int64_t target) const { return unpredicted_[size_t(target)]; }
  int64_t unpredicted() const;
  /// Every sample added, predicted or not.
  int64_t total() const;
  int64_t classes() const { return int64_t(names_.size()); }

  /// Fraction of row `t` on the diagonal (NaN for an empty row).
  double rowCorrect(int64_t t) const;
  /// Diagonal over row + column - diagonal: the VOC measure (NaN if empty).
  double unionCorrect(int64_t t) const;
  /// Mean of the non-NaN row fractions.
  double averageRowCorrect() const;
  /// Mean of the union fractions of the classes with a non-NaN row fraction.
  double averageUnionCorrect() const;
  /// Diagonal over everything.
  double globalCorrect() const;

  /// The printout of optim.ConfusionMatrix's __tostring__, plus a line
  /// counting the samples without a prediction when there are any.
  std::string str() const;

private:
  int64_t rowTotal(int64_t target) const;

  std::vector<std::string> names_;
  std::vector<int64_t> mat_;
  std::vector<int64_t> unpredicted_; ///< per target class
};

/// What an epoch measured.
struct EpochStats {
  int64_t epoch = 0;        ///< 1-based
  int64_t samples = 0;      ///< training samples seen
  int64_t batches = 0;      ///< training steps taken
  double trainLoss = 0;     ///< mean over samples of the batch-mean losses
  double trainAccuracy = 0; ///< from trainStep's outputs, before each update
  double testAccuracy = 0;
  double samplesPerSecond = 0; ///< training samples / training time
  double epochSeconds = 0;     ///< training time
  double testSeconds = 0;      ///< evaluation time
  int64_t step = 0;            ///< the executable's step counter after the epoch
};

enum class Progress { Auto, Bar, Lines, None };

struct TrainOptions {
  int64_t epochs = 5; ///< train until this many epochs are done
  int64_t batch = 256;
  uint64_t seed = 1;   ///< the shuffles' seed (the executable has its own copy)
  std::string save;    ///< checkpoint after each epoch, when not empty
  std::string metrics; ///< append one JSON line per epoch, when not empty
  std::map<std::string, std::string> saveMetadata; ///< extra checkpoint metadata
  /// How `save` is written after an epoch; empty: a safetensors checkpoint
  /// (saveCheckpoint with saveMetadata).
  std::function<Status(const std::string &path, Executable &exe, int64_t epoch)> saveAs;
  Progress progress = Progress::Auto;              ///< Auto: a bar on a terminal, else lines
  bool confusion = true;                           ///< print the test confusion matrix
  /// Keep the training set on the executable's device and send only each
  /// batch's indices (train() turns it on when the executable can).
  bool dataOnDevice = false;
  /// Called after each epoch's training, before its evaluation (the
  /// data-parallel run's checksum across processes); an error stops.
  std::function<Status(Executable &exe, int64_t epoch)> afterEpoch;
  std::FILE *out = stdout; ///< epoch reports
  std::FILE *log = stderr; ///< progress
};

/// Predicts `set` in batches; fills `confusion`. `onBatch`, when given, sees
/// each batch's inputs and outputs (n x sample floats, n x classes floats).
Status
evaluate(Executable &exe, const ImageSet &set, const SampleFormat &format, int64_t batch,
         ConfusionMatrix &confusion,
         const std::function<void(const float *x, const float *out, int64_t n)> &onBatch = {});

/// Trains one epoch (1-based) and returns its training measurements. A NaN
/// or infinite loss, or parameters left non-finite at the epoch's end, stop
/// it at once with an error naming the step, the batch and what was
/// non-finite: nothing after a diverged step is saved. Where the executable
/// can run a step one kernel group at a time, the epoch's start is kept in
/// memory and, after a failure, the epoch replayed from it to name the group
/// that made the first non-finite value (Executable::diagnoseStep).
Expected<EpochStats> trainEpoch(Executable &exe, const ImageSet &train, const SampleFormat &format,
                                const TrainOptions &options, int64_t epoch);

/// Trains epochs `startEpoch + 1` .. `options.epochs`, evaluating, reporting,
/// logging metrics and saving a checkpoint after each.
Expected<std::vector<EpochStats>> train(Executable &exe, const Dataset &data,
                                        const SampleFormat &format, const TrainOptions &options,
                                        int64_t startEpoch = 0);

} // namespace graphc::runtime
