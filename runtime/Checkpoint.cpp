// runtime/Checkpoint.cpp - safetensors encoding, atomic writes, validated loads.
#include "runtime/Checkpoint.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <limits>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace graphc::runtime {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this host would need byte swaps");

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeader = uint64_t(100) << 20; // as the reference implementation
constexpr uint64_t kMaxElements = uint64_t(1) << 48;

Diag fileError(const std::string &path, std::string message) {
  Diag d = error(std::move(message));
  d.file = path;
  return d;
}

/// Bytes per element of a safetensors dtype; 0 for an unknown one.
size_t dtypeSize(const std::string &dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
      {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

int64_t numel(const ir::Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

/// Writes all of `chunks` to the open descriptor `fd`; false on an error
/// (errno says which).
bool writeAll(int fd, const std::vector<std::pair<const void *, size_t>> &chunks) {
  for (auto [data, size] : chunks) {
    const char *p = static_cast<const char *>(data);
    while (size > 0) {
      ssize_t n = ::write(fd, p, std::min<size_t>(size, size_t(1) << 30));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      p += n;
      size -= size_t(n);
    }
  }
  return true;
}

/// How an output path is written.
struct Destination {
  enum Kind { Replace, Through } kind = Replace;
  std::string path; ///< Replace: the file to replace (a symlink's final target)
};

/// Regular files (and new ones) are replaced atomically; a symlink is
/// followed, so the link stays and its target is replaced in its own folder;
/// /dev/null, /dev/stdout, a terminal or a FIFO is written through, as a
/// shell would; a directory, a block device or a socket is refused.
Expected<Destination> destination(const std::string &path) {
  struct stat st;
  std::string target = path;
  // /dev/stdout and its kin name streams, whatever they lead to now (a
  // terminal, a pipe, a file the shell opened): write through them.
  bool stream = path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0;
  if (stream && ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode) && !S_ISBLK(st.st_mode))
    return Destination{Destination::Through, path};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char *real = ::realpath(path.c_str(), nullptr);
    if (real) {
      target = real;
      std::free(real);
    } else { // a dangling link: create its target
      std::vector<char> buf(4096);
      ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size() - 1);
      if (n <= 0)
        return fileError(path,
                         fmt::format("cannot follow the symbolic link: {}", std::strerror(errno)));
      std::string link(buf.data(), size_t(n));
      size_t slash = path.rfind('/');
      target =
          link[0] == '/' || slash == std::string::npos ? link : path.substr(0, slash + 1) + link;
    }
  }
  if (::stat(target.c_str(), &st) != 0)
    return Destination{Destination::Replace, target}; // a new file
  if (S_ISREG(st.st_mode))
    return Destination{Destination::Replace, target};
  if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
    return Destination{Destination::Through, path};
  const char *what = S_ISDIR(st.st_mode)   ? "a directory"
                     : S_ISBLK(st.st_mode) ? "a block device"
                                           : "not a regular file";
  return fileError(path, fmt::format("cannot write: it is {}; graphc writes regular files "
                                     "(or /dev/null, /dev/stdout, a FIFO) and never replaces "
                                     "anything else",
                                     what));
}

/// The temporary being written, for the signal handler: a fixed buffer and
/// a flag, so the handler touches nothing that is not async-signal-safe.
/// One write is tracked at a time; a second, concurrent one goes untracked.
char gTempPath[4096];
volatile std::sig_atomic_t gTempLive = 0;
std::atomic_flag gTempClaimed = ATOMIC_FLAG_INIT;
constexpr int kCleanupSignals[] = {SIGINT, SIGTERM};

/// Removes the temporary, then dies of the signal as if never caught.
extern "C" void removeTempAndReraise(int sig) {
  int saved = errno;
  if (gTempLive)
    ::unlink(gTempPath);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig); // delivered as the handler returns: the process ends with `sig`
  errno = saved;
}

/// While alive, SIGINT and SIGTERM remove `tmp` before the process ends.
/// Signals the program ignores or handles itself are left as they are.
class TempGuard {
public:
  explicit TempGuard(const std::string &tmp) {
    if (tmp.size() >= sizeof gTempPath || gTempClaimed.test_and_set())
      return;
    claimed_ = true;
    std::memcpy(gTempPath, tmp.c_str(), tmp.size() + 1);
    std::atomic_signal_fence(std::memory_order_seq_cst); // the path before the flag
    gTempLive = 1;
    struct sigaction ours = {};
    ours.sa_handler = removeTempAndReraise;
    sigemptyset(&ours.sa_mask);
    for (size_t i = 0; i < std::size(kCleanupSignals); ++i) {
      ::sigaction(kCleanupSignals[i], nullptr, &old_[i]);
      installed_[i] = old_[i].sa_handler == SIG_DFL && !(old_[i].sa_flags & SA_SIGINFO);
      if (installed_[i])
        ::sigaction(kCleanupSignals[i], &ours, nullptr);
    }
  }
  /// The temporary is gone (renamed or removed): nothing left to clean.
  ~TempGuard() {
    if (!claimed_)
      return;
    gTempLive = 0;
    for (size_t i = 0; i < std::size(kCleanupSignals); ++i)
      if (installed_[i])
        ::sigaction(kCleanupSignals[i], &old_[i], nullptr);
    gTempClaimed.clear();
  }
  TempGuard(const TempGuard &) = delete;
  TempGuard &operator=(const TempGuard &) = delete;

private:
  bool claimed_ = false;
  bool installed_[std::size(kCleanupSignals)] = {};
  struct sigaction old_[std::size(kCleanupSignals)] = {};
};

/// Removes `path.tmp.PID` files that a process no longer alive left beside
/// `path` (killed during a save). A live PID's temporary, and anything that
/// is not a regular file, stays.
void removeStaleTemps(const std::string &path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR *d = ::opendir(dir.c_str());
  if (!d)
    return;
  while (const dirent *e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0)
      continue;
    std::string digits = name.substr(prefix.size());
    long long pid = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (ec != std::errc() || p != digits.data() + digits.size() || pid <= 0 || pid == ::getpid() ||
        pid > std::numeric_limits<pid_t>::max())
      continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH)
      continue; // alive (or not ours to ask about): it may be saving right now
    std::string stale = dir + "/" + name;
    struct stat st;
    if (::lstat(stale.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      ::unlink(stale.c_str());
  }
  ::closedir(d);
}

/// Writes all of `chunks` to `path`: through a fsynced temporary in the same
/// folder and a rename for a regular file, straight through for a stream.
Status writeChunksAtomic(const std::string &requested,
                         const std::vector<std::pair<const void *, size_t>> &chunks) {
  auto dest = destination(requested);
  if (!dest)
    return dest.diag();
  if (dest->kind == Destination::Through) {
    int fd = ::open(requested.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return fileError(requested, fmt::format("cannot write: {}", std::strerror(errno)));
    bool ok = writeAll(fd, chunks);
    int e = errno;
    ::close(fd);
    if (!ok)
      return fileError(requested, fmt::format("cannot write: {}", std::strerror(e)));
    return {};
  }
  const std::string &path = dest->path;
  removeStaleTemps(path);
  std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  TempGuard guard(tmp);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return fileError(path,
                     fmt::format("cannot write: cannot create {}: {}", tmp, std::strerror(errno)));
  auto fail = [&](const char *what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return fileError(path, fmt::format("cannot write: {} {}: {}", what, tmp, std::strerror(e)));
  };
  if (!writeAll(fd, chunks))
    return fail("writing");
  if (::fsync(fd) != 0)
    return fail("syncing");
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fileError(path, fmt::format("cannot write: closing {}: {}", tmp, std::strerror(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fileError(path,
                     fmt::format("cannot write: renaming {} over it: {}", tmp, std::strerror(e)));
  }
  // Make the rename itself durable; failing here loses nothing already written.
  std::string dir = path.find('/') == std::string::npos
                        ? "."
                        : path.substr(0, std::max<size_t>(path.rfind('/'), 1));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

/// The JSON header, padded with spaces so that the data starts 8-aligned.
std::string encodeHeader(const std::vector<TensorRef> &tensors,
                         const std::map<std::string, std::string> &metadata) {
  json header = json::object();
  uint64_t offset = 0;
  for (const TensorRef &t : tensors) {
    GRAPHC_CHECK(!header.contains(t.name) && t.name != "__metadata__", "duplicate tensor name {}",
                 t.name);
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0)
    text += ' ';
  return text;
}

std::string littleEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return out;
}

/// A non-negative integer metadata value, or an error naming the key.
Expected<uint64_t> metaInt(const SafetensorsFile &f, const std::string &key) {
  const std::string &v = f.metadata.at(key);
  uint64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty())
    return fileError(f.path,
                     fmt::format("metadata {} is {}, not a non-negative integer", key, quote(v)));
  return x;
}

/// What a tensor holds that is not a finite number.
struct NonFinite {
  int64_t count = 0, index = 0; ///< how many; the first's flat index
  std::string first;            ///< "NaN", "inf" or "-inf"
};

/// The NaN and infinite values among `n` little-endian floats, if any.
std::optional<NonFinite> nonFinite(const uint8_t *data, int64_t n) {
  NonFinite out;
  for (int64_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, data + 4 * i, 4);
    if (std::isfinite(v))
      continue;
    if (out.count++ == 0) {
      out.index = i;
      out.first = std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf";
    }
  }
  if (out.count == 0)
    return std::nullopt;
  return out;
}

/// A flat row-major index as a multi-index of `shape`.
ir::Shape unflatten(int64_t index, const ir::Shape &shape) {
  ir::Shape at(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    at[d] = shape[d] ? index % shape[d] : 0;
    index = shape[d] ? index / shape[d] : 0;
  }
  return at;
}

} // namespace

Status checkWritable(const std::string &path) {
  auto d = destination(path);
  if (!d)
    return d.diag();
  return {};
}

Status writeFileAtomic(const std::string &path, const void *data, size_t size) {
  return writeChunksAtomic(path, {{data, size}});
}

std::string encodeSafetensors(const std::vector<TensorRef> &tensors,
                              const std::map<std::string, std::string> &metadata) {
  std::string header = encodeHeader(tensors, metadata);
  std::string out = littleEndian64(header.size()) + header;
  for (const TensorRef &t : tensors)
    out.append(static_cast<const char *>(t.data), t.bytes);
  return out;
}

Status writeSafetensors(const std::string &path, const std::vector<TensorRef> &tensors,
                        const std::map<std::string, std::string> &metadata) {
  for (const TensorRef &t : tensors)
    GRAPHC_CHECK(dtypeSize(t.dtype) > 0 && t.bytes == size_t(numel(t.shape)) * dtypeSize(t.dtype),
                 "tensor {}: {} bytes do not fit {} {}", t.name, t.bytes, t.dtype,
                 ir::str(t.shape));
  std::string header = encodeHeader(tensors, metadata);
  std::string length = littleEndian64(header.size());
  std::vector<std::pair<const void *, size_t>> chunks = {{length.data(), length.size()},
                                                         {header.data(), header.size()}};
  for (const TensorRef &t : tensors)
    chunks.push_back({t.data, t.bytes});
  return writeChunksAtomic(path, chunks);
}

Expected<InputFile> InputFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fileError(path, fmt::format("cannot open: {}", std::strerror(errno)));
  InputFile f(path, fd, 0);
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return fileError(path, fmt::format("cannot read: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return fileError(path, "not a regular file");
  f.size_ = uint64_t(st.st_size);
  return f;
}

InputFile::~InputFile() {
  if (fd_ >= 0)
    ::close(fd_);
}

Status InputFile::read(void *dst, uint64_t n) {
  char *p = static_cast<char *>(dst);
  while (n > 0) {
    ssize_t got = ::read(fd_, p, std::min<uint64_t>(n, uint64_t(1) << 30));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return fileError(path_, fmt::format("cannot read: {}", std::strerror(errno)));
    if (got == 0)
      return fileError(path_, "the file shrank while it was read");
    p += got;
    n -= uint64_t(got);
  }
  return {};
}

Expected<SafetensorsFile> readSafetensors(const std::string &path) {
  SafetensorsFile f;
  f.path = path;
  auto in = InputFile::open(path);
  if (!in)
    return in.diag();
  const uint64_t size = in->size();

  if (size < 8)
    return fileError(path, fmt::format("{} bytes: too short for a safetensors file (an "
                                       "8-byte header length, a JSON header, data)",
                                       size));
  uint8_t lenBytes[8];
  if (Status s = in->read(lenBytes, 8); !s)
    return s.diag();
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = headerLen << 8 | lenBytes[i];
  if (headerLen > size - 8)
    return fileError(path, fmt::format("header length {} is beyond the end of the file "
                                       "({} bytes): not a safetensors file, or truncated",
                                       headerLen, size));
  if (headerLen > kMaxHeader)
    return fileError(path, fmt::format("header length {} is absurd (the limit is {} "
                                       "bytes): not a safetensors file",
                                       headerLen, kMaxHeader));
  std::string text(size_t(headerLen), '\0');
  if (Status s = in->read(text.data(), headerLen); !s)
    return s.diag();
  // nlohmann keeps the last of two equal keys; the format wants each name once.
  std::vector<std::set<std::string>> keys; // per open object
  std::string duplicate;
  json::parser_callback_t noDuplicates = [&](int, json::parse_event_t event, json &parsed) {
    if (event == json::parse_event_t::object_start)
      keys.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys.empty())
      keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty() &&
             !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  if (text.empty() || text[0] != '{')
    return fileError(path, "the header is not a JSON object (it does not start with '{'): not "
                           "a safetensors file");
  json header = json::parse(text, noDuplicates, /*allow_exceptions=*/false);
  if (header.is_discarded())
    return fileError(path, "the header is not valid JSON: not a safetensors file, or "
                           "corrupted");
  if (!header.is_object())
    return fileError(path, "the header is not a JSON object");
  if (!duplicate.empty())
    return fileError(path, fmt::format("the name {} appears twice in the header; names "
                                       "must be unique",
                                       quote(duplicate)));

  uint64_t dataSize = size - 8 - headerLen;
  for (auto &[name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object())
        return fileError(path, "__metadata__ is not a JSON object");
      for (auto &[key, value] : v.items()) {
        if (!value.is_string())
          return fileError(path, fmt::format("metadata {} is not a string", quote(key)));
        f.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string &what) {
      return fileError(path, fmt::format("tensor {}: {}", quote(name), what));
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      return bad("expected an object with dtype, shape and data_offsets");
    TensorEntry e;
    if (!v["dtype"].is_string() || dtypeSize(v["dtype"].get<std::string>()) == 0)
      return bad(fmt::format("unknown dtype {}", v["dtype"].dump()));
    e.dtype = v["dtype"].get<std::string>();
    const json &shape = v["shape"];
    if (!shape.is_array() || shape.size() > 16)
      return bad("shape is not an array of at most 16 sizes");
    uint64_t elements = 1;
    for (const json &d : shape) {
      if (!d.is_number_unsigned())
        return bad(fmt::format("shape {} holds something other than a size", shape.dump()));
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && elements > kMaxElements / dim)
        return bad(fmt::format("shape {} is absurdly large", shape.dump()));
      elements *= dim;
      e.shape.push_back(int64_t(dim));
    }
    const json &off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      return bad(fmt::format("data_offsets {} is not [begin, end]", off.dump()));
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > dataSize)
      return bad(fmt::format("data_offsets [{}, {}] lie outside the {} data bytes (a "
                             "truncated file?)",
                             e.begin, e.end, dataSize));
    if (e.end - e.begin != elements * dtypeSize(e.dtype))
      return bad(fmt::format("data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", e.begin,
                             e.end, e.end - e.begin, e.dtype, ir::str(e.shape),
                             elements * dtypeSize(e.dtype)));
    f.tensors[name] = std::move(e);
  }
  // The tensors, in the order of their offsets, cover the data exactly:
  // no gap, no overlap, nothing after the last.
  std::vector<std::pair<const std::string *, const TensorEntry *>> order;
  for (auto &[name, e] : f.tensors)
    order.push_back({&name, &e});
  std::sort(order.begin(), order.end(), [](auto &a, auto &b) {
    return std::tie(a.second->begin, a.second->end) < std::tie(b.second->begin, b.second->end);
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    auto [name, e] = order[i];
    if (e->begin < covered)
      return fileError(path, fmt::format("tensor {} (data_offsets [{}, {}]) overlaps tensor {} "
                                         "(data_offsets [{}, {}])",
                                         quote(*name), e->begin, e->end, quote(*order[i - 1].first),
                                         order[i - 1].second->begin, order[i - 1].second->end));
    if (e->begin > covered)
      return fileError(path, fmt::format("bytes [{}, {}) of the data belong to no tensor (a gap "
                                         "before tensor {})",
                                         covered, e->begin, quote(*name)));
    covered = e->end;
  }
  if (covered != dataSize)
    return fileError(path, fmt::format("{} bytes after the last tensor's data (the tensors "
                                       "cover {} of the {} data bytes): trailing bytes",
                                       dataSize - covered, covered, dataSize));
  f.data.resize(size_t(dataSize));
  if (Status s = in->read(f.data.data(), dataSize); !s)
    return s.diag();
  return f;
}

namespace {

/// PyTorch's BatchNorm counts its batches in `num_batches_tracked`: the
/// name of that count for the BatchNorm whose running mean is `p`, or "".
/// Nothing in Torch7 or graphc reads it (momentum is fixed): it is written,
/// as every training step is one batch of every BatchNorm, and ignored on load.
std::string batchCountName(const ir::ParamInfo &p) {
  const std::string mean = ".running_mean";
  if (p.trainable || p.name.size() <= mean.size() ||
      p.name.compare(p.name.size() - mean.size(), mean.size(), mean) != 0)
    return "";
  return p.name.substr(0, p.name.size() - mean.size()) + ".num_batches_tracked";
}

bool isBatchCount(const std::string &name, const ir::ParamInfo &p) {
  return !name.empty() && name == batchCountName(p);
}

} // namespace

Status saveCheckpoint(const std::string &path, Executable &exe, int64_t epoch, uint64_t seed,
                      const std::map<std::string, std::string> &extra) {
  const ModelInfo &info = exe.info();
  std::vector<TensorRef> tensors;
  auto add = [&](const std::string &name, const ir::ParamInfo &p, const float *flat) {
    tensors.push_back({name, "F32", p.shape, flat + p.offset, size_t(p.numel()) * 4});
  };
  for (const ir::ParamInfo &p : info.params)
    add(p.name, p, exe.params());
  const int64_t batches = exe.step(); // int64 scalars, as PyTorch keeps them
  for (const ir::ParamInfo &p : info.params)
    if (std::string count = batchCountName(p); !count.empty())
      tensors.push_back({count, "I64", {}, &batches, sizeof batches});
  for (const std::string &slot : info.stateSlots) {
    const float *state = exe.state(slot);
    GRAPHC_CHECK(state, "no optimizer state {}", slot);
    for (const ir::ParamInfo &p : info.params)
      if (p.trainable)
        add("optim." + slot + "." + p.name, p, state);
  }
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "pt";
  meta["graphc.model"] = info.name;
  meta["graphc.optimizer"] = info.optimizer.str();
  meta["graphc.step"] = std::to_string(exe.step());
  meta["graphc.epoch"] = std::to_string(epoch);
  meta["graphc.seed"] = std::to_string(seed);
  return writeSafetensors(path, tensors, meta);
}

Expected<CheckpointInfo> loadCheckpoint(const std::string &path, Executable &exe,
                                        bool optimizerState, bool allowNonfinite) {
  auto file = readSafetensors(path);
  if (!file)
    return file.diag();
  const SafetensorsFile &f = *file;
  const ModelInfo &info = exe.info();
  CheckpointInfo out;
  out.metadata = f.metadata;

  // 1. Check everything; remember what goes where.
  struct Copy {
    const uint8_t *src;
    float *dst;
    size_t bytes;
  };
  std::vector<Copy> copies;
  auto take = [&](const std::string &name, const ir::ParamInfo &p, float *flat) -> Status {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) {
      std::string have;
      for (auto &[n, e] : f.tensors)
        if (have.size() < 200)
          have += (have.empty() ? "" : ", ") + n;
      return fileError(path,
                       fmt::format("tensor {} {} is missing (the file holds: {})", quote(name),
                                   ir::str(p.shape), have.empty() ? "no tensors" : have));
    }
    const TensorEntry &e = it->second;
    if (e.dtype != "F32")
      return fileError(path, fmt::format("tensor {} is {}; graphc needs F32 (in PyTorch, "
                                         "save model.float().state_dict())",
                                         quote(name), e.dtype));
    if (e.shape != p.shape)
      return fileError(path, fmt::format("tensor {} has shape {}, but the model's {} is {}",
                                         quote(name), ir::str(e.shape), p.name, ir::str(p.shape)));
    if (auto bad = nonFinite(f.bytes(e), p.numel())) {
      std::string what = fmt::format("tensor {} holds {} non-finite value{} (the first, {}, at "
                                     "{})",
                                     quote(name), bad->count, bad->count == 1 ? "" : "s",
                                     bad->first, ir::str(unflatten(bad->index, p.shape)));
      if (!allowNonfinite)
        return fileError(path, what + ": the run that saved it diverged, or the file is "
                                      "damaged; --allow-nonfinite loads it anyway");
      out.warnings.push_back(what);
    }
    copies.push_back({f.bytes(e), flat + p.offset, size_t(p.numel()) * 4});
    return {};
  };
  for (const ir::ParamInfo &p : info.params)
    if (Status s = take(p.name, p, exe.params()); !s)
      return s.diag();

  for (auto &[name, e] : f.tensors) {
    if (name.rfind("optim.", 0) == 0) {
      out.hasOptimizerState = true;
      continue;
    }
    bool known = false;
    for (const ir::ParamInfo &p : info.params)
      known = known || p.name == name || isBatchCount(name, p);
    if (!known) {
      std::string names;
      for (const ir::ParamInfo &p : info.params)
        names += (names.empty() ? "" : ", ") + p.name;
      return fileError(path, fmt::format("tensor {} does not belong to the model (its "
                                         "tensors are {})",
                                         quote(name), names));
    }
  }

  if (optimizerState && out.hasOptimizerState) {
    for (auto &[name, e] : f.tensors) {
      if (name.rfind("optim.", 0) != 0)
        continue;
      bool known = false;
      for (const std::string &slot : info.stateSlots)
        for (const ir::ParamInfo &p : info.params)
          known = known || (p.trainable && name == "optim." + slot + "." + p.name);
      if (!known) {
        auto saved = f.metadata.find("graphc.optimizer");
        return fileError(
            path, fmt::format("tensor {} is optimizer state that this model's {} does not "
                              "keep (the checkpoint was saved with {})",
                              quote(name), info.optimizer.str(),
                              saved == f.metadata.end() ? "another optimizer" : saved->second));
      }
    }
    for (const std::string &slot : info.stateSlots)
      for (const ir::ParamInfo &p : info.params)
        if (p.trainable)
          if (Status s = take("optim." + slot + "." + p.name, p, exe.state(slot)); !s)
            return s.diag();
  }

  for (const char *key : {"graphc.step", "graphc.epoch", "graphc.seed"}) {
    if (!f.metadata.count(key))
      continue;
    auto v = metaInt(f, key);
    if (!v)
      return v.diag();
    if (std::string(key) == "graphc.seed") {
      out.hasSeed = true;
      out.seed = *v;
    } else if (*v > uint64_t(1) << 62) {
      return fileError(path, fmt::format("metadata {} = {} is absurd", key, *v));
    } else {
      (std::string(key) == "graphc.step" ? out.step : out.epoch) = int64_t(*v);
    }
  }

  // 2. Apply.
  for (const Copy &c : copies)
    std::memcpy(c.dst, c.src, c.bytes);
  if (optimizerState) {
    if (!out.hasOptimizerState) {
      for (const std::string &slot : info.stateSlots)
        std::fill(exe.state(slot), exe.state(slot) + info.numParams, 0.0f);
      out.step = f.metadata.count("graphc.step") ? out.step : 0;
    }
    exe.setStep(out.step);
  }
  return out;
}

} // namespace graphc::runtime
