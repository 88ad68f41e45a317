// runtime/Dataset.cpp - idx reader (through zlib), synthetic data, batches.
#include "runtime/Dataset.h"

#include "runtime/T7.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <span>
#include <unistd.h>

namespace graphc::runtime {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803, kLabelsMagic = 0x00000801;
constexpr int64_t kMaxSide = 1 << 16;           // rows or cols
constexpr int64_t kMaxCount = int64_t(1) << 31; // images in one file
constexpr size_t kChunk = size_t(1) << 20;

const char *const kFashionClasses[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                         "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                         "Bag",         "Ankle boot"};

Diag fileError(const std::string &path, std::string message) {
  Diag d = error(std::move(message));
  d.file = path;
  return d;
}

/// A gzip or plain file, read through zlib's inflate: a file that starts
/// with the gzip magic bytes is one or more gzip members, each checked
/// against its trailer (the CRC-32 and the length, ISIZE) by zlib; anything
/// else is read as it is. A member cut short, a trailer that does not
/// match, or bytes after the last member that are not another member are
/// errors naming the file. The bytes come from a file, read a piece at a
/// time, or from memory (readIdxBytes, the fuzz target): the same code
/// checks both. Closed on scope exit.
class GzReader {
public:
  /// Reads the file at `path`.
  explicit GzReader(const std::string &path) : path_(path), buffer_(kChunk) {
    in_ = buffer_.data();
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      openError_ = errno;
      return;
    }
    if (fill())
      startGzip();
  }
  /// Reads `bytes` (not copied: they must outlive the reader), named `name`
  /// in messages.
  GzReader(std::span<const uint8_t> bytes, const std::string &name)
      : path_(name), in_(bytes.data()), inLen_(bytes.size()), eof_(true), memory_(true) {
    startGzip();
  }
  ~GzReader() {
    if (gzip_)
      inflateEnd(&zs_);
    if (fd_ >= 0)
      ::close(fd_);
  }
  GzReader(const GzReader &) = delete;
  GzReader &operator=(const GzReader &) = delete;

  Status openStatus() const {
    if (fd_ >= 0 || memory_)
      return {};
    return fileError(path_, fmt::format("cannot open: {}", std::strerror(openError_)));
  }

  /// Reads up to `n` bytes; the count read (short only at the end of the
  /// data), or an error for an unreadable file or a corrupt gzip stream.
  Expected<size_t> read(void *dst, size_t n) {
    uint8_t *out = static_cast<uint8_t *>(dst);
    size_t done = 0;
    while (done < n) {
      if (readError_)
        return fileError(path_, fmt::format("cannot read: {}", std::strerror(readError_)));
      if (inPos_ == inLen_ && !eof_ && !fill())
        continue; // reports the error
      if (!gzip_) {
        if (inPos_ == inLen_)
          break;
        size_t k = std::min(n - done, inLen_ - inPos_);
        std::memcpy(out + done, in_ + inPos_, k);
        inPos_ += k;
        done += k;
        continue;
      }
      if (memberDone_) { // another member follows, or nothing may
        if (inPos_ == inLen_)
          break;
        if (inLen_ - inPos_ < 2 && !eof_) {
          fill(); // an error shows at the top of the loop
          continue;
        }
        if (inLen_ - inPos_ < 2 || in_[inPos_] != 0x1f || in_[inPos_ + 1] != 0x8b)
          return fileError(path_, fmt::format("corrupt: bytes after the end of the gzip data "
                                              "(at byte {}) that are not another gzip member",
                                              consumed_ + inPos_));
        inflateReset(&zs_);
        memberDone_ = false;
      }
      zs_.next_in = const_cast<uint8_t *>(in_ + inPos_); // zlib does not write it
      zs_.avail_in = unsigned(inLen_ - inPos_);
      zs_.next_out = out + done;
      zs_.avail_out = unsigned(std::min<size_t>(n - done, kChunk));
      int ret = inflate(&zs_, Z_NO_FLUSH);
      size_t used = (inLen_ - inPos_) - zs_.avail_in;
      size_t produced = std::min<size_t>(n - done, kChunk) - zs_.avail_out;
      inPos_ += used;
      done += produced;
      if (ret == Z_STREAM_END) {
        memberDone_ = true;
      } else if (ret == Z_BUF_ERROR || (ret == Z_OK && used == 0 && produced == 0)) {
        if (inPos_ == inLen_ && eof_)
          return fileError(path_, fmt::format("truncated: the file ends after {} bytes, inside "
                                              "its gzip data (which end with an 8-byte "
                                              "trailer: CRC-32 and length)",
                                              consumed_ + inPos_));
      } else if (ret != Z_OK) {
        return inflateError(ret);
      }
    }
    return done;
  }
  /// Reads exactly `n` bytes into a vector grown as the data arrives, so a
  /// header that promises more than the file holds allocates no more than
  /// the file has.
  Expected<std::vector<uint8_t>> readExactly(size_t n, const char *what) {
    std::vector<uint8_t> out;
    while (out.size() < n) {
      size_t want = std::min(n - out.size(), kChunk);
      size_t at = out.size();
      out.resize(at + want);
      auto got = read(out.data() + at, want);
      if (!got)
        return got.diag();
      if (*got < want)
        return fileError(path_, fmt::format("truncated: the header promises {} bytes of "
                                            "{}, the file holds {}",
                                            n, what, at + *got));
    }
    return out;
  }

  /// An error if anything follows the expected data.
  Status expectEnd() {
    uint8_t extra[64];
    auto got = read(extra, sizeof extra);
    if (!got)
      return got.diag();
    if (*got > 0)
      return fileError(path_, "the file is longer than its header says (trailing "
                              "bytes after the last item)");
    return {};
  }

private:
  /// The magic decides: gzip members, or plain bytes (as gzopen does).
  void startGzip() {
    if (inLen_ < 2 || in_[0] != 0x1f || in_[1] != 0x8b)
      return;
    gzip_ = true;
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) { // 16: a gzip wrapper, checked
      gzip_ = false;
      openError_ = ENOMEM;
      memory_ = false;
      if (fd_ >= 0)
        ::close(fd_);
      fd_ = -1;
    }
  }

  /// Reads the next piece of the file after what is left in the buffer;
  /// false on an error (kept in readError_). Bytes in memory are all there.
  bool fill() {
    if (memory_)
      return true;
    compact();
    ssize_t got;
    do
      got = ::read(fd_, buffer_.data() + inLen_, buffer_.size() - inLen_);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      readError_ = errno;
      return false;
    }
    eof_ = got == 0;
    inLen_ += size_t(got);
    return true;
  }

  /// Moves the unread bytes to the front of the buffer.
  void compact() {
    consumed_ += inPos_;
    std::memmove(buffer_.data(), buffer_.data() + inPos_, inLen_ - inPos_);
    inLen_ -= inPos_;
    inPos_ = 0;
  }

  Diag inflateError(int ret) {
    std::string msg = zs_.msg ? zs_.msg : "";
    size_t at = consumed_ + inPos_;
    if (msg == "incorrect data check")
      return fileError(path_, "corrupt: the CRC-32 in the gzip trailer does not match the "
                              "decompressed data (a damaged file)");
    if (msg == "incorrect length check")
      return fileError(path_, "corrupt: the length in the gzip trailer (ISIZE) does not match "
                              "the decompressed data (a damaged file)");
    if (ret == Z_MEM_ERROR)
      return fileError(path_, "cannot read: out of memory for the gzip decoder");
    return fileError(path_, fmt::format("corrupt gzip data near byte {}: {}", at,
                                        msg.empty() ? "invalid data" : msg));
  }

  std::string path_;
  std::vector<uint8_t> buffer_; ///< a file's bytes from consumed_ on (empty for memory)
  const uint8_t *in_ = nullptr; ///< buffer_, or the bytes in memory
  size_t inPos_ = 0, inLen_ = 0;
  uint64_t consumed_ = 0; ///< file bytes before in_[0]
  int fd_ = -1, openError_ = 0, readError_ = 0;
  bool gzip_ = false, eof_ = false, memberDone_ = false;
  bool memory_ = false; ///< in_ is the caller's bytes, all of them
  z_stream zs_ = {};
};

uint32_t bigEndian32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

/// Reads the idx header: magic and `dims` sizes.
Status readHeader(GzReader &f, const std::string &path, uint32_t magic, const char *kind,
                  std::vector<uint32_t> &dims) {
  uint8_t head[16];
  size_t want = 4 + 4 * dims.size();
  auto truncated = [&](size_t got) {
    return fileError(path, fmt::format("truncated: {} bytes, shorter than an idx {} "
                                       "header ({} bytes)",
                                       got, kind, want));
  };
  auto got = f.read(head, 4);
  if (!got)
    return got.diag();
  if (*got < 4)
    return truncated(*got);
  uint32_t m = bigEndian32(head);
  if (m != magic) {
    std::string hint;
    if (m == kImagesMagic)
      hint = " (an images file where labels were expected?)";
    else if (m == kLabelsMagic)
      hint = " (a labels file where images were expected?)";
    else if ((m >> 16) == 0x1f8b)
      hint = " (gzip data inside a gzip file?)";
    return fileError(path, fmt::format("not an idx {} file: magic number 0x{:08x}, "
                                       "expected 0x{:08x}{}",
                                       kind, m, magic, hint));
  }
  got = f.read(head + 4, want - 4);
  if (!got)
    return got.diag();
  if (*got < want - 4)
    return truncated(4 + *got);
  for (size_t i = 0; i < dims.size(); ++i)
    dims[i] = bigEndian32(head + 4 + 4 * i);
  return {};
}

/// `dir/name.gz`, else `dir/name`; an error when neither exists.
Expected<std::string> findFile(const std::string &dir, const std::string &name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string &candidate : {name + ".gz", name}) {
    fs::path p = fs::path(dir) / candidate;
    if (fs::is_regular_file(p, ec))
      return p.string();
  }
  return fileError(dir, fmt::format("no {0}.gz or {0} in this directory (an MNIST-format "
                                    "data set needs train-images-idx3-ubyte, "
                                    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                                    "t10k-labels-idx1-ubyte, gzipped or not)",
                                    name));
}

bool isFashionDir(const std::string &dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(dir), ec);
  if (ec)
    p = fs::path(dir).lexically_normal();
  std::string base = p.filename().string();
  if (base.empty())
    base = p.parent_path().filename().string();
  std::transform(base.begin(), base.end(), base.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return base.find("fashion") != std::string::npos;
}

/// Leading 1s removed: [1,32,32] -> [32,32].
ir::Shape squeezeLeading(const ir::Shape &s) {
  size_t i = 0;
  while (i + 1 < s.size() && s[i] == 1)
    ++i;
  return ir::Shape(s.begin() + long(i), s.end());
}

/// True when `sample` is an image of rows x cols: [rows,cols] or [rows*cols],
/// after leading 1s.
bool holdsImage(const ir::Shape &sample, int64_t rows, int64_t cols) {
  ir::Shape s = squeezeLeading(sample);
  return s == ir::Shape{rows, cols} || s == ir::Shape{rows * cols};
}

/// Uniform in [0, 1) from 53 random bits: the same on every platform.
double uniform(std::mt19937_64 &rng) { return double(rng() >> 11) * 0x1.0p-53; }

/// Approximately standard normal: a scaled sum of four uniforms (portable,
/// unlike std::normal_distribution).
double gaussian(std::mt19937_64 &rng) {
  double s = uniform(rng) + uniform(rng) + uniform(rng) + uniform(rng) - 2.0;
  return s * std::sqrt(3.0);
}

void makeSplit(ImageSet &set, int64_t count, const SyntheticOptions &o,
               const std::vector<uint8_t> &prototypes, uint64_t streamSeed, const char *name) {
  std::mt19937_64 rng(streamSeed);
  int64_t size = o.rows * o.cols;
  set.count = count;
  set.rows = o.rows;
  set.cols = o.cols;
  set.source = name;
  set.pixels.resize(size_t(count * size));
  set.labels.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    int32_t label = int32_t((rng() >> 32) % uint64_t(o.classes));
    set.labels[size_t(i)] = label;
    const uint8_t *proto = prototypes.data() + label * size;
    uint8_t *dst = set.pixels.data() + i * size;
    for (int64_t k = 0; k < size; ++k) {
      double v = std::round(double(proto[k]) + o.noise * gaussian(rng));
      dst[k] = uint8_t(std::clamp(v, 0.0, 255.0));
    }
  }
}

/// The images half of readIdx: header, pixels, nothing after them.
Status readImages(GzReader &f, const std::string &imagesPath, ImageSet &set) {
  set.source = imagesPath;
  if (Status s = f.openStatus(); !s)
    return s;
  std::vector<uint32_t> dims(3);
  if (Status s = readHeader(f, imagesPath, kImagesMagic, "images", dims); !s)
    return s;
  int64_t n = dims[0], rows = dims[1], cols = dims[2];
  if (n >= kMaxCount || rows < 1 || cols < 1 || rows > kMaxSide || cols > kMaxSide)
    return fileError(imagesPath,
                     fmt::format("implausible header: {} images of {}x{} pixels", n, rows, cols));
  auto pixels = f.readExactly(size_t(n * rows * cols),
                              fmt::format("{} images of {}x{}", n, rows, cols).c_str());
  if (!pixels)
    return pixels.diag();
  if (Status s = f.expectEnd(); !s)
    return s;
  set.count = n;
  set.rows = rows;
  set.cols = cols;
  set.pixels = std::move(*pixels);
  return {};
}

/// The labels half of readIdx: one label below `classes` per image of `set`.
Status readLabels(GzReader &f, const std::string &labelsPath, int64_t classes, ImageSet &set) {
  if (Status s = f.openStatus(); !s)
    return s;
  std::vector<uint32_t> dims(1);
  if (Status s = readHeader(f, labelsPath, kLabelsMagic, "labels", dims); !s)
    return s;
  if (int64_t(dims[0]) != set.count)
    return fileError(labelsPath, fmt::format("holds {} labels but {} holds {} images", dims[0],
                                             set.source, set.count));
  auto bytes = f.readExactly(size_t(set.count), "labels");
  if (!bytes)
    return bytes.diag();
  if (Status s = f.expectEnd(); !s)
    return s;
  set.labels.resize(bytes->size());
  for (size_t i = 0; i < bytes->size(); ++i) {
    if ((*bytes)[i] >= classes)
      return fileError(labelsPath, fmt::format("label {} of sample {} is not a class "
                                               "index 0..{}",
                                               (*bytes)[i], i, classes - 1));
    set.labels[i] = (*bytes)[i];
  }
  return {};
}

/// Calls fn(storage index) for every element of `t` in row-major order.
template <class Fn> void forEachElement(const T7Tensor &t, Fn fn) {
  int64_t numel = t.numel(), rank = int64_t(t.shape.size());
  std::vector<int64_t> index(size_t(rank), 0);
  int64_t at = t.offset;
  for (int64_t e = 0; e < numel; ++e) {
    fn(e, at);
    for (int64_t d = rank - 1; d >= 0; --d) {
      at += t.strides[size_t(d)];
      if (++index[size_t(d)] < t.shape[size_t(d)])
        break;
      at -= t.strides[size_t(d)] * t.shape[size_t(d)];
      index[size_t(d)] = 0;
    }
  }
}

/// One split of a Torch7 data file, as the seed tutorial's mnist.t7 keeps
/// it: torch.save of {data = N x 1 x H x W or N x H x W pixels, labels = N
/// classes from 1}. Pixels are a ByteTensor, or any tensor of whole numbers
/// 0..255 (a FloatTensor of raw pixels); labels become 0-based here.
Expected<ImageSet> readT7Split(const std::string &path) {
  auto file = readT7(path);
  if (!file)
    return file.diag();
  auto bad = [&](std::string message) { return fileError(path, std::move(message)); };
  const T7Object *root = file->root.table();
  if (!root)
    return bad("not a Torch7 data set: expected a table {data = images, labels = classes}, "
               "as torch.save(path, {data = ..., labels = ...}) writes it");
  const T7Value *dataValue = root->get("data"), *labelValue = root->get("labels");
  const T7Object *dataObject = dataValue ? dataValue->tensor() : nullptr;
  const T7Object *labelObject = labelValue ? labelValue->tensor() : nullptr;
  if (!dataObject || !labelObject)
    return bad(fmt::format("not a Torch7 data set: the table has no tensor `{}` (expected "
                           "{{data = N x 1 x H x W images, labels = N classes from 1}})",
                           dataObject ? "labels" : "data"));
  const T7Tensor &data = dataObject->tensor, &labels = labelObject->tensor;
  const auto &ds = data.shape;
  bool oneChannel = ds.size() == 4 && ds[1] == 1;
  if (!(ds.size() == 3 || oneChannel))
    return bad(fmt::format("data is a {}Tensor of size {}: graphc reads grey images, N x 1 x H "
                           "x W or N x H x W",
                           t7ElementName(data.element), ir::str(ds)));
  int64_t n = ds[0], rows = ds[ds.size() - 2], cols = ds[ds.size() - 1];
  if (n < 1 || n >= kMaxCount || rows < 1 || cols < 1 || rows > kMaxSide || cols > kMaxSide)
    return bad(fmt::format("implausible data: {} images of {}x{} pixels", n, rows, cols));
  if (labels.shape != std::vector<int64_t>{n})
    return bad(fmt::format("labels is a tensor of size {}, but data holds {} images",
                           ir::str(labels.shape), n));
  ImageSet set;
  set.source = path;
  set.count = n;
  set.rows = rows;
  set.cols = cols;
  set.pixels.resize(size_t(n * rows * cols));
  const T7Storage &pixels = data.storage->storage;
  std::string problem;
  forEachElement(data, [&](int64_t e, int64_t at) {
    double v = pixels.at(at);
    if (!(v >= 0 && v <= 255 && v == std::floor(v))) {
      if (problem.empty())
        problem = fmt::format("pixel {} of image {} is {}: graphc reads raw pixels, whole "
                              "numbers 0..255 (save the images before normalising them)",
                              e % (rows * cols), e / (rows * cols) + 1, v);
      return;
    }
    set.pixels[size_t(e)] = uint8_t(v);
  });
  if (!problem.empty())
    return bad(problem);
  set.labels.resize(size_t(n));
  const T7Storage &classes = labels.storage->storage;
  forEachElement(labels, [&](int64_t e, int64_t at) {
    double v = classes.at(at);
    if (!(v >= 1 && v <= 1e6 && v == std::floor(v))) {
      if (problem.empty())
        problem = fmt::format("label {} of image {} is not a class number (Torch7 counts "
                              "classes from 1)",
                              v, e + 1);
      return;
    }
    set.labels[size_t(e)] = int32_t(v) - 1;
  });
  if (!problem.empty())
    return bad(problem);
  return set;
}

/// `train_32x32.t7` -> `test_32x32.t7` beside it: the seed tutorial's pair.
std::string t7TestBeside(const std::string &trainPath) {
  std::filesystem::path p(trainPath);
  std::string name = p.filename().string();
  size_t at = name.find("train");
  if (at == std::string::npos)
    return "";
  name.replace(at, 5, "test");
  return (p.parent_path() / name).string();
}

} // namespace

Expected<Dataset> loadT7Dataset(const std::string &trainPath, const std::string &testPath) {
  Dataset d;
  std::string test = testPath;
  if (!trainPath.empty()) {
    auto train = readT7Split(trainPath);
    if (!train)
      return train.diag();
    d.train = std::move(*train);
    d.name = trainPath;
    if (test.empty()) {
      test = t7TestBeside(trainPath);
      std::error_code ec;
      if (test.empty() || !std::filesystem::exists(test, ec))
        return fileError(trainPath, fmt::format("no test set beside it{}: name one with "
                                                "--test-data FILE.t7",
                                                test.empty() ? "" : " (" + test + ")"));
    }
  }
  if (!test.empty()) {
    auto set = readT7Split(test);
    if (!set)
      return set.diag();
    d.test = std::move(*set);
    if (d.name.empty())
      d.name = test;
  }
  if (d.train.count && d.test.count &&
      (d.train.rows != d.test.rows || d.train.cols != d.test.cols))
    return fileError(d.test.source,
                     fmt::format("test images are {}x{} but the training images ({}) are {}x{}",
                                 d.test.rows, d.test.cols, d.train.source, d.train.rows,
                                 d.train.cols));
  // Torch7's classes are numbered from 1; as many as the largest label.
  int32_t classes = 0;
  for (const ImageSet *set : {&d.train, &d.test})
    for (int32_t l : set->labels)
      classes = std::max(classes, l + 1);
  for (int32_t c = 1; c <= classes; ++c)
    d.classNames.push_back(std::to_string(c));
  return d;
}

void ImageSet::limit(int64_t n) {
  if (n <= 0 || n >= count)
    return;
  count = n;
  pixels.resize(size_t(n * imageSize()));
  pixels.shrink_to_fit();
  labels.resize(size_t(n));
  labels.shrink_to_fit();
}

Expected<ImageSet> readIdx(const std::string &imagesPath, const std::string &labelsPath,
                           int64_t classes) {
  ImageSet set;
  {
    GzReader f(imagesPath);
    if (Status s = readImages(f, imagesPath, set); !s)
      return s.diag();
  }
  GzReader f(labelsPath);
  if (Status s = readLabels(f, labelsPath, classes, set); !s)
    return s.diag();
  return set;
}

Expected<ImageSet> readIdxBytes(std::span<const uint8_t> images, std::span<const uint8_t> labels,
                                int64_t classes, const std::string &imagesName,
                                const std::string &labelsName) {
  ImageSet set;
  GzReader imagesReader(images, imagesName);
  if (Status s = readImages(imagesReader, imagesName, set); !s)
    return s.diag();
  GzReader labelsReader(labels, labelsName);
  if (Status s = readLabels(labelsReader, labelsName, classes, set); !s)
    return s.diag();
  return set;
}

Expected<Dataset> loadMnistDir(const std::string &dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    if (dir == kFashionMnistDir)
      return fileError(dir, "no Fashion-MNIST here: install Debian's "
                            "dataset-fashion-mnist package, or pass --data DIR (a "
                            "directory of MNIST idx files) or --data synthetic");
    return fileError(dir, "not a directory (--data takes a directory of MNIST idx "
                          "files, or `synthetic`)");
  }
  Dataset d;
  d.name = isFashionDir(dir) ? "fashion-mnist" : dir;
  if (isFashionDir(dir))
    d.classNames.assign(std::begin(kFashionClasses), std::end(kFashionClasses));
  else
    for (int i = 0; i < 10; ++i)
      d.classNames.push_back(std::to_string(i));
  for (auto [split, prefix] : {std::pair{&d.train, "train"}, std::pair{&d.test, "t10k"}}) {
    auto images = findFile(dir, fmt::format("{}-images-idx3-ubyte", prefix));
    if (!images)
      return images.diag();
    auto labels = findFile(dir, fmt::format("{}-labels-idx1-ubyte", prefix));
    if (!labels)
      return labels.diag();
    auto set = readIdx(*images, *labels, d.classes());
    if (!set)
      return set.diag();
    *split = std::move(*set);
  }
  if (d.train.rows != d.test.rows || d.train.cols != d.test.cols)
    return fileError(d.test.source,
                     fmt::format("test images are {}x{} but the training images ({}) "
                                 "are {}x{}",
                                 d.test.rows, d.test.cols, d.train.source, d.train.rows,
                                 d.train.cols));
  return d;
}

Dataset syntheticDataset(const SyntheticOptions &o) {
  GRAPHC_CHECK(o.classes >= 1 && o.rows >= 1 && o.cols >= 1 && o.train >= 0 && o.test >= 0,
               "bad synthetic data set options");
  Dataset d;
  d.name = "synthetic";
  for (int64_t c = 0; c < o.classes; ++c)
    d.classNames.push_back(std::to_string(c));
  std::mt19937_64 rng(o.seed * 0x9e3779b97f4a7c15ULL + 0x5eed);
  std::vector<uint8_t> prototypes(size_t(o.classes * o.rows * o.cols));
  for (uint8_t &p : prototypes)
    p = uint8_t(rng() >> 56);
  makeSplit(d.train, o.train, o, prototypes, rng(), "synthetic training set");
  makeSplit(d.test, o.test, o, prototypes, rng(), "synthetic test set");
  return d;
}

Expected<Dataset> loadDataset(const std::string &spec, const std::string &testSpec) {
  if (isT7Path(spec) || (spec.empty() && !testSpec.empty()))
    return loadT7Dataset(spec, testSpec);
  if (!testSpec.empty())
    return error(fmt::format("--test-data {}: a test set of its own goes with a Torch7 data "
                             "file (--data train_32x32.t7); an idx folder has its own t10k files",
                             testSpec));
  if (spec == "synthetic")
    return syntheticDataset();
  return loadMnistDir(spec.empty() ? kFashionMnistDir : spec);
}

int64_t SampleFormat::numel() const {
  int64_t n = 1;
  for (int64_t d : sample)
    n *= d;
  return n;
}

float SampleFormat::value(uint8_t pixel) const {
  if (!normalize)
    return float(pixel);
  return float((double(pixel) / 255.0 - mean) / std);
}

std::string SampleFormat::note() const {
  if (pad == 0)
    return "";
  std::string dims;
  for (int64_t d : sample)
    dims += (dims.empty() ? "" : "x") + std::to_string(d);
  return fmt::format("padding {}x{} images to {}x{} for the model's {} inputs{}", rows, cols,
                     rows + 2 * pad, cols + 2 * pad, numel(),
                     sample.size() > 1 ? " (" + dims + ")" : "");
}

Expected<SampleFormat> sampleFormat(int64_t rows, int64_t cols, const ir::Shape &sample) {
  SampleFormat f;
  f.sample = sample;
  f.rows = rows;
  f.cols = cols;
  if (holdsImage(sample, rows, cols))
    return f;
  if (holdsImage(sample, rows + 4, cols + 4)) {
    f.pad = 2;
    return f;
  }
  return error(fmt::format("the model takes samples of shape {} but the data set's "
                           "images are {}x{} (usable shapes: [1,{},{}], [{}], or "
                           "[1,{},{}] padded)",
                           ir::str(sample), rows, cols, rows, cols, rows * cols, rows + 4,
                           cols + 4));
}

void pixelStats(const ImageSet &set, double *mean, double *std) {
  // A histogram makes the sums exact and independent of the pixel order.
  std::vector<uint64_t> hist(256, 0);
  for (uint8_t p : set.pixels)
    ++hist[p];
  double n = double(set.pixels.size()), sum = 0, sum2 = 0;
  for (int v = 0; v < 256; ++v) {
    sum += double(hist[size_t(v)]) * (v / 255.0);
    sum2 += double(hist[size_t(v)]) * (v / 255.0) * (v / 255.0);
  }
  *mean = n > 0 ? sum / n : 0.0;
  double var = n > 0 ? sum2 / n - *mean * *mean : 0.0;
  *std = var > 1e-12 ? std::sqrt(var) : 1.0;
}

void fillBatch(const ImageSet &set, const SampleFormat &format, const int64_t *indices, int64_t n,
               float *x, int32_t *labels) {
  float lut[256];
  for (int v = 0; v < 256; ++v)
    lut[v] = format.value(uint8_t(v));
  int64_t width = set.cols + 2 * format.pad, per = format.numel();
  for (int64_t b = 0; b < n; ++b) {
    int64_t i = indices[b];
    GRAPHC_CHECK(i >= 0 && i < set.count, "sample {} of {}", i, set.count);
    const uint8_t *src = set.image(i);
    float *dst = x + b * per;
    if (format.pad)
      std::fill(dst, dst + per, lut[0]);
    for (int64_t r = 0; r < set.rows; ++r) {
      float *row = dst + (r + format.pad) * width + format.pad;
      for (int64_t c = 0; c < set.cols; ++c)
        row[c] = lut[src[r * set.cols + c]];
    }
    if (labels)
      labels[b] = set.labels[size_t(i)];
  }
}

} // namespace graphc::runtime
