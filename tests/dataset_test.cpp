// tests/dataset_test.cpp - the idx reader on files written here (gzip and
// raw, every corruption), padding, normalisation and the synthetic set.
#include "driver/Compile.h"
#include "runtime/Dataset.h"

#include "TestUtil.h"

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <unistd.h>

using namespace graphc;
using namespace graphc::runtime;
using namespace graphc::driver;
namespace fs = std::filesystem;

using test::TempDir;

namespace {

void put32(std::string &s, uint32_t v) {
  for (int i = 3; i >= 0; --i)
    s += char((v >> (8 * i)) & 0xff);
}

std::string idxImages(uint32_t n, uint32_t rows, uint32_t cols, const std::vector<uint8_t> &pixels,
                      uint32_t magic = 0x803) {
  std::string s;
  put32(s, magic);
  put32(s, n);
  put32(s, rows);
  put32(s, cols);
  s.append(pixels.begin(), pixels.end());
  return s;
}

std::string idxLabels(uint32_t n, const std::vector<uint8_t> &labels, uint32_t magic = 0x801) {
  std::string s;
  put32(s, magic);
  put32(s, n);
  s.append(labels.begin(), labels.end());
  return s;
}

void writeRaw(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

void writeGz(const std::string &path, const std::string &bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::string readRaw(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/// n images of rows x cols whose pixel (i, r, c) is (7i + 3r + c) % 256.
std::vector<uint8_t> pattern(int n, int rows, int cols) {
  std::vector<uint8_t> p;
  for (int i = 0; i < n; ++i)
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c)
        p.push_back(uint8_t((7 * i + 3 * r + c) % 256));
  return p;
}

/// A complete MNIST-format directory: 5 training and 3 test images of 4x3.
void writeDir(const TempDir &d, bool gz) {
  auto w = gz ? writeGz : writeRaw;
  std::string ext = gz ? ".gz" : "";
  w(d / ("train-images-idx3-ubyte" + ext), idxImages(5, 4, 3, pattern(5, 4, 3)));
  w(d / ("train-labels-idx1-ubyte" + ext), idxLabels(5, {0, 1, 2, 9, 4}));
  w(d / ("t10k-images-idx3-ubyte" + ext), idxImages(3, 4, 3, pattern(3, 4, 3)));
  w(d / ("t10k-labels-idx1-ubyte" + ext), idxLabels(3, {5, 6, 7}));
}

/// Reads images+labels written as given and returns the error message ("" if none).
std::string idxError(const std::string &images, const std::string &labels, bool gz = false) {
  TempDir d;
  std::string ip = d / (gz ? "i.gz" : "i"), lp = d / (gz ? "l.gz" : "l");
  (gz ? writeGz : writeRaw)(ip, images);
  (gz ? writeGz : writeRaw)(lp, labels);
  auto r = readIdx(ip, lp);
  if (r)
    return "";
  std::string msg = r.diag().str();
  // Every error names the offending file.
  CHECK((msg.find(ip) != std::string::npos || msg.find(lp) != std::string::npos));
  return msg;
}

bool contains(const std::string &s, const std::string &part) {
  INFO(s);
  return s.find(part) != std::string::npos;
}

nn::ModelSpec mlp(int64_t inputs) {
  nn::ModelSpec spec;
  spec.model.add(nn::View(inputs)).add(nn::Linear(inputs, 10)).add(nn::LogSoftMax());
  spec.criterion = nn::Criterion{};
  spec.optimizer = nn::Optimizer{};
  spec.file = "t.model";
  return spec;
}

} // namespace

TEST_CASE("idx files read the same raw and gzipped", "[dataset]") {
  for (bool gz : {false, true}) {
    TempDir d;
    writeDir(d, gz);
    auto data = loadMnistDir(d.path.string());
    REQUIRE(data);
    CHECK(data->train.count == 5);
    CHECK(data->train.rows == 4);
    CHECK(data->train.cols == 3);
    CHECK(data->train.pixels == pattern(5, 4, 3));
    CHECK(data->train.labels == std::vector<int32_t>{0, 1, 2, 9, 4});
    CHECK(data->test.count == 3);
    CHECK(data->test.labels == std::vector<int32_t>{5, 6, 7});
    CHECK(data->classNames ==
          std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  }
}

TEST_CASE("a fashion-mnist directory gets Fashion-MNIST's class names", "[dataset]") {
  TempDir base;
  fs::create_directory(base.path / "fashion-mnist");
  TempDir d;
  fs::remove_all(d.path);
  fs::create_directory_symlink(base.path / "fashion-mnist", d.path); // found through a link
  writeDir(d, true);
  auto data = loadMnistDir(d.path.string() + "/");
  REQUIRE(data);
  CHECK(data->name == "fashion-mnist");
  REQUIRE(data->classes() == 10);
  CHECK(data->classNames[0] == "T-shirt/top");
  CHECK(data->classNames[9] == "Ankle boot");
}

TEST_CASE("idx corruption is reported, naming the file", "[dataset]") {
  auto img = [](uint32_t n) { return idxImages(n, 4, 3, pattern(int(n), 4, 3)); };
  auto lab = [](uint32_t n) { return idxLabels(n, std::vector<uint8_t>(n, 1)); };
  for (bool gz : {false, true}) {
    INFO("gzip " << gz);
    CHECK(idxError(img(3), lab(3), gz) == "");
    CHECK(contains(idxError(idxImages(3, 4, 3, pattern(3, 4, 3), 0x804), lab(3), gz),
                   "magic number 0x00000804, expected 0x00000803"));
    CHECK(contains(idxError(lab(3), lab(3), gz), "a labels file where images were expected"));
    CHECK(contains(idxError(img(3), idxLabels(3, {1, 1, 1}, 0x803), gz), "not an idx labels file"));
    std::string cut = img(3);
    cut.resize(cut.size() - 5);
    CHECK(contains(idxError(cut, lab(3), gz), "truncated"));
    CHECK(contains(idxError(img(3).substr(0, 10), lab(3), gz), "truncated"));
    CHECK(contains(idxError("", lab(3), gz), "truncated"));
    std::string labCut = lab(3);
    labCut.pop_back();
    CHECK(contains(idxError(img(3), labCut, gz), "truncated"));
    CHECK(contains(idxError(img(3), lab(4), gz), "holds 4 labels but"));
    CHECK(contains(idxError(img(3), idxLabels(3, {1, 10, 2}), gz),
                   "label 10 of sample 1 is not a class index 0..9"));
    CHECK(contains(idxError(img(3) + "xx", lab(3), gz), "longer than its header says"));
    CHECK(contains(idxError(idxImages(3, 0, 3, {}), lab(3), gz), "implausible header"));
    CHECK(contains(idxError(idxImages(3, 70000, 3, {}), lab(3), gz), "implausible header"));
    CHECK(contains(idxError(idxImages(0x80000000u, 4, 3, {}), lab(3), gz), "implausible header"));
    // A header promising 2^31-1 images of 4096x4096 pixels: an error after
    // reading what the file has, not an attempt to allocate 2^55 bytes.
    CHECK(contains(idxError(idxImages(0x7fffffff, 4096, 4096, pattern(1, 4, 3)), lab(3), gz),
                   "truncated"));
  }
}

TEST_CASE("a gzip stream cut short is an error, not a short read", "[dataset]") {
  TempDir d;
  std::string img = idxImages(200, 28, 28, pattern(200, 28, 28));
  writeGz(d / "full.gz", img);
  std::string gz = readRaw(d / "full.gz");
  writeRaw(d / "cut.gz", gz.substr(0, gz.size() / 2));
  writeRaw(d / "l", idxLabels(200, std::vector<uint8_t>(200, 3)));
  auto r = readIdx(d / "cut.gz", d / "l");
  REQUIRE(!r);
  CHECK(contains(r.diag().str(), d / "cut.gz"));
  std::string bad = gz;
  for (size_t i = 20; i < 60 && i < bad.size(); ++i)
    bad[i] = char(bad[i] ^ 0x5a);
  writeRaw(d / "bad.gz", bad);
  auto r2 = readIdx(d / "bad.gz", d / "l");
  REQUIRE(!r2);
  CHECK(contains(r2.diag().str(), d / "bad.gz"));
}

TEST_CASE("a gzip file's trailer is checked: CRC-32, length, nothing after it", "[dataset]") {
  TempDir d;
  std::string images = idxImages(30, 28, 28, pattern(30, 28, 28));
  writeGz(d / "full.gz", images);
  std::string gz = readRaw(d / "full.gz");
  writeRaw(d / "l", idxLabels(30, std::vector<uint8_t>(30, 3)));
  auto load = [&](const std::string &bytes) {
    writeRaw(d / "i.gz", bytes);
    return readIdx(d / "i.gz", d / "l");
  };
  auto fails = [&](const std::string &bytes, const std::string &message) {
    auto r = load(bytes);
    REQUIRE(!r);
    INFO(r.diag().str() << " / wanted: " << message);
    CHECK(contains(r.diag().str(), d / "i.gz: error: " + message));
  };
  auto flipped = [&](size_t at) {
    std::string b = gz;
    b[at] = char(b[at] ^ 1);
    return b;
  };
  REQUIRE(load(gz));
  CHECK(load(gz)->pixels == pattern(30, 28, 28));
  size_t end = gz.size();
  fails(gz.substr(0, end - 8), "truncated: the file ends after");
  fails(gz.substr(0, end - 3), "truncated: the file ends after");
  fails(flipped(end - 8), "corrupt: the CRC-32 in the gzip trailer does not match");
  fails(flipped(end - 5), "corrupt: the CRC-32 in the gzip trailer does not match");
  fails(flipped(end - 4), "corrupt: the length in the gzip trailer (ISIZE) does not match");
  fails(gz + "garbage", "corrupt: bytes after the end of the gzip data");
  fails(gz + "\x1f", "corrupt: bytes after the end of the gzip data");
  fails(gz + std::string(64, '\0'), "corrupt: bytes after the end of the gzip data");
  // Another gzip member is more data (gzip's rule): empty, it changes nothing.
  writeGz(d / "empty.gz", "");
  REQUIRE(load(gz + readRaw(d / "empty.gz")));
  CHECK(load(gz + readRaw(d / "empty.gz"))->pixels == pattern(30, 28, 28));
  fails(gz + gz, "the file is longer than its header says");
  // Split across two members, the data is the same.
  writeGz(d / "a.gz", images.substr(0, 1000));
  writeGz(d / "b.gz", images.substr(1000));
  auto split = load(readRaw(d / "a.gz") + readRaw(d / "b.gz"));
  REQUIRE(split);
  CHECK(split->pixels == pattern(30, 28, 28));
}

TEST_CASE("every single-bit flip of a gzip file is an error or changes nothing", "[dataset]") {
  // Header fields outside the CRC (time, OS, flags zlib ignores) may flip
  // harmlessly; a flip anywhere else must be caught, never load wrong pixels.
  TempDir d;
  std::vector<uint8_t> pixels = pattern(12, 6, 5);
  writeGz(d / "full.gz", idxImages(12, 6, 5, pixels));
  std::string gz = readRaw(d / "full.gz");
  writeRaw(d / "l", idxLabels(12, std::vector<uint8_t>(12, 1)));
  int errors = 0, wrong = 0;
  for (size_t at = 0; at < gz.size(); ++at)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = gz;
      bad[at] = char(bad[at] ^ (1 << bit));
      writeRaw(d / "bad.gz", bad);
      auto r = readIdx(d / "bad.gz", d / "l");
      if (!r) {
        ++errors;
        CHECK(contains(r.diag().str(), d / "bad.gz: error: "));
      } else if (r->pixels != pixels || r->count != 12) {
        ++wrong;
        UNSCOPED_INFO("a flip of bit " << bit << " of byte " << at << " of " << gz.size()
                                       << " loaded different pixels");
      }
    }
  CHECK(wrong == 0);
  CHECK(errors > int(gz.size() - 20) * 8); // all but the 10-byte header's loose fields
}

TEST_CASE("readIdxBytes reads bytes in memory as readIdx reads the files", "[dataset]") {
  // The fuzz target's entry point: every bit flip of a gzip and a plain
  // images file, and cuts of the labels, give readIdx's result or message.
  TempDir d;
  std::vector<uint8_t> pixels = pattern(4, 3, 5);
  std::string plain = idxImages(4, 3, 5, pixels);
  writeGz(d / "full.gz", plain);
  std::string gz = readRaw(d / "full.gz"), labels = idxLabels(4, {1, 2, 3, 9});
  auto bytes = [](const std::string &s) {
    return std::span(reinterpret_cast<const uint8_t *>(s.data()), s.size());
  };
  int cases = 0, errors = 0;
  auto same = [&](const std::string &images, const std::string &labelBytes) {
    writeRaw(d / "i", images);
    writeRaw(d / "l", labelBytes);
    auto file = readIdx(d / "i", d / "l");
    auto memory = readIdxBytes(bytes(images), bytes(labelBytes), 10, d / "i", d / "l");
    ++cases;
    REQUIRE(bool(file) == bool(memory));
    if (!file) {
      ++errors;
      CHECK(memory.diag().str() == file.diag().str());
      return;
    }
    CHECK(memory->pixels == file->pixels);
    CHECK(memory->labels == file->labels);
    CHECK(memory->count == file->count);
  };
  for (const std::string &images : {plain, gz})
    for (size_t at = 0; at < images.size(); ++at)
      for (int bit = 0; bit < 8; bit += 3) {
        std::string bad = images;
        bad[at] = char(bad[at] ^ (1 << bit));
        same(bad, labels);
      }
  for (size_t cut = 0; cut <= labels.size(); ++cut)
    same(gz, labels.substr(0, cut));
  same(gz, labels + "x");
  same(plain, labels);
  CHECK(errors > cases / 2);
  auto ok = readIdxBytes(bytes(gz), bytes(labels));
  REQUIRE(ok);
  CHECK(ok->pixels == pixels);
  CHECK(ok->labels == std::vector<int32_t>{1, 2, 3, 9});
  // Without names, messages say "images" and "labels".
  auto bad = readIdxBytes(bytes(gz.substr(0, gz.size() - 8)), bytes(labels));
  REQUIRE(!bad);
  CHECK(contains(bad.diag().str(), "images: error: truncated: the file ends after"));
  auto badLabels = readIdxBytes(bytes(gz), bytes(labels.substr(0, 7)));
  REQUIRE(!badLabels);
  CHECK(contains(badLabels.diag().str(), "labels: error: truncated"));
}

TEST_CASE("missing idx files and directories are named", "[dataset]") {
  TempDir d;
  writeDir(d, false);
  fs::remove(d.path / "t10k-labels-idx1-ubyte");
  auto r = loadMnistDir(d.path.string());
  REQUIRE(!r);
  CHECK(contains(r.diag().str(), "t10k-labels-idx1-ubyte"));
  auto r2 = loadMnistDir(d / "nope");
  REQUIRE(!r2);
  CHECK(contains(r2.diag().str(), "nope: error: not a directory"));
  auto r3 = readIdx(d / "missing-images", d / "missing-labels");
  REQUIRE(!r3);
  CHECK(contains(r3.diag().str(), d / "missing-images"));
  CHECK(contains(r3.diag().str(), "No such file"));
}

TEST_CASE("train and test images must have the same size", "[dataset]") {
  TempDir d;
  writeDir(d, false);
  writeRaw(d / "t10k-images-idx3-ubyte", idxImages(3, 3, 4, pattern(3, 3, 4)));
  auto r = loadMnistDir(d.path.string());
  REQUIRE(!r);
  CHECK(contains(r.diag().str(), "test images are 3x4 but the training images"));
}

TEST_CASE("sample formats: as is, padded to 32x32, or an error naming both shapes", "[dataset]") {
  for (ir::Shape s : {ir::Shape{1, 28, 28}, ir::Shape{28, 28}, ir::Shape{784}}) {
    auto f = sampleFormat(28, 28, s);
    REQUIRE(f);
    CHECK(f->pad == 0);
    CHECK(f->numel() == 784);
    CHECK(f->note() == "");
  }
  for (ir::Shape s : {ir::Shape{1, 32, 32}, ir::Shape{32, 32}, ir::Shape{1024}}) {
    auto f = sampleFormat(28, 28, s);
    REQUIRE(f);
    CHECK(f->pad == 2);
    CHECK(f->numel() == 1024);
  }
  CHECK(sampleFormat(28, 28, {1024})->note() ==
        "padding 28x28 images to 32x32 for the model's 1024 inputs");
  CHECK(sampleFormat(28, 28, {1, 32, 32})->note() ==
        "padding 28x28 images to 32x32 for the model's 1024 inputs (1x32x32)");
  auto bad = sampleFormat(28, 28, {3, 32, 32});
  REQUIRE(!bad);
  CHECK(contains(bad.diag().message, "[3,32,32]"));
  CHECK(contains(bad.diag().message, "28x28"));
  CHECK(!sampleFormat(28, 28, {1, 30, 30}));
}

TEST_CASE("padding puts the image in the centre of a zero frame", "[dataset]") {
  ImageSet set;
  set.count = 2;
  set.rows = set.cols = 28;
  set.pixels = pattern(2, 28, 28);
  for (uint8_t &p : set.pixels)
    p = uint8_t(p | 1); // no zero pixels inside the image
  set.labels = {4, 7};
  auto f = sampleFormat(28, 28, {1, 32, 32});
  REQUIRE(f);
  std::vector<float> x(2 * 1024, -1.0f);
  std::vector<int32_t> labels(2);
  int64_t idx[2] = {1, 0};
  fillBatch(set, *f, idx, 2, x.data(), labels.data());
  CHECK(labels == std::vector<int32_t>{7, 4});
  for (int b = 0; b < 2; ++b) {
    int64_t i = idx[b];
    for (int r = 0; r < 32; ++r)
      for (int c = 0; c < 32; ++c) {
        float got = x[size_t(b * 1024 + r * 32 + c)];
        bool inside = r >= 2 && r < 30 && c >= 2 && c < 30;
        float want = inside ? float(set.pixels[size_t(i * 784 + (r - 2) * 28 + (c - 2))]) : 0;
        INFO("sample " << b << " r " << r << " c " << c);
        REQUIRE(got == want);
      }
  }
}

TEST_CASE("normalisation uses the training set's mean and std", "[dataset]") {
  ImageSet set;
  set.count = 1;
  set.rows = 2;
  set.cols = 3;
  set.pixels = {0, 51, 102, 153, 204, 255};
  set.labels = {0};
  double mean, std;
  pixelStats(set, &mean, &std);
  // x/255 = 0, .2, .4, .6, .8, 1: mean .5, population variance .1167
  CHECK(mean == Approx(0.5));
  CHECK(std == Approx(std::sqrt((0.25 + 0.09 + 0.01 + 0.01 + 0.09 + 0.25) / 6)));
  auto f = sampleFormat(2, 3, {6});
  REQUIRE(f);
  f->normalize = true;
  f->mean = mean;
  f->std = std;
  std::vector<float> x(6);
  int64_t i0 = 0;
  fillBatch(set, *f, &i0, 1, x.data(), nullptr);
  for (int k = 0; k < 6; ++k)
    CHECK(x[size_t(k)] == Approx((set.pixels[size_t(k)] / 255.0 - 0.5) / std).epsilon(1e-6));
}

TEST_CASE("the synthetic data set is deterministic and well formed", "[dataset]") {
  Dataset a = syntheticDataset(), b = syntheticDataset();
  CHECK(a.train.count == 2000);
  CHECK(a.test.count == 500);
  CHECK(a.train.rows == 28);
  CHECK(a.train.cols == 28);
  CHECK(a.classes() == 10);
  CHECK(a.train.pixels == b.train.pixels);
  CHECK(a.train.labels == b.train.labels);
  CHECK(a.test.pixels == b.test.pixels);
  CHECK(a.train.pixels != a.test.pixels);
  std::vector<int> seen(10, 0);
  for (int32_t l : a.train.labels) {
    REQUIRE(l >= 0);
    REQUIRE(l < 10);
    ++seen[size_t(l)];
  }
  for (int n : seen)
    CHECK(n > 100);
  Dataset c = syntheticDataset({.seed = 2});
  CHECK(c.train.pixels != a.train.pixels);
  Dataset small = syntheticDataset({.train = 30, .test = 7});
  CHECK(small.train.count == 30);
  CHECK(small.test.pixels.size() == 7u * 784);
  // The classes are separable: each test image is nearest to its own class's
  // mean training image (the prototype plus averaged-out noise).
  std::vector<double> means(10 * 784, 0);
  for (int64_t i = 0; i < a.train.count; ++i)
    for (int k = 0; k < 784; ++k)
      means[size_t(a.train.labels[size_t(i)] * 784 + k)] +=
          a.train.image(i)[k] / double(seen[size_t(a.train.labels[size_t(i)])]);
  int nearest = 0;
  for (int64_t i = 0; i < a.test.count; ++i) {
    int best = 0;
    double bestD = INFINITY;
    for (int c2 = 0; c2 < 10; ++c2) {
      double dist = 0;
      for (int k = 0; k < 784; ++k)
        dist += std::pow(a.test.image(i)[k] - means[size_t(c2 * 784 + k)], 2);
      if (dist < bestD) {
        bestD = dist;
        best = c2;
      }
    }
    nearest += best == a.test.labels[size_t(i)];
  }
  CHECK(nearest == a.test.count);
}

TEST_CASE("limit keeps the first samples", "[dataset]") {
  Dataset a = syntheticDataset({.train = 50, .test = 10});
  ImageSet t = a.train;
  t.limit(20);
  CHECK(t.count == 20);
  CHECK(t.labels == std::vector<int32_t>(a.train.labels.begin(), a.train.labels.begin() + 20));
  CHECK(std::equal(t.pixels.begin(), t.pixels.end(), a.train.pixels.begin()));
  t.limit(0);
  CHECK(t.count == 20);
  t.limit(100);
  CHECK(t.count == 20);
}

TEST_CASE("the sample shape comes from tracing the model", "[dataset]") {
  auto s = imageSampleShape(mlp(1024), 28, 28);
  REQUIRE(s);
  CHECK(*s == ir::Shape{1, 32, 32});
  auto s2 = imageSampleShape(mlp(784), 28, 28);
  REQUIRE(s2);
  CHECK(*s2 == ir::Shape{1, 28, 28});
  auto s3 = imageSampleShape(mlp(500), 28, 28);
  REQUIRE(!s3);
  CHECK(contains(s3.diag().message, "expects 500 elements per sample, got 784"));
}

TEST_CASE("Debian's Fashion-MNIST loads when installed", "[dataset]") {
  if (!fs::exists(kFashionMnistDir)) {
    test::skipTestCase(std::string(kFashionMnistDir) +
                       " is not installed (Debian's dataset-fashion-mnist)");
    return;
  }
  auto d = loadDataset("");
  REQUIRE(d);
  CHECK(d->name == "fashion-mnist");
  CHECK(d->train.count == 60000);
  CHECK(d->test.count == 10000);
  CHECK(d->train.rows == 28);
  CHECK(d->classNames[0] == "T-shirt/top");
  double mean, std;
  pixelStats(d->train, &mean, &std);
  CHECK(mean == Approx(0.2860).epsilon(1e-3)); // torchvision's published figures
  CHECK(std == Approx(0.3530).epsilon(1e-3));
}

TEST_CASE("damaged idx files give errors, never crashes", "[dataset]") {
  TempDir d;
  std::string images = idxImages(20, 5, 4, pattern(20, 5, 4));
  std::string labels = idxLabels(20, std::vector<uint8_t>(20, 2));
  writeGz(d / "i.gz", images);
  std::string gz = readRaw(d / "i.gz");
  writeRaw(d / "l", labels);
  std::mt19937 rng(2);
  for (int i = 0; i < 300; ++i) {
    bool useGz = i % 2 == 0;
    std::string bad = useGz ? gz : images;
    if (i % 3 == 0)
      bad.resize(rng() % bad.size());
    else
      for (int k = 0; k < 1 + int(rng() % 3); ++k)
        bad[rng() % std::min<size_t>(bad.size(), 40)] = char(rng());
    writeRaw(d / "bad", bad);
    auto r = readIdx(d / "bad", d / "l");
    if (!r)
      CHECK(contains(r.diag().str(), d / "bad: error: "));
    else
      CHECK(r->count * r->rows * r->cols == int64_t(r->pixels.size()));
  }
}
