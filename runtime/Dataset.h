// runtime/Dataset.h - image-classification data sets: MNIST idx files, Torch7
// data files (.t7) and a synthetic set, and how their images become the model's input samples.
//
// Images stay as u8 pixels in memory (60000 Fashion-MNIST images are 47 MB);
// a batch is assembled on demand as float32 samples in the model's layout,
// padded (28x28 images for a model that wants 32x32) and, optionally,
// normalised. The default run feeds raw 0-255 values like the seed recipe
// (DESIGN.md, "Data and the default run"). Every reader error names the file
// and never crashes; a reader never allocates more than the file's data.
#pragma once

#include "ir/Error.h"
#include "ir/Type.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace graphc::runtime {

/// Debian's `dataset-fashion-mnist` package: the default `--data` directory.
inline constexpr const char *kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// One split of a data set: `count` images of rows x cols u8 pixels.
struct ImageSet {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels; ///< count x rows x cols, row-major
  std::vector<int32_t> labels; ///< count class indices, 0-based
  std::string source;          ///< the images file, for messages

  int64_t imageSize() const { return rows * cols; }
  const uint8_t *image(int64_t i) const { return pixels.data() + i * imageSize(); }
  /// Keeps only the first `n` samples (no-op when n <= 0 or n >= count).
  void limit(int64_t n);
};

/// A training and a test split with the names of their classes.
struct Dataset {
  std::string name; ///< "fashion-mnist", "synthetic" or the directory
  ImageSet train, test;
  std::vector<std::string> classNames; ///< one per class; its size is the class count

  int64_t classes() const { return int64_t(classNames.size()); }
};

/// Reads an idx3 images file and an idx1 labels file (gzip or plain), and
/// checks that they agree and that every label is below `classes`. Gzip data
/// must match its trailer (CRC-32 and length) and nothing may follow it.
Expected<ImageSet> readIdx(const std::string &imagesPath, const std::string &labelsPath,
                           int64_t classes = 10);

/// readIdx on the two files' bytes in memory, by the same code; messages
/// name them `imagesName` and `labelsName`. The fuzz target's entry point.
Expected<ImageSet> readIdxBytes(std::span<const uint8_t> images, std::span<const uint8_t> labels,
                                int64_t classes = 10, const std::string &imagesName = "images",
                                const std::string &labelsName = "labels");

/// Reads `train-images-idx3-ubyte(.gz)`, `train-labels-idx1-ubyte(.gz)`,
/// `t10k-images-idx3-ubyte(.gz)` and `t10k-labels-idx1-ubyte(.gz)` from `dir`.
/// Class names are Fashion-MNIST's when the directory is a fashion-mnist one,
/// else the digits "0".."9".
Expected<Dataset> loadMnistDir(const std::string &dir);

struct SyntheticOptions {
  uint64_t seed = 1;
  int64_t train = 2000, test = 500;
  int64_t classes = 10;
  int64_t rows = 28, cols = 28;
  double noise = 48; ///< standard deviation of the per-pixel noise, in 0-255 units
};

/// A deterministic data set: each class is a fixed random prototype image,
/// each sample its prototype plus clamped Gaussian noise. Learnable to high
/// accuracy in an epoch or two; serves tests and CI.
Dataset syntheticDataset(const SyntheticOptions &options = {});

/// Torch7 data files, as the seed tutorial's mnist.t7 holds them: each is
/// torch.save of {data = N x 1 x H x W (or N x H x W) pixels, labels = N
/// classes from 1}, binary or ascii. Pixels are a ByteTensor or whole
/// numbers 0..255 of any type. The test set is `testPath`, or else the file
/// beside `trainPath` with "train" in its name replaced by "test"
/// (train_32x32.t7 -> test_32x32.t7). An empty `trainPath` reads the test
/// set alone (graphc eval). Classes are named "1".."K" as Torch7 numbers
/// them, K the largest label; labels here are 0-based.
Expected<Dataset> loadT7Dataset(const std::string &trainPath, const std::string &testPath = "");

/// `--data`: "synthetic", a directory of idx files, a Torch7 data file
/// (FILE.t7), or "" for Fashion-MNIST; `--test-data` names a Torch7 test
/// file (with an empty `spec`: the test set alone).
Expected<Dataset> loadDataset(const std::string &spec, const std::string &testSpec = "");

/// How a data set's images become the model's per-sample input.
struct SampleFormat {
  ir::Shape sample;           ///< the model's per-sample shape
  int64_t rows = 0, cols = 0; ///< the images' size
  int64_t pad = 0;            ///< black (0) pixels added on each side
  bool normalize = false;     ///< (x/255 - mean) / std instead of raw 0-255
  double mean = 0, std = 1;   ///< of x/255 over the training images

  /// Floats per sample.
  int64_t numel() const;
  /// The pixel value 0..255 as the model sees it.
  float value(uint8_t pixel) const;
  /// "padding 28x28 images to 32x32 for the model's 1024 inputs", or "".
  std::string note() const;
};

/// Matches image size to the model's sample shape: as is when the element
/// counts agree, padded by 2 when 28x28 images meet a [1,32,32], [32,32] or
/// [1024] model, otherwise an error naming both shapes.
Expected<SampleFormat> sampleFormat(int64_t rows, int64_t cols, const ir::Shape &sample);

/// Mean and standard deviation of x/255 over every pixel of `set`.
void pixelStats(const ImageSet &set, double *mean, double *std);

/// Writes samples `indices[0..n)` of `set` as floats in `format` into `x`
/// (n x format.numel()) and their labels into `labels` (may be null).
void fillBatch(const ImageSet &set, const SampleFormat &format, const int64_t *indices, int64_t n,
               float *x, int32_t *labels);

} // namespace graphc::runtime
